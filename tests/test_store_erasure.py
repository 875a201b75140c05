"""Rules 3 and 4: erasure leaves no trace of the id in the file, suppression, export."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import persona
from persona.schema import PersonLineage
from store_helpers import Clock, event, file_bytes, file_rows, ingest_when_new, shop

SECRET = "erase-me-7f3a9c@example.com"


def test_erase_removes_every_trace_of_the_id_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    store = shop(str(path), clock=Clock())
    store.grant(SECRET, "personalization", source="signup form v3", notice_version="v3")
    store.grant("keeper", "personalization", source="signup form v3")
    store.ingest(
        [event(SECRET, f"sku-{i}", at=f"2026-11-{1 + i % 20:02d}T10:00:00Z") for i in range(300)]
    )
    store.ingest([event("keeper", "sku-1")])
    for _ in range(10):  # several segments, a compaction, reads and an export
        store.ingest([event(SECRET, "sku-x", value=float(_))])
    store.scope("personalization").history(SECRET)
    store.export(SECRET)
    store.withdraw(SECRET, "personalization")
    assert SECRET.encode() in file_bytes(path)  # the scan can see the id while it is held

    report = store.erase(SECRET)
    assert report.held and report.events == 310 and report.consent_events == 2
    raw = file_bytes(path)
    assert SECRET.encode() not in raw
    assert SECRET.encode("utf-16-le") not in raw
    store.close()
    raw = file_bytes(path)
    assert SECRET.encode() not in raw
    again = persona.Store(path)
    assert file_rows(again, "PRAGMA integrity_check")[0][0] == "ok"
    assert list(again.scope("personalization").events().users) == ["keeper"]
    entries = again.audit.entries(subject=report.subject)
    assert entries[-1].action == "erase" and again.audit.verify()
    assert SECRET not in json.dumps([e.model_dump(mode="json") for e in again.audit.entries()])


def test_erased_id_is_suppressed_until_a_new_grant() -> None:
    store = shop(clock=Clock())
    store.grant("u1", "personalization", source="form")
    store.ingest([event("u1", "a")])
    store.erase("u1")
    assert store.export("u1")["events"] == []
    with pytest.raises(persona.SuppressedSubjectError, match="erased"):
        store.ingest([event("u2", "b"), event("u1", "a")])
    assert store.stats()["events"] == 0 and store.stats()["people"] == 0
    report = store.ingest([event("u2", "b"), event("u1", "a")], on_invalid="skip")
    assert report.inserted == 1 and report.rejected == 1
    store.withdraw("u1", "personalization")  # an erased person saying no stores nothing
    assert store.stats()["people"] == 1
    store.grant("u1", "personalization", source="came back")
    assert store.ingest([event("u1", "a")]).inserted == 1
    assert list(store.scope("personalization").events().users) == ["u1"]


def test_erasing_someone_not_held_is_recorded_and_suppresses() -> None:
    store = shop(clock=Clock())
    report = store.erase("stranger")
    assert not report.held and report.events == 0
    with pytest.raises(persona.SuppressedSubjectError):
        store.ingest([event("stranger", "a")])


def test_export_has_everything_held_in_the_documented_shape() -> None:
    clock = Clock()
    store = shop(clock=clock)
    store.grant("u1", "personalization", source="signup form v3", notice_version="2026-01")
    store.grant("u1", "ads", source="banner")
    store.do_not_sell("u1")
    ingest_when_new(store, clock, [event("u1", "b", "views", at="2026-09-01T00:00:00Z")])
    store.ingest(
        [
            event("u1", "a"),
            event("u1", "here", "location", value=51.5),
            event("u2", "c"),
        ]
    )
    out = store.export("u1")
    assert json.loads(json.dumps(out)) == out
    assert out["format"] == "persona.export" and out["format_version"] == 1
    assert out["subject"]["id"] == "u1" and out["held"] is True
    assert {(e["item"], e["feature"]) for e in out["events"]} == {
        ("a", "purchases"),
        ("b", "views"),
        ("here", "location"),
    }
    outside = [e for e in out["events"] if not e["within_retention"]]
    assert [e["item"] for e in outside] == ["b"]
    assert [r["action"] for r in out["consent"]["history"]] == ["grant", "grant", "withdraw"]
    assert out["consent"]["history"][2]["signal"] == "gpc"
    assert out["consent"]["current"]["personalization"]["notice_version"] == "2026-01"
    assert out["consent"]["current"]["analytics"] is None
    actions = [e["action"] for e in out["audit"]]
    assert actions[:3] == ["consent_grant", "consent_grant", "consent_withdraw"]
    assert actions[-1] == "export"
    assert set(out["purposes"]) == {"personalization", "analytics", "ads"}
    assert "privacy_ledger" in out


def _event_ids(store: persona.Store) -> list[int]:
    """Every event id the file holds (the de-duplication index, one chunk per batch)."""
    return sorted(int(x) for (blob,) in file_rows(store, "SELECT eids FROM eid_chunks")
                  for x in np.frombuffer(blob, dtype="<u8"))


def test_erase_removes_the_persons_event_ids_and_only_theirs(tmp_path: Path) -> None:
    # the ids are hashes of the person's events: a trace, which must go with them, while
    # everyone else's stay (or their re-sent events would be stored twice)
    store = shop(str(tmp_path / "shop.db"), clock=Clock())
    for user in ("u1", "keeper", "single"):
        store.grant(user, "personalization", source="form")
    store.ingest([event("keeper", "a"), event("keeper", "b", value=2.0)])
    kept = _event_ids(store)
    store.ingest([event("u1", f"sku-{i}", value=float(i)) for i in range(5)])
    store.ingest([event("u1", "sku-9", "views"), event("keeper", "c")])  # one chunk, both
    store.ingest([event("single", "s")])
    held = _event_ids(store)
    assert len(held) == 10
    store.erase("u1")
    after = _event_ids(store)
    assert set(kept) < set(after) < set(held) and len(after) == 4  # keeper's 3, single's 1
    assert store.ingest([event("keeper", "a"), event("keeper", "c")]).duplicates == 2
    store.erase("single")  # one event: its one id goes too
    assert len(_event_ids(store)) == 3 and set(kept) < set(_event_ids(store))


def test_erase_takes_what_the_person_was_shown_and_their_profiling_choice(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shop.db"
    store = shop(str(path), clock=Clock())
    store.record_explanation("u1", {"item": "shown-only-item-5d1c", "text": "Picked for you."})
    store.prefer_non_profiling("u1", source="settings-page-83b2")
    store.record_explanation("u2", {"item": "kept-item-0a9e", "text": "Picked for you."})
    store.prefer_non_profiling("u2", source="settings-page-kept")
    assert b"shown-only-item-5d1c" in file_bytes(path)
    store.erase("u1")
    raw = file_bytes(path)
    assert b"shown-only-item-5d1c" not in raw and b"kept-item-0a9e" in raw
    assert [s["explanation"]["item"] for s in store.shown_explanations("u2")] == [
        "kept-item-0a9e"]
    # the choice's row goes (its audit entry stays, under the pseudonym, as every entry)
    assert file_rows(store, "SELECT source FROM profiling") == [
        ("settings-page-kept",)]
    assert store.prefers_non_profiling("u2") and not store.prefers_non_profiling("u1")


@pytest.mark.parametrize("bad", ["", 7.5, True, None])
def test_a_bad_user_id_is_refused_naming_the_user_field(bad) -> None:
    store = shop(clock=Clock())
    with pytest.raises(persona.ValidationError) as info:
        store.erase(bad)
    assert [e["field"] for e in info.value.errors] == ["user"]
    assert store.audit.entries(action="erase") == []


def test_an_erasure_by_another_handle_reaches_this_ones_next_write(tmp_path: Path) -> None:
    # this handle cached the person's code; the other handle's erasure must make it look
    # again, so their events are refused as an erased person's, not written under a code
    # that no longer exists
    path = str(tmp_path / "shop.db")
    first = shop(path, clock=Clock())
    first.grant("u1", "personalization", source="form")
    first.ingest([event("u1", "a")])
    second = persona.Store(path, clock=Clock())
    second.erase("u1")
    with pytest.raises(persona.SuppressedSubjectError):
        first.ingest([event("u1", "b")])
    assert first.stats()["events"] == 0 and first.export("u1")["erased"] is True


def test_an_erasure_a_reader_holds_back_says_so_and_finishes_when_called_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shop.db"
    store = shop(str(path), clock=Clock())
    store.grant(SECRET, "personalization", source="form")
    store.ingest([event(SECRET, "sku-1")])
    hasty = persona.Store(path, timeout=0)  # no waiting for the reader
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM segments").fetchone()  # holds an older snapshot
    with pytest.raises(persona.StoreError,
                       match=r"erasure is committed.*close other readers.*erase\(\.\.\.\) again"
                       ) as info:
        hasty.erase(SECRET)
    assert info.value.code == "store_error"
    assert store.export(SECRET)["erased"] is True  # committed: they are gone for reads
    reader.rollback()
    reader.close()
    hasty.erase(SECRET)
    assert SECRET.encode() not in file_bytes(path)


def test_an_erased_person_is_not_brought_back_by_recording_what_they_were_shown() -> None:
    """After an erasure nothing about the person is stored until they grant consent again:
    recording an explanation for them is refused (as feedback is) and changes nothing, and
    their events stay refused afterwards (it used to create their subject row, and ingest
    then took their events as a held person's)."""
    from store_helpers import fingerprint

    store = shop(clock=Clock())
    store.erase("u1")
    before = fingerprint(store)
    with pytest.raises(persona.SuppressedSubjectError) as info:
        store.record_explanation("u1", {"item": "sku-2", "text": "Picked for you."})
    assert info.value.errors == [{"row": None, "field": "user", "message": "erased person"}]
    assert fingerprint(store) == before
    with pytest.raises(persona.SuppressedSubjectError):
        store.ingest([event("u1", "sku-2")])
    assert store.ingest([event("u1", "sku-2")], on_invalid="skip").inserted == 0
    assert store.shown_explanations("u1") == []
    # once they grant again, both are taken
    store.grant("u1", "personalization", source="form")
    store.record_explanation("u1", {"item": "sku-2", "text": "Picked for you."})
    assert store.ingest([event("u1", "sku-2")]).inserted == 1


@pytest.mark.parametrize(
    "read", ["history", "history_with_lineage", "person_lineage", "person_for_serving",
             "not_interested"],
)
def test_reading_an_erased_person_does_not_bring_them_back(read: str) -> None:
    """A read of a person the store does not hold (here: erased) finds nothing and stores
    nothing about them: their events stay refused afterwards, as after the erasure."""
    store = shop(clock=Clock())
    store.grant("u1", "personalization", source="form")
    store.ingest([event("u1", "sku-1")])
    store.erase("u1")
    view = store.scope("personalization")
    result = getattr(view, read)("u1")
    lineage = next((r for r in (result if isinstance(result, tuple) else (result,))
                    if isinstance(r, PersonLineage)), None)
    if lineage is not None:
        assert lineage.consent is None and lineage.used == () and lineage.not_used == ()
    with pytest.raises(persona.SuppressedSubjectError):
        store.ingest([event("u1", "sku-2")])
    assert store.ingest([event("u1", "sku-2")], on_invalid="skip").inserted == 0
