"""Retention windows to the microsecond: what a read still sees at the edge of a feature's
window, what ``apply_retention`` deletes (and only that), and what it reports and audits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from store_helpers import Clock, event, retention_lifted, shop

US = timedelta(microseconds=1)


def _at(t) -> str:
    return t.isoformat()


@pytest.mark.parametrize("purpose", ["personalization", "analytics"])
def test_the_oldest_readable_event_is_exactly_retention_days_old(purpose: str) -> None:
    clock = Clock()
    store = shop(clock=clock)
    store.grant("u1", purpose, source="form")
    edge = clock.now - timedelta(days=730)
    with retention_lifted(store):  # "older" held past retention
        store.ingest([event("u1", "edge", "purchases", at=_at(edge)),
                      event("u1", "older", "purchases", at=_at(edge - US)),
                      event("u1", "newer", "purchases", at=_at(edge + US))])
    view = store.scope(purpose)
    assert sorted(view.events().items) == ["edge", "newer"]
    assert sorted(view.history("u1").items) == ["edge", "newer"]
    clock.advance(microseconds=1)
    assert sorted(view.events().items) == ["newer"]
    assert sorted(view.history("u1").items) == ["newer"]


def test_each_feature_keeps_its_own_window_and_unbounded_ones_keep_all() -> None:
    clock = Clock()
    store = shop(clock=clock)
    for p in ("personalization", "ads"):
        store.grant("u1", p, source="form")
    day = timedelta(days=1)
    with retention_lifted(store):  # held past retention
        store.ingest([
            event("u1", "view-29", "views", at=_at(clock.now - 29 * day)),
            event("u1", "view-31", "views", at=_at(clock.now - 31 * day)),
            event("u1", "buy-31", "purchases", at=_at(clock.now - 31 * day)),
            event("u1", "buy-800", "purchases", at=_at(clock.now - 800 * day)),
            event("u1", "loc-5000", "location", at=_at(clock.now - 5000 * day)),
        ])
    assert sorted(store.scope("personalization").events().items) == [
        "buy-31", "view-29"]
    # a feature another purpose may use never shows up, however recent
    assert sorted(store.scope("ads").events().items) == ["loc-5000"]
    assert sorted(store.scope("ads").history("u1").items) == ["loc-5000"]
    # apply_retention deletes what no purpose may read any more, nothing else
    assert store.apply_retention() == 2
    assert store.stats()["events"] == 3
    entry = store.audit.entries(action="apply_retention")[-1]
    assert entry.detail == {"events_deleted": 2, "shown_deleted": 0}
    assert sorted(store.scope("personalization").events().items) == ["buy-31", "view-29"]
    assert store.apply_retention() == 0
    clock.advance(days=100_000)
    assert store.apply_retention() == 2
    assert sorted(store.scope("ads").events().items) == ["loc-5000"]


def test_apply_retention_keeps_the_edge_and_other_people() -> None:
    clock = Clock()
    store = shop(clock=clock)
    edge = clock.now - timedelta(days=30)
    rows = [event(u, f"{u}-{k}", "views", at=_at(edge + k * US)) for u in ("u1", "u2", "u3")
            for k in (-1, 0, 1)]
    with retention_lifted(store):  # held past retention
        store.ingest(rows)
    assert store.apply_retention() == 3
    store.grant("u2", "personalization", source="form")
    assert sorted(store.scope("personalization").events().items) == ["u2-0", "u2-1"]
    assert store.stats()["events"] == 6


def test_retention_follows_a_redefined_window() -> None:
    clock = Clock()
    store = shop(clock=clock)
    store.grant("u1", "personalization", source="form")
    with retention_lifted(store):  # held past retention
        store.ingest([event("u1", "v", "views", at=_at(clock.now - timedelta(days=40)))])
    view = store.scope("personalization")
    assert len(view.events()) == 0
    store.define_feature("views", purposes=["personalization"], category="browsing history",
                         retention_days=60)
    assert list(view.events().items) == ["v"]
    store.define_feature("views", purposes=["personalization"], category="browsing history",
                         retention_days=None)
    clock.advance(days=10_000)
    assert list(view.history("u1").items) == ["v"]
    assert store.apply_retention() == 0


def test_shown_retention_setting() -> None:
    from persona.store._shown import DEFAULT_RETENTION_DAYS

    store = shop(clock=Clock())
    assert store.shown_retention_days == DEFAULT_RETENTION_DAYS
    store.set_shown_retention(45)
    assert store.shown_retention_days == 45
    store.set_shown_retention(None)
    assert store.shown_retention_days is None
    assert [e.detail for e in store.audit.entries(action="shown_retention")] == [
        {"days": 45}, {"days": None}]


def test_a_store_with_no_features_yet_reads_and_applies_retention() -> None:
    import persona

    store = persona.Store(":memory:", clock=Clock())
    store.define_purpose("personalization", description="Recommend")
    store.grant("u1", "personalization", source="form")
    assert len(store.scope("personalization").events()) == 0
    assert len(store.scope("personalization").history("u1")) == 0
    assert store.apply_retention() == 0
