"""The public contract of the store (the README quickstart), end to end."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import persona
from store_helpers import Clock, event, file_rows, ingest_when_new, retention_lifted, shop


def test_quickstart_contract(tmp_path: Path) -> None:
    store = persona.Store(tmp_path / "shop.db")
    store.define_purpose(
        "personalization", description="Recommend products from what you view and buy"
    )
    store.define_feature(
        "purchases", purposes=["personalization"], category="purchase history", retention_days=None
    )
    store.define_purpose("analytics", description="Count visits")
    store.define_feature(
        "purchases",
        purposes=["personalization", "analytics"],
        category="purchase history",
        retention_days=730,
    )
    record = store.grant("u1", "personalization", source="signup form v3")
    assert record.action == "grant" and record.source == "signup form v3"
    report = store.ingest(
        [
            {
                "user": "u1",
                "item": "sku-9",
                "feature": "purchases",
                "value": 2.0,
                "at": "2026-11-01T10:00:00Z",
            }
        ]
    )
    assert report.inserted == 1
    view = store.scope("personalization")
    cols = view.events()
    assert list(cols.users) == ["u1"] and list(cols.items) == ["sku-9"]
    assert cols.value.tolist() == [2.0]
    assert cols.at.tolist()[0].isoformat() == "2026-11-01T10:00:00"
    store.withdraw("u1", "personalization")
    assert len(view.events()) == 0
    exported = store.export("u1")
    json.dumps(exported)  # JSON-serialisable
    assert exported["events"][0]["item"] == "sku-9"
    store.erase("u1")
    assert store.audit.verify()
    assert store.export("u1")["held"] is False


def test_view_offers_arrays_history_sets_and_lineage() -> None:
    clock = Clock()
    store = shop(clock=clock)
    store.grant("u1", "personalization", source="banner")
    store.grant("u2", "personalization", source="banner")
    store.ingest(
        [
            event("u1", "a", at="2026-11-20T10:00:00Z"),
            event("u1", "b", "views", value=3.0, at="2026-11-21T10:00:00+01:00"),
            event("u2", "b"),
            event("u3", "c"),  # no consent
        ]
    )
    view = store.scope("personalization")
    cols = view.events()
    assert cols.user.dtype == np.int32 and cols.item.dtype == np.int32
    assert cols.value.dtype == np.float64 and cols.at.dtype == np.dtype("datetime64[us]")
    triples = sorted(
        (cols.users[u], cols.items[i], cols.features[f])
        for u, i, f in zip(cols.user, cols.item, cols.feature, strict=True)
    )
    assert triples == [("u1", "a", "purchases"), ("u1", "b", "views"), ("u2", "b", "purchases")]
    assert sorted(view.users()) == ["u1", "u2"]
    assert sorted(view.items()) == ["a", "b"]
    hist = view.history("u1")
    assert sorted(hist.items[hist.item]) == ["a", "b"]
    assert str(hist.at[hist.items[hist.item] == "b"][0]) == "2026-11-21T09:00:00.000000"
    assert len(view.history("u3")) == 0
    assert len(view.history("nobody")) == 0
    lineage = view.lineage
    assert lineage.purpose == "personalization"
    assert lineage.rows == 3 and lineage.people == 2
    assert lineage.consent.granted == 2
    used = {f.feature: f.used for f in lineage.features}
    assert used == {"purchases": True, "views": True, "location": False}
    entry = store.audit.entries(action="scoped_read")[-1]
    assert entry.seq == lineage.audit_seq and entry.detail["rows"] == 3


def test_view_has_no_write_methods() -> None:
    view = shop().scope("personalization")
    # (mutation testing adds its own copies of the methods, named "x\u01c1Class\u01c1name__mutmut_N")
    public = {n for n in dir(view) if not n.startswith("_") and "__mutmut_" not in n}
    assert public == {
        "events",
        "history",
        "history_with_lineage",
        "person_lineage",
        "person_for_serving",
        "item_labels",
        "catalogue",
        "privacy_ledger",  # charges the budget of private fits; writes no data
        "not_interested",
        "has_consent",
        "users",
        "items",
        "lineage",
        "purpose",
        "store_id",
        "features",  # the feature definitions (read-only; no one's data)
        "to_pandas",  # a consent-scoped read, as events(): audited, writes no data
        "to_arrow",
        "to_parquet",  # the same read written to files outside the store: writes no data in it
    }
    with pytest.raises(AttributeError):
        view.extra = 1  # type: ignore[attr-defined]


def test_unknown_purpose_in_scope_grant_and_feature() -> None:
    store = shop()
    with pytest.raises(persona.UnknownPurposeError, match="define_purpose"):
        store.scope("marketing")
    with pytest.raises(persona.UnknownPurposeError, match="marketing"):
        store.grant("u1", "marketing", source="form")
    with pytest.raises(persona.UnknownPurposeError):
        store.define_feature("clicks", purposes=["marketing"], category="clicks", retention_days=1)
    assert "clicks" not in store.features


def test_redefining_identical_is_a_no_op_and_changes_are_audited() -> None:
    store = shop()
    n = len(store.audit)
    store.define_purpose("analytics", description="Count visits to improve the shop")
    assert len(store.audit) == n
    store.define_feature(
        "views",
        purposes=["personalization", "analytics"],
        category="browsing history",
        retention_days=30,
    )
    assert store.audit.entries()[-1].action == "redefine_feature"
    assert store.features["views"].purposes == ("personalization", "analytics")


def test_definitions_validate() -> None:
    store = shop()
    with pytest.raises(persona.ValidationError, match="retention_days"):
        store.define_feature("x", purposes=["analytics"], category="c", retention_days=0)
    with pytest.raises(persona.ValidationError, match="name"):
        store.define_purpose("", description="d")
    with pytest.raises(TypeError):
        store.define_feature("x", purposes=["analytics"], category="c")  # type: ignore[call-arg]


def test_store_reopens_with_everything(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = shop(str(path))
    store.grant("u1", "personalization", source="form")
    store.ingest([event("u1", "a")])
    head = store.audit.head()
    store.close()
    with pytest.raises(persona.StoreError, match="closed"):
        store.scope("personalization")
    again = persona.Store(path)
    assert again.audit.head() == head and again.audit.verify()
    assert list(again.scope("personalization").events().items) == ["a"]
    assert again.ingest([event("u1", "a")]).duplicates == 1


def test_person_lineage_says_what_was_used_and_left_out_and_why() -> None:
    clock = Clock()
    store = shop(clock=clock)
    store.grant("u1", "personalization", source="signup form v3", at="2026-03-01T09:00:00+00:00")
    store.grant("u1", "ads", source="banner", at="2026-03-01T09:00:00+00:00")
    store.withdraw("u1", "ads", source="settings page", at="2026-03-03T10:00:00+00:00")
    # outside 30-day retention now, inside it when it arrived
    ingest_when_new(store, clock, [event("u1", "c", "views", at="2026-09-01T10:00:00Z")])
    store.ingest(
        [
            event("u1", "a", at="2026-11-20T10:00:00Z"),
            event("u1", "b", "views", at="2026-11-21T10:00:00Z"),
            event("u1", "here", "location", value=51.5),
        ]
    )
    cols, lin = store.scope("personalization").history_with_lineage("u1")
    assert sorted(cols.items) == ["a", "b"]
    assert lin.rows == len(cols)
    assert lin.active
    assert lin.consent is not None
    assert lin.consent.source == "signup form v3"
    assert {(u.feature, u.events) for u in lin.used} == {("purchases", 1), ("views", 1)}
    reasons = {(n.feature, n.reason, n.events) for n in lin.not_used}
    assert reasons == {
        ("views", "outside_retention", 1),
        ("location", "not_allowed_for_purpose", 1),
    }
    location = next(n for n in lin.not_used if n.feature == "location")
    assert location.choice is not None
    assert location.choice.purpose == "ads"
    assert location.choice.at.isoformat().startswith("2026-03-03")
    assert lin.audit_seq == store.audit.head()[0]
    assert store.scope("personalization").person_lineage("u1").rows == len(cols)
    served, _ = store.scope("personalization").person_for_serving("u1")
    assert served.model_dump(exclude={"audit_seq"}) == lin.model_dump(exclude={"audit_seq"})

    store.withdraw("u1", "personalization", source="settings page")
    cols, lin = store.scope("personalization").history_with_lineage("u1")
    assert len(cols) == 0
    assert not lin.active
    assert {n.reason for n in lin.not_used} == {"withdrawn"}
    store.decline("u2", "personalization", source="banner")
    store.ingest([event("u2", "a")])
    assert {n.reason for n in store.scope("personalization").person_lineage("u2").not_used} == {
        "declined"
    }
    store.ingest([event("u3", "a")])
    assert {n.reason for n in store.scope("personalization").person_lineage("u3").not_used} == {
        "no_consent"
    }
    assert store.scope("personalization").person_lineage("nobody").used == ()


def test_item_labels() -> None:
    store = shop()
    store.ingest([event("u1", "sku-1")])
    assert store.label_items({"sku-1": "Hiking Boots", "sku-2": "Trail Socks"}) == 2
    assert store.item_labels() == {"sku-1": "Hiking Boots", "sku-2": "Trail Socks"}
    assert store.scope("personalization").item_labels(["sku-2", "sku-3"]) == {
        "sku-2": "Trail Socks"
    }
    with pytest.raises(persona.ValidationError, match="label"):
        store.label_items({"sku-1": "  "})


def test_feedback_dont_use_and_not_interested(tmp_path: Path) -> None:
    store = shop(str(tmp_path / "shop.db"), clock=Clock())
    store.grant("u1", "personalization", source="form")
    store.ingest([event("u1", "a"), event("u1", "b"), event("u1", "b", "views", value=2.0)])
    store.feedback("u1", "b", "dont_use", source="why-this page")
    store.feedback("u1", "z", "not_interested")
    view = store.scope("personalization")
    assert list(view.events().items) == ["a"]
    cols, lin = view.history_with_lineage("u1")
    assert list(cols.items) == ["a"]
    assert {(n.feature, n.reason, n.events) for n in lin.not_used} == {
        ("purchases", "excluded_by_person", 1),
        ("views", "excluded_by_person", 1),
    }
    before = len(store.audit)
    assert view.not_interested("u1") == {"z"}
    assert len(store.audit) == before + 1  # a read through the view, so it is audited
    assert store.audit.entries()[-1].subject == store.pseudonym("u1")
    assert store.audit.entries()[-1].detail == {  # only their feedback: no event, no lineage
        "purpose": "personalization", "rows": 0, "lineage": False}
    before = len(store.audit)
    served, not_interested = view.person_for_serving("u1")  # one read for a request
    assert not_interested == {"z"}
    entries = store.audit.entries()[before:]  # exactly one audit entry, naming the read
    assert [(e.action, e.detail) for e in entries] == [
        (
            "scoped_history_read",
            {"purpose": "personalization", "rows": served.rows, "lineage": True},
        )
    ]
    assert entries[0].subject == store.pseudonym("u1")
    assert served.model_dump(exclude={"audit_seq"}) == lin.model_dump(exclude={"audit_seq"})
    assert served.audit_seq == store.audit.head()[0]
    nobody, nothing = view.person_for_serving("nobody")
    assert not nobody.active and nobody.used == () and nothing == set()
    kinds = [(f.item, f.kind) for f in store.feedback_of("u1")]
    assert kinds == [("b", "dont_use"), ("z", "not_interested")]
    assert store.export("u1")["feedback"][0]["source"] == "why-this page"
    assert store.clear_feedback("u1", "b") == 1
    assert sorted(view.events().items) == ["a", "b"]
    store.erase("u1")
    assert file_rows(store, "SELECT count(*) FROM feedback")[0][0] == 0
    with pytest.raises(persona.SuppressedSubjectError):
        store.feedback("u1", "a", "dont_use")
    with pytest.raises(persona.ValidationError, match="kind"):
        store.feedback("u2", "a", "meh")  # type: ignore[arg-type]


def test_reads_follow_redefinitions_at_once_in_every_handle(tmp_path: Path) -> None:
    """What a read allows (features, retention) is kept between reads only until the
    definitions change, here or through another handle on the same file."""
    clock = Clock()
    path = tmp_path / "shop.db"
    first = shop(str(path), clock=clock)
    second = persona.Store(path, clock=clock)
    first.grant("u1", "personalization", source="form")
    first.ingest(
        [
            event("u1", "a", at="2026-11-20T10:00:00Z"),
            event("u1", "b", "views", at="2026-11-20T10:00:00Z"),
        ]
    )
    for store in (first, second):
        assert sorted(store.scope("personalization").events().items) == ["a", "b"]
        assert sorted(store.scope("personalization").history("u1").items) == ["a", "b"]
    first.define_feature(
        "views", purposes=["analytics"], category="browsing history", retention_days=30
    )
    for store in (first, second):
        assert list(store.scope("personalization").events().items) == ["a"]
        assert list(store.scope("personalization").history("u1").items) == ["a"]
        assert list(store.scope("analytics").events().items) == []  # no analytics consent
    second.define_feature(
        "purchases", purposes=["personalization"], category="purchase history", retention_days=1
    )
    for store in (first, second):
        assert len(store.scope("personalization").events()) == 0  # 6 days old: outside 1 day
        assert len(store.scope("personalization").history("u1")) == 0


@pytest.mark.parametrize("few", [0, 10_000])  # every read through numpy / through tuples
@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["u1", "u2", "u3"]),
                st.sampled_from(["a", "b", "c", "d"]),
                st.sampled_from(["purchases", "views", "location"]),
                st.integers(0, 900),  # days before the read
                st.floats(0, 5, allow_nan=False),  # values are confidences: >= 0
            ),
            min_size=1,
            max_size=8,
        ),
        min_size=1,
        max_size=4,
    ),
    dont_use=st.sets(st.sampled_from(["a", "b", "c", "d"]), max_size=2),
    purpose=st.sampled_from(["personalization", "analytics", "ads"]),
    little=st.booleans(),
)
def test_one_persons_history_is_their_part_of_the_full_read(
    few: int,
    batches: list[list[tuple[str, str, str, int, float]]],
    dont_use: set[str],
    purpose: str,
    little: bool,
) -> None:
    """A history read (decoded on its own, from several segments) gives exactly the full
    read's events of that person, in time order: same items, features, values and times,
    with retention, purpose and "don't use" applied alike, in columns of the same types;
    whichever decoder a read with that many records takes, and whichever way the person's
    records are found in a segment (the big-endian way works on any machine)."""
    from unittest.mock import patch

    from persona.store import _reads as _store

    with patch.object(_store, "_FEW_RECORDS", few), patch.object(_store, "_LITTLE", little):
        _check_history_against_full_read(batches, dont_use, purpose)


def _check_history_against_full_read(
    batches: list[list[tuple[str, str, str, int, float]]], dont_use: set[str], purpose: str
) -> None:
    clock = Clock()
    store = shop(clock=clock)
    for u in ("u1", "u2", "u3"):
        store.grant(u, purpose, source="test")
    with retention_lifted(store):  # events held past retention: reads leave them out
        for b, batch in enumerate(batches):  # one ingest per batch: one segment each
            store.ingest([
                event(u, i, f, value=v, id=f"{b}-{k}",
                      at=(clock.now - timedelta(days=d)).isoformat())
                for k, (u, i, f, d, v) in enumerate(batch)
            ])
    for item in dont_use:
        store.feedback("u1", item, "dont_use")
    view = store.scope(purpose)
    full = view.events()
    for u in ("u1", "u2", "u3"):
        mine = full.user == list(full.users).index(u) if u in full.users else full.user < 0
        order = np.argsort(full.at[mine], kind="stable")
        hist = view.history(u)
        assert [str(x) for x in hist.items[hist.item]] == [
            str(x) for x in full.items[full.item[mine][order]]
        ]
        assert hist.features == full.features
        assert hist.feature.tolist() == full.feature[mine][order].tolist()
        assert hist.value.tolist() == full.value[mine][order].tolist()
        assert hist.at.tolist() == full.at[mine][order].tolist()
        assert hist.at.dtype == full.at.dtype and hist.value.dtype == full.value.dtype
        assert hist.item.dtype == np.int32 and hist.feature.dtype == np.int16
        assert hist.user.dtype == full.user.dtype == np.int32
        assert hist.users.dtype == full.users.dtype == object  # ids as str, not numpy str_
        assert list(hist.users) == ([u] if len(hist) else [])
        assert len(set(hist.items.tolist())) == hist.items.size  # each item once, all used
        assert set(hist.item.tolist()) == set(range(hist.items.size))
        with_lineage, lineage = view.history_with_lineage(u)  # the same read, with lineage
        for name in ("users", "items", "user", "item", "feature", "value", "at"):
            got, want = getattr(with_lineage, name), getattr(hist, name)
            assert got.dtype == want.dtype and got.tolist() == want.tolist(), name
        assert with_lineage.features == hist.features and lineage.rows == len(hist)


def test_reads_see_the_items_another_handle_added(tmp_path: Path) -> None:
    """Items first stored through another handle on the same file (the next code after
    every item this handle has seen) show in this handle's next read of each kind."""
    path = tmp_path / "shop.db"
    mine = shop(str(path), clock=Clock())
    mine.grant("u1", "personalization", source="form")
    mine.ingest([event("u1", "a")])
    view = mine.scope("personalization")
    assert list(view.history("u1").items) == ["a"]  # this handle has seen item "a"
    other = persona.Store(path, clock=Clock())
    other.ingest([event("u1", "b", at="2026-11-02T10:00:00Z")])
    assert list(view.history("u1").items) == ["a", "b"]  # one person's few events
    other.ingest([event("u1", "c", at="2026-11-03T10:00:00Z")])
    assert sorted(view.events().items) == ["a", "b", "c"]  # everyone's events
    other.feedback("u1", "d", "not_interested")
    assert view.not_interested("u1") == {"d"}


