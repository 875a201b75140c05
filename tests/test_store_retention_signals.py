"""Retention windows, and consent signals: GPC / do-not-sell, IAB TCF v2.2, Consent Mode."""

from __future__ import annotations

import pytest

from store_helpers import Clock, event, retention_lifted, shop


def test_events_outside_retention_are_invisible_then_deleted() -> None:
    clock = Clock()
    store = shop(clock=clock)
    store.grant("u1", "personalization", source="form")
    with retention_lifted(store):  # "old-view" held past retention
        store.ingest(
            [
                event("u1", "old-view", "views", at="2026-10-20T10:00:00Z"),  # 37 days before now
                event("u1", "new-view", "views", at="2026-11-20T10:00:00Z"),
                event("u1", "buy", "purchases", at="2025-01-01T10:00:00Z"),
            ]
        )
    view = store.scope("personalization")
    assert sorted(view.events().items) == ["buy", "new-view"]
    clock.advance(days=30)
    assert sorted(view.events().items) == ["buy"]
    clock.advance(days=400)
    assert len(view.events()) == 0
    assert store.stats()["events"] == 3
    assert store.apply_retention() == 3
    assert store.stats()["events"] == 0
    assert store.audit.entries()[-1].action == "apply_retention"


def test_do_not_sell_withdraws_every_sharing_purpose_only() -> None:
    store = shop(clock=Clock())
    store.define_purpose("partners", description="Share with partners", sharing=True)
    for p in ("personalization", "ads", "partners"):
        store.grant("u1", p, source="form")
    records = store.do_not_sell("u1", source="Sec-GPC: 1")
    assert sorted(r.purpose for r in records) == ["ads", "partners"]
    assert all(r.signal == "gpc" and r.action == "withdraw" for r in records)
    assert store.has_consent("u1", "personalization")
    assert not store.has_consent("u1", "ads") and not store.has_consent("u1", "partners")


def test_tcf_purposes_map_to_persona_purposes() -> None:
    store = shop(clock=Clock())
    assert [r.action for r in store.apply_tcf("u1", [1, 3, 4, 7])] == ["grant"]
    assert store.has_consent("u1", "ads")
    assert store.apply_tcf("u1", [1, 3, 4]) == []  # no change, nothing recorded
    assert [r.action for r in store.apply_tcf("u1", [1, 3])] == ["withdraw"]
    assert not store.has_consent("u1", "ads")
    assert store.apply_tcf("u2", []) == []  # never granted: nothing to withdraw


@pytest.mark.parametrize(
    ("signals", "expected"),
    [
        ({"ad_user_data": "granted", "ad_personalization": "granted"}, True),
        ({"ad_user_data": "granted", "ad_personalization": "denied"}, False),
        ({"ad_user_data": "granted"}, False),  # incomplete: left as it was (never granted)
    ],
)
def test_consent_mode_signals(signals: dict[str, str], expected: bool) -> None:
    store = shop(clock=Clock())
    store.apply_consent_mode("u1", signals)
    assert store.has_consent("u1", "ads") is expected


def test_backdated_consent_does_not_override_a_later_choice() -> None:
    clock = Clock()
    store = shop(clock=clock)
    store.withdraw("u1", "personalization", source="settings page")
    store.grant("u1", "personalization", source="paper form import", at="2026-01-01T00:00:00+00:00")
    assert not store.has_consent("u1", "personalization")
    history = store.consent_history("u1")
    assert [r.action for r in history] == ["grant", "withdraw"]  # ordered by when chosen


def test_consented_set_follows_the_latest_choice() -> None:
    store = shop(clock=Clock())
    store.grant("u1", "personalization", source="form")
    store.grant("u2", "personalization", source="form")
    store.withdraw("u2", "personalization")
    store.decline("u3", "personalization", source="banner")
    store.grant("u4", "analytics", source="form")
    assert store.consented("personalization") == {"u1"}
    store.erase("u1")
    assert store.consented("personalization") == set()
