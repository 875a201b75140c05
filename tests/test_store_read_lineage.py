"""Scoped reads and their lineage, field by field: the whole lineage of a read of everyone
and of one person, the audit entries the reads write, and the per-feature reasons."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest

import persona
from persona.schema import ConsentSnapshot, FeatureNotUsed, FeatureUse, FeatureUsed
from persona.store import _reads as store_module
from store_helpers import Clock, event, retention_lifted, shop

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


def _store() -> tuple[persona.Store, Clock]:
    clock = Clock()
    return shop(clock=clock), clock


def test_the_lineage_of_a_read_of_everyone() -> None:
    store, clock = _store()
    store.grant("u1", "personalization", source="form")
    store.grant("u2", "personalization", source="form")
    store.withdraw("u3", "personalization")
    store.decline("u4", "personalization", source="banner")
    store.decline("u5", "personalization", source="banner")
    store.ingest([event("u1", "a"), event("u1", "b", "views", at="2026-11-25T00:00:00Z"),
                  event("u2", "a"), event("u3", "c"), event("u1", "loc", "location")])
    view = store.scope("personalization")
    cols = view.events()
    lineage = view.lineage
    assert lineage.model_dump(exclude={"audit_seq"}) == {
        "store_id": store.store_id, "purpose": "personalization",
        "purpose_description": "Recommend products from what you buy", "read_at": clock.now,
        "features": (
            FeatureUse(feature="location", category="approximate location", used=False,
                       reason="not allowed for personalization (allowed for ads)").model_dump(),
            FeatureUse(feature="purchases", category="purchase history", used=True,
                       reason="allowed for personalization; only the last 730 days",
                       retention_days=730).model_dump(),
            FeatureUse(feature="views", category="browsing history", used=True,
                       reason="allowed for personalization; only the last 30 days",
                       retention_days=30).model_dump(),
        ),
        "consent": ConsentSnapshot(purpose="personalization", granted=2, withdrawn=1,
                                   declined=2).model_dump(),
        "people": 2, "items": 2, "rows": 3,
        "outside_retention": {},
    }
    assert len(cols) == 3 and list(cols.features) == ["purchases", "views"]
    entry = store.audit.entries(action="scoped_read")[-1]
    assert entry.seq == lineage.audit_seq and entry.subject is None
    assert entry.detail == {"purpose": "personalization", "rows": 3, "people": 2, "items": 2,
                            "features": ["purchases", "views"]}
    ads = store.scope("ads")
    assert len(ads.events()) == 0
    assert ads.lineage.features[0].reason == "allowed for ads"
    assert ads.lineage.features[0].retention_days is None
    assert ads.lineage.features[1].reason == (
        "not allowed for ads (allowed for personalization, analytics)")
    assert ads.lineage.consent.model_dump() == {"purpose": "ads", "granted": 0, "withdrawn": 0,
                                                "declined": 0}
    assert (ads.lineage.people, ads.lineage.items, ads.lineage.rows) == (0, 0, 0)


def test_feature_columns_follow_the_allowed_features_in_name_order() -> None:
    store, _ = _store()
    store.grant("u1", "personalization", source="form")
    store.grant("u1", "ads", source="form")
    store.ingest([event("u1", "a", "views", at="2026-11-25T00:00:00Z"), event("u1", "b"),
                  event("u1", "l", "location")])
    for read in (lambda v: v.events(), lambda v: v.history("u1")):
        cols = read(store.scope("personalization"))
        got = sorted((cols.items[i], cols.features[f])
                     for i, f in zip(cols.item, cols.feature, strict=True))
        assert got == [("a", "views"), ("b", "purchases")]
        assert cols.features == ("purchases", "views")
        cols = read(store.scope("ads"))
        assert [(cols.items[i], cols.features[f])
                for i, f in zip(cols.item, cols.feature, strict=True)] == [("l", "location")]


def test_a_persons_lineage_field_by_field() -> None:
    store, clock = _store()
    store.grant("u1", "personalization", source="form v3", notice_version="n1", at=T0)
    store.grant("u1", "ads", source="banner", at=T0)
    store.decline("u1", "analytics", source="banner", at=T0 + timedelta(days=1))
    old = clock.now - timedelta(days=31)
    with retention_lifted(store):  # "old" is held past retention
        store.ingest([
            event("u1", "a", at="2026-11-20T10:00:00Z"),
            event("u1", "b", at="2026-11-21T10:00:00Z"),
            event("u1", "x", at="2026-11-22T10:00:00Z"),
            event("u1", "v", "views", at="2026-11-25T10:00:00Z"),
            event("u1", "old", "views", at=old.isoformat()),
            event("u1", "l", "location"),
        ])
    store.feedback("u1", "x", "dont_use")
    store.feedback("u1", "n", "not_interested")
    cols, lin = store.scope("personalization").history_with_lineage("u1")
    consent = store.consent_history("u1")[0]
    assert consent.purpose == "personalization"
    assert lin.model_dump(exclude={"audit_seq"}) == {
        "store_id": store.store_id, "purpose": "personalization",
        "purpose_description": "Recommend products from what you buy", "read_at": clock.now,
        "consent": consent.model_dump(), "active": True,
        "used": (
            FeatureUsed(feature="purchases", category="purchase history", events=2,
                        first_at=datetime(2026, 11, 20, 10, tzinfo=UTC),
                        last_at=datetime(2026, 11, 21, 10, tzinfo=UTC)).model_dump(),
            FeatureUsed(feature="views", category="browsing history", events=1,
                        first_at=datetime(2026, 11, 25, 10, tzinfo=UTC),
                        last_at=datetime(2026, 11, 25, 10, tzinfo=UTC)).model_dump(),
        ),
        "not_used": (
            # ads is granted, so no choice of the person's keeps location from this purpose
            FeatureNotUsed(feature="location", category="approximate location",
                           reason="not_allowed_for_purpose", events=1,
                           purpose="personalization").model_dump(),
            FeatureNotUsed(feature="purchases", category="purchase history",
                           reason="excluded_by_person", events=1,
                           purpose="personalization").model_dump(),
            FeatureNotUsed(feature="views", category="browsing history",
                           reason="outside_retention", events=1, purpose="personalization",
                           retention_days=30).model_dump(),
        ),
        "rows": 3,
    }
    assert len(cols) == 3 and lin.rows == len(cols)
    assert sorted(cols.items[i] for i in cols.item) == ["a", "b", "v"]
    entry = store.audit.entries(action="scoped_history_read")[-1]
    assert entry.seq == lin.audit_seq
    assert entry.subject == store.pseudonym("u1")
    assert entry.detail == {"purpose": "personalization", "rows": 3, "lineage": True}
    assert store.scope("personalization").not_interested("u1") == {"n"}
    assert store.audit.entries(action="scoped_history_read")[-1].detail == {
        "purpose": "personalization", "rows": 0, "lineage": False}
    store.scope("personalization").history("u1")
    assert store.audit.entries(action="scoped_history_read")[-1].detail == {
        "purpose": "personalization", "rows": 3, "lineage": False}


def test_a_refusal_of_the_purpose_a_feature_serves_is_named() -> None:
    store, _ = _store()
    store.grant("u1", "ads", source="form", at=T0)
    store.grant("u1", "analytics", source="form", at=T0)
    store.withdraw("u1", "personalization", source="settings", at=T0 + timedelta(days=2))
    store.ingest([event("u1", "a")])  # purchases: personalization and analytics
    lin = store.scope("ads").person_lineage("u1")
    assert lin.active and lin.used == () and lin.rows == 0
    (nu,) = lin.not_used
    assert (nu.reason, nu.events, nu.choice.source, nu.choice.action) == (
        "not_allowed_for_purpose", 1, "settings", "withdraw")
    # the refused purpose is found whichever place it has in the feature's list
    store.define_feature("purchases", purposes=["personalization", "analytics"],
                         category="purchase history", retention_days=730)
    store.decline("u1", "analytics", source="banner", at=T0 + timedelta(days=3))
    (nu,) = store.scope("ads").person_lineage("u1").not_used
    assert nu.choice.purpose == "analytics" and nu.choice.action == "decline"


@pytest.mark.parametrize(("action", "reason"), [("withdraw", "withdrawn"),
                                                 ("decline", "declined"), (None, "no_consent")])
def test_without_consent_everything_is_left_out_with_the_choice_date(action, reason) -> None:
    store, _ = _store()
    if action is not None:
        getattr(store, action)("u1", "personalization", source="s", at=T0)
    store.ingest([event("u1", "a"), event("u1", "b"), event("u1", "v", "views")])
    cols, lin = store.scope("personalization").history_with_lineage("u1")
    assert len(cols) == 0 and not lin.active and lin.used == () and lin.rows == 0
    assert [(n.feature, n.reason, n.events, n.since) for n in lin.not_used] == [
        ("purchases", reason, 2, None if action is None else T0),
        ("views", reason, 1, None if action is None else T0)]
    assert (lin.consent is None) is (action is None)


def test_many_events_read_like_few() -> None:
    """A person with more events than the small-read path takes reads the same through
    numpy: retention, the features allowed and their "don't use" items applied alike."""
    store, clock = _store()
    store.grant("u1", "personalization", source="form")
    rows = []
    for k in range(120):
        at = clock.now - timedelta(days=k)
        feature = ("purchases", "views", "location")[k % 3]
        rows.append(event("u1", f"i{k % 40}", feature, value=float(k), at=at.isoformat()))
    with retention_lifted(store):  # old views held past retention
        store.ingest(rows)
    store.feedback("u1", "i7", "dont_use")
    cols = store.scope("personalization").history("u1")
    expected = sorted(
        (f"i{k % 40}", ("purchases", "views", "location")[k % 3], float(k)) for k in range(120)
        if k % 3 != 2 and (k % 3 == 0 or k <= 30) and k % 40 != 7)
    got = sorted((cols.items[i], cols.features[f], float(v))
                 for i, f, v in zip(cols.item, cols.feature, cols.value, strict=True))
    assert got == expected
    assert list(cols.users) == ["u1"] and set(cols.user.tolist()) == {0}
    everyone = store.scope("personalization").events()
    assert sorted((everyone.items[i], everyone.features[f], float(v)) for i, f, v in zip(
        everyone.item, everyone.feature, everyone.value, strict=True)) == expected


def test_the_view_passes_the_rest_through_to_its_store() -> None:
    store, _ = _store()
    store.define_items({"a": "Boots", "b": "Rope"})
    store.grant("u1", "personalization", source="form")
    store.ingest([event("u1", "a"), event("u2", "b")])
    view = store.scope("personalization")
    assert repr(view) == "ScopedView(purpose='personalization', store=':memory:')"
    assert (view.purpose, view.store_id) == ("personalization", store.store_id)
    assert view.lineage.rows == 1  # no read yet: the lineage reads
    assert store.audit.entries()[-1].action == "scoped_read"
    assert view.users() == ["u1"] and view.items() == ["a"]
    assert view.has_consent("u1") and not view.has_consent("u2")
    assert sorted(view.catalogue()) == ["a", "b"]
    assert view.item_labels(["b"]) == {"b": "Rope"}
    assert view.item_labels() == {"a": "Boots", "b": "Rope"}
    assert store.privacy_budget("personalization") is None
    view.privacy_ledger(default=(2.0, 1e-6))
    assert store.privacy_budget("personalization") == (2.0, 1e-6)
    lineage, wanted = view.person_for_serving("u1")
    assert (lineage.rows, lineage.active, wanted) == (1, True, set())
    assert store.audit.entries()[-1].detail == {
        "purpose": "personalization", "rows": 1, "lineage": True}


@pytest.mark.parametrize("few", [0, 10_000])  # one person's read through numpy / tuples
def test_an_event_exactly_at_the_retention_limit_is_used(few: int) -> None:
    """Retention keeps the last ``retention_days`` days, their first microsecond included
    (as the export's ``within_retention`` says): an event exactly that old is read, by
    every read and counted used by the lineage; one a microsecond older is left out."""
    store, clock = _store()
    store.grant("u1", "personalization", source="form")
    limit = clock.now - timedelta(days=30)  # "views" are kept 30 days
    with retention_lifted(store):  # "too-old" is held past retention
        store.ingest([
            event("u1", "at-limit", "views", at=limit.isoformat()),
            event("u1", "too-old", "views",
                  at=(limit - timedelta(microseconds=1)).isoformat()),
        ])
    view = store.scope("personalization")
    with patch.object(store_module, "_FEW_RECORDS", few):
        assert list(view.history("u1").items) == ["at-limit"]
        cols, lineage = view.history_with_lineage("u1")
        assert list(cols.items) == ["at-limit"]
    assert list(view.events().items) == ["at-limit"]
    assert lineage.used == (
        FeatureUsed(feature="views", category="browsing history", events=1,
                    first_at=limit, last_at=limit),
    )
    assert lineage.not_used == (
        FeatureNotUsed(feature="views", category="browsing history",
                       reason="outside_retention", events=1, purpose="personalization",
                       retention_days=30),
    )
    assert view.person_lineage("u1").model_dump(exclude={"audit_seq"}) == lineage.model_dump(
        exclude={"audit_seq"}
    )
    exported = {e["item"]: e["within_retention"] for e in store.export("u1")["events"]}
    assert exported == {"at-limit": True, "too-old": False}


@pytest.mark.parametrize("read", ["person_lineage", "person_for_serving", "not_interested"])
def test_the_reads_a_serving_request_makes_decode_no_events(read: str) -> None:
    """person_lineage, person_for_serving and not_interested read what a serving request
    checks before it scores, on every request: they never build the person's event columns
    (their callers would drop them), with either decoder, while a history read does."""
    store, _ = _store()
    store.grant("u1", "personalization", source="form")
    store.ingest([event("u1", f"sku-{i}", at=f"2026-11-{1 + i:02d}T10:00:00Z") for i in range(3)])
    view = store.scope("personalization")
    decoded = []

    def spy(name: str) -> Callable[..., Any]:  # records which decoder ran, then runs it
        real = getattr(store_module, name)
        return lambda *a, **k: decoded.append(name) or real(*a, **k)

    for few in (0, 10_000):  # through numpy / through tuples
        with patch.object(store_module, "_FEW_RECORDS", few), \
                patch.object(store_module, "decode", spy("decode")), \
                patch.object(store_module, "person_columns", spy("person_columns")):
            getattr(view, read)("u1")
            assert decoded == []
            assert len(view.history("u1")) == 3 and len(decoded) == 1
            decoded.clear()


@pytest.mark.parametrize("segments", [2, 3])
@pytest.mark.parametrize("many", [False, True])
def test_a_persons_history_is_oldest_first_across_segments(segments: int, many: bool) -> None:
    """Each ingest writes its own segment; a person's read merges them oldest first (ties
    in ingest order), on the small-read path and the numpy one alike."""
    store, clock = _store()
    store.grant("u1", "personalization", source="form")
    per = 40 if many else 2
    written = []
    for s in range(segments):  # each batch is older than the one before
        rows = []
        for k in range(per):
            at = clock.now - timedelta(days=10 * (s + 1), minutes=k)
            rows.append(event("u1", f"s{s}-{k}", value=float(s * 1000 + k), at=at.isoformat()))
        store.ingest(rows[::-1])
        written += rows
    cols = store.scope("personalization").history("u1")
    times = cols.at.astype("datetime64[us]").astype("int64").tolist()
    assert times == sorted(times)
    got = [cols.items[i] for i in cols.item]
    expected = [r["item"] for r in sorted(written, key=lambda r: r["at"])]
    assert got == expected