def test_a_history_without_consent_is_empty_with_the_purposes_features() -> None:
    """A person without active consent (never granted, or declined) gets empty columns
    that still name the features the purpose allows, as everyone else's reads do."""
    store = shop(clock=Clock())
    store.decline("u2", "personalization", source="banner")
    store.ingest([event("u1", "a"), event("u2", "a")])
    view = store.scope("personalization")
    for user in ("u1", "u2", "nobody"):
        cols = view.history(user)
        assert len(cols) == 0 and cols.features == ("purchases", "views")
        cols, lineage = view.history_with_lineage(user)
        assert len(cols) == 0 and cols.features == ("purchases", "views")
        assert not lineage.active and lineage.rows == 0 and lineage.used == ()


@pytest.mark.parametrize(
    "read", ["history", "history_with_lineage", "person_lineage", "person_for_serving",
             "not_interested"],
)
def test_a_person_read_refuses_a_bad_id_naming_the_user_field(read: str) -> None:
    store = shop(clock=Clock())
    view = store.scope("personalization")
    before = len(store.audit.entries())
    for bad in (4.2, True, "", "u\x00"):  # an int is an id since issue 22: not here
        with pytest.raises(persona.ValidationError) as info:
            getattr(view, read)(bad)
        assert info.value.code == "validation_error"
        assert info.value.errors[0]["field"] == "user"
    assert len(store.audit.entries()) == before  # refused before anything was read
