"""Issue 17, point 5: nothing about a person outlives erasure in the item table or the
audit log; item rows exist only for stored events."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

import persona
from store_helpers import Clock, event, file_bytes, file_rows, shop

SECRET = "erase-me-4b2d@example.com"
RARE = "rare-sku-only-she-had-91c4"  # an item id as telling as the person's


def items(store: persona.Store) -> set[str]:
    return {r[0] for r in file_rows(store, "SELECT ext FROM items")}


def test_an_item_only_an_erased_person_had_leaves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    store = shop(str(path), clock=Clock())
    store.define_items(["declared-sku"])
    other = persona.Store(path, clock=Clock())  # another handle, with its own item cache
    for user in (SECRET, "keeper"):
        store.grant(user, "personalization", source="form")
    store.ingest([event(SECRET, RARE), event(SECRET, "shared"), event(SECRET, "declared-sku"),
                  event("keeper", "shared")])
    store.feedback(SECRET, "fb-only-sku", "not_interested", source="app")
    assert other.scope("personalization").history("keeper").items.tolist() == ["shared"]
    assert RARE.encode() in file_bytes(path)

    store.erase(SECRET)
    assert items(store) == {"shared", "declared-sku"}
    raw = file_bytes(path)
    assert RARE.encode() not in raw and b"fb-only-sku" not in raw
    assert b"declared-sku" in raw  # the shop's declared catalogue stays

    # the item ids are reused safely: both handles see new items under their own names
    other.grant("late", "personalization", source="form")
    other.ingest([event("late", "new-a"), event("late", "new-b")])
    store.ingest([event("keeper", "new-c")])
    got = {
        (u, i) for u, i in zip(
            *(lambda c: (c.users[c.user].tolist(), c.items[c.item].tolist()))(
                store.scope("personalization").events()), strict=True)
    }
    assert got == {("keeper", "shared"), ("keeper", "new-c"), ("late", "new-a"),
                   ("late", "new-b")}
    assert sorted(other.scope("personalization").history("keeper").items.tolist()) == [
        "new-c", "shared"]
    assert file_rows(store, "PRAGMA integrity_check")[0][0] == "ok"


def test_an_erased_persons_only_item_leaves_the_item_table(tmp_path: Path) -> None:
    """The same without a declared catalogue (an API the old code did not have)."""
    path = tmp_path / "shop.db"
    store = shop(str(path), clock=Clock())
    store.ingest([event(SECRET, RARE), event("keeper", "shared")])
    store.erase(SECRET)
    assert items(store) == {"shared"}
    assert RARE.encode() not in file_bytes(path)


def test_items_of_refused_events_are_not_added(tmp_path: Path) -> None:
    store = shop(str(tmp_path / "shop.db"), clock=Clock())
    store.grant("u1", "personalization", source="form")
    store.erase("gone")
    report = store.ingest(
        [event("u1", "a"), event("gone", "suppressed-sku"),
         event("u1", "bad-feature-sku", feature="nope")],
        on_invalid="skip",
    )
    assert report.inserted == 1
    assert items(store) == {"a"}
    # a duplicate (the same event id again) stores nothing, so adds no item either
    store.ingest([event("u1", "b", id="e-1")])
    report = store.ingest([event("u1", "dup-sku", id="e-1")])
    assert report.inserted == 0 and report.duplicates == 1
    assert items(store) == {"a", "b"}


def test_application_audit_entries_never_carry_the_raw_id(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    store = shop(str(path), clock=Clock())
    store.grant(SECRET, "personalization", source="form")
    nfd = unicodedata.normalize("NFD", "José")
    store.grant("José", "personalization", source="form")
    for detail, user in (
        ({"who": SECRET}, SECRET),
        ({"nested": {"people": ["x", SECRET]}}, SECRET),
        ({"who": nfd}, "José"),  # the same name, spelled in NFD
        ({SECRET: 1}, SECRET),
    ):
        with pytest.raises(persona.ValidationError, match="user="):
            store.record("app.x", detail, user=user)
    seq = store.record("app.x", {"clicked": "sku-1"}, user=SECRET)
    assert store.audit.entries()[-1].seq == seq
    store.erase(SECRET)
    assert SECRET.encode() not in file_bytes(path)


def test_curation_by_staff_is_fine() -> None:
    store = shop(clock=Clock())
    for u in ("u1", "u2"):
        store.grant(u, "personalization", source="form")
    store.ingest([event("u1", "a"), event("u2", "b"), event("u2", "a")])
    p = persona.Personalizer(store, model=persona.ItemKNN()).fit()
    p.curate(pin=["a"], reason="Holiday gift guide", by="merchandiser-3")
    assert store.audit.entries()[-1].detail["by"] == "merchandiser-3"
