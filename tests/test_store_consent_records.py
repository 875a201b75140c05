"""Consent records field by field: what each consent call writes, returns and audits, what
it refuses (and that a refused call changes nothing), and the signals' "only changes" rule.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

import persona
from persona.errors import ValidationError
from store_helpers import Clock, event, fingerprint, shop


def _store() -> tuple[persona.Store, Clock]:
    clock = Clock()
    return shop(clock=clock), clock


def test_a_grant_returns_stores_and_audits_the_full_record() -> None:
    store, clock = _store()
    at = clock.now - timedelta(days=2)
    record = store.grant("u1", "personalization", source="signup form v3",
                         notice_version="2026-11", at=at)
    assert record.model_dump() == {
        "purpose": "personalization", "action": "grant", "at": at, "recorded_at": clock.now,
        "source": "signup form v3", "notice_version": "2026-11", "signal": None,
    }
    assert store.consent_history("u1") == [record]
    entry = store.audit.entries(action="consent_grant")[-1]
    assert entry.detail == record.model_dump(mode="json")
    assert entry.subject == store.pseudonym("u1") != "u1"


@pytest.mark.parametrize("action", ["grant", "withdraw", "decline"])
def test_each_action_is_recorded_as_itself(action: str) -> None:
    store, clock = _store()
    record = getattr(store, action)("u1", "analytics", source="banner")
    assert (record.action, record.at, record.recorded_at) == (action, clock.now, clock.now)
    assert store.consent_status("u1") == {"personalization": None, "analytics": record,
                                          "ads": None}
    assert store.has_consent("u1", "analytics") is (action == "grant")
    assert store.consented("analytics") == ({"u1"} if action == "grant" else set())
    assert [e.action for e in store.audit.entries()[-1:]] == [f"consent_{action}"]


def test_withdraw_defaults_its_source() -> None:
    store, _ = _store()
    assert store.withdraw("u1", "analytics").source == "api"


def test_history_is_ordered_by_when_chosen_then_by_recording() -> None:
    store, clock = _store()
    t0 = clock.now - timedelta(days=10)
    store.grant("u1", "personalization", source="a", at=t0)
    store.withdraw("u1", "personalization", source="b", at=t0)  # same time, later: wins
    assert not store.has_consent("u1", "personalization")
    store.grant("u1", "analytics", source="c", at=t0 - timedelta(days=1))
    assert [(r.source, r.purpose) for r in store.consent_history("u1")] == [
        ("c", "analytics"), ("a", "personalization"), ("b", "personalization")]
    # a choice dated before the current one is history, not the state
    store.grant("u1", "personalization", source="d", at=t0 - timedelta(days=3))
    assert not store.has_consent("u1", "personalization")
    assert store.consent_status("u1")["personalization"].source == "b"
    # a later one is the state
    store.grant("u1", "personalization", source="e", at=t0 + timedelta(days=1))
    assert store.has_consent("u1", "personalization")
    assert store.consent_status("u1")["personalization"].source == "e"


def test_unknown_people_have_no_history_and_no_consent() -> None:
    store, _ = _store()
    store.grant("u1", "personalization", source="form")
    assert store.consent_history("nobody") == []
    assert store.has_consent("nobody", "personalization") is False
    assert store.consent_status("nobody") == dict.fromkeys(store.purposes)
    # another person's or another purpose's grant says nothing about this one
    store.withdraw("u2", "personalization")
    store.grant("u2", "analytics", source="form")
    assert not store.has_consent("u2", "personalization")
    assert store.consented("personalization") == {"u1"}
    assert store.consented("analytics") == {"u2"}


# each message names what to give instead (the fix), not only what was wrong
_SAYS = {"source": r"source='signup form v3'", "notice_version": r"notice_version='2026-11'"}


@pytest.mark.parametrize(("kw", "field", "message", "says"), [
    ({"source": ""}, "source", "empty", _SAYS["source"]),
    ({"source": "  \t"}, "source", "empty", _SAYS["source"]),
    ({"source": None}, "source", "empty", _SAYS["source"]),
    ({"source": "ok", "notice_version": ""}, "notice_version", "not a str",
     _SAYS["notice_version"]),
    ({"source": "ok", "notice_version": "  "}, "notice_version", "not a str",
     _SAYS["notice_version"]),
    ({"source": "ok", "notice_version": 3}, "notice_version", "not a str",
     _SAYS["notice_version"]),
    ({"source": "ok", "notice_version": "v" * 201}, "notice_version", "not a str",
     _SAYS["notice_version"]),
    ({"source": "ok", "notice_version": "v\ud800"}, "notice_version", "not a str",
     _SAYS["notice_version"]),
    ({"source": "ok", "at": "2999-01-01T00:00:00Z"}, "at", "in the future",
     "pass the past time they were made"),
    ({"source": "ok", "at": "2026-11-01T10:00:00"}, "at", "no time zone", "time zone"),
    ({"source": "ok", "at": "yesterday"}, "at", "no time zone", "time zone"),
    ({"source": "form \ud800"}, "source", "lone surrogate", "give valid Unicode text"),
])
def test_invalid_consent_calls_change_nothing(kw: dict, field: str, message: str,
                                              says: str) -> None:
    store, _ = _store()
    store.grant("u0", "analytics", source="form")
    before = fingerprint(store)
    with pytest.raises(ValidationError, match=re.escape(says)) as info:
        store.grant("u1", "personalization", **kw)
    assert info.value.errors == [{"row": None, "field": field, "message": message}]
    assert fingerprint(store) == before


def test_limits_that_are_accepted() -> None:
    store, clock = _store()
    assert store.grant("u1", "ads", source="x", notice_version="v" * 200).notice_version == (
        "v" * 200)
    assert store.grant("u1", "ads", source="x", at=clock.now).at == clock.now
    assert store.grant("u1", "ads", source=" x ").source == " x "


def test_an_erased_person_saying_no_stores_nothing_but_is_audited() -> None:
    store, _ = _store()
    store.grant("u1", "ads", source="form")
    store.erase("u1")
    before = store.stats()
    records = store.do_not_sell("u1")
    assert [(r.purpose, r.action, r.signal) for r in records] == [("ads", "withdraw", "gpc")]
    record = store.decline("u1", "personalization", source="banner")
    assert record.action == "decline" and record.source == "banner"
    after = store.stats()
    assert after.pop("audit_entries") == before.pop("audit_entries") + 2
    assert after == before
    assert store.consent_history("u1") == []
    entries = store.audit.entries(subject=store.pseudonym("u1"))[-2:]
    assert [(e.action, e.detail) for e in entries] == [
        ("consent_withdraw", {"purpose": "ads", "stored": False, "reason": "erased person"}),
        ("consent_decline", {"purpose": "personalization", "stored": False,
                             "reason": "erased person"}),
    ]
    # their events are still refused until they grant again
    with pytest.raises(persona.SuppressedSubjectError):
        store.ingest([{"user": "u1", "item": "a", "feature": "purchases", "value": 1.0,
                       "at": "2026-11-01T10:00:00Z"}])
    store.grant("u1", "personalization", source="form")
    assert store.ingest([{"user": "u1", "item": "a", "feature": "purchases", "value": 1.0,
                          "at": "2026-11-01T10:00:00Z"}]).inserted == 1


def test_tcf_records_only_changes_with_its_signal() -> None:
    store, _ = _store()
    store.define_purpose("measure", description="Measure ads", tcf_purposes=(7,))
    records = store.apply_tcf("u1", [1, 3, 4], notice_version="tcf-5")
    assert [(r.purpose, r.action, r.signal, r.source, r.notice_version) for r in records] == [
        ("ads", "grant", "tcf", "IAB TCF v2.2 consent string", "tcf-5")]
    # "measure" was never granted: no withdrawal is written for it
    assert store.consent_status("u1")["measure"] is None
    assert store.apply_tcf("u1", (1, 3, 4, 7)) == [
        store.consent_status("u1")["measure"]]
    assert [r.purpose for r in store.apply_tcf("u1", [])] == ["ads", "measure"]
    assert store.apply_tcf("u1", []) == []  # withdrawn already: no change
    # a declined purpose is not withdrawn again by a signal, but is granted by one
    store.decline("u2", "ads", source="banner")
    assert [r.action for r in store.apply_tcf("u2", [2])] == ["withdraw"]
    assert [r.action for r in store.apply_tcf("u2", [1, 3, 4])] == ["grant"]


@pytest.mark.parametrize(("bad", "message"), [
    ([True, 3], "not an int"), (["1"], "not an int"), ([1.0], "not an int"),
    ("134", "not a list"), (5, "not a list"), (None, "not a list"),
])
def test_tcf_purposes_must_be_ints(bad, message: str) -> None:
    store, _ = _store()
    before = fingerprint(store)
    with pytest.raises(ValidationError, match=r"purposes.*e\.g\. (purposes=)?\[1, 3, 4\]") as info:
        store.apply_tcf("u1", bad)
    assert info.value.errors == [{"row": None, "field": "purposes", "message": message}]
    assert fingerprint(store) == before


def test_consent_mode_records_only_changes() -> None:
    store, _ = _store()
    both = {"ad_user_data": "granted", "ad_personalization": "granted"}
    records = store.apply_consent_mode("u1", both)
    assert [(r.purpose, r.action, r.signal, r.source) for r in records] == [
        ("ads", "grant", "consent_mode", "Google Consent Mode")]
    assert store.apply_consent_mode("u1", both) == []
    assert store.apply_consent_mode("u1", {"ad_user_data": "granted"}) == []  # incomplete
    assert store.has_consent("u1", "ads")
    records = store.apply_consent_mode("u1", {"ad_personalization": "denied"}, source="cmp")
    assert [(r.action, r.source) for r in records] == [("withdraw", "cmp")]
    assert store.apply_consent_mode("u1", {"ad_personalization": "denied"}) == []
    assert store.apply_consent_mode("u2", {"ad_user_data": "denied"}) == []  # never granted


@pytest.mark.parametrize(("signals", "field", "message"), [
    ([("ad_user_data", "granted")], "signals", "not a dict"), ("granted", "signals", "not a dict"),
    ({"ad_user_data": "yes"}, "ad_user_data", "invalid value"),
    ({"ad_user_data": True}, "ad_user_data", "invalid value"),
])
def test_consent_mode_signals_validate(signals, field: str, message: str) -> None:
    store, _ = _store()
    before = fingerprint(store)
    said = (f"give a dict such as .*, not a {type(signals).__name__}$" if field == "signals"
            else f"signal 'ad_user_data' must be 'granted' or 'denied', not {signals[field]!r}")
    with pytest.raises(ValidationError, match=said) as info:
        store.apply_consent_mode("u1", signals)
    assert info.value.errors == [{"row": None, "field": field, "message": message}]
    assert fingerprint(store) == before


def test_do_not_sell_returns_what_it_wrote() -> None:
    store, clock = _store()
    store.grant("u1", "ads", source="form")
    records = store.do_not_sell("u1")
    assert [r.model_dump() for r in records] == [{
        "purpose": "ads", "action": "withdraw", "at": clock.now, "recorded_at": clock.now,
        "source": "Global Privacy Control", "notice_version": None, "signal": "gpc"}]
    assert store.consent_history("u1")[-1] == records[0]


@pytest.mark.parametrize("call", [
    lambda s, u: s.grant(u, "ads", source="form"),
    lambda s, u: s.withdraw(u, "ads"),
    lambda s, u: s.decline(u, "ads", source="form"),
    lambda s, u: s.do_not_sell(u),
    lambda s, u: s.apply_tcf(u, [1]),
    lambda s, u: s.apply_consent_mode(u, {"ad_user_data": "granted"}),
    lambda s, u: s.consent_history(u),
    lambda s, u: s.consent_status(u),
    lambda s, u: s.has_consent(u, "ads"),
], ids=["grant", "withdraw", "decline", "do_not_sell", "tcf", "consent_mode", "history",
        "status", "has_consent"])
def test_a_bad_user_id_is_refused_naming_the_user_field(call) -> None:
    store, _ = _store()
    before = fingerprint(store)
    for bad in ("", 7.5, True):  # (an int is an id: the id rule)
        with pytest.raises(ValidationError, match="user") as info:
            call(store, bad)
        assert [e["field"] for e in info.value.errors] == ["user"]
    assert fingerprint(store) == before


def test_reading_consent_never_creates_a_person() -> None:
    store, _ = _store()
    before = fingerprint(store)
    assert store.has_consent("nobody", "ads") is False
    assert store.consent_history("nobody") == []
    assert store.consented("ads") == set()
    assert fingerprint(store) == before


@pytest.mark.parametrize("action", ["withdraw", "decline"])
def test_refusals_keep_their_notice_version_and_time(action: str) -> None:
    store, clock = _store()
    at = clock.now - timedelta(hours=5)
    record = getattr(store, action)("u1", "ads", source="banner", notice_version="n7", at=at)
    assert (record.notice_version, record.at, record.recorded_at) == ("n7", at, clock.now)
    assert store.consent_history("u1") == [record]


def test_a_grant_after_erasure_lifts_the_suppression() -> None:
    # erase: the person is suppressed (export says erased, feedback is refused); their own
    # grant lifts it, and only a grant does
    store, _ = _store()
    store.grant("u1", "personalization", source="form")
    store.erase("u1")
    assert store.export("u1")["erased"] is True
    with pytest.raises(persona.SuppressedSubjectError):
        store.feedback("u1", "sku-9", "dont_use")
    store.grant("u1", "personalization", source="settings page")
    assert store.export("u1")["erased"] is False
    assert store.feedback("u1", "sku-9", "dont_use").kind == "dont_use"
    # a grant mixed with withdrawals in one signal lifts it too, a withdrawal alone does not
    store.erase("u1")
    store.apply_consent_mode("u1", {"ad_user_data": "denied"})
    assert store.export("u1")["erased"] is True
    store.apply_tcf("u1", [1, 3, 4])
    assert store.export("u1")["erased"] is False


def test_a_features_refused_purpose_is_named_with_the_persons_own_record() -> None:
    # location serves only ads; the person withdrew ads, so their lineage for
    # personalization names that withdrawal, field for field, as why location is not used
    store, clock = _store()
    store.grant("u1", "personalization", source="form")
    store.ingest([event("u1", "sku-1", "location"), event("u1", "sku-2", "purchases")])
    store.grant("u1", "ads", source="banner", notice_version="n3")
    clock.advance(days=1)
    withdrawn = store.withdraw("u1", "ads", source="privacy settings", notice_version="n4",
                               at=clock.now - timedelta(hours=3))
    store.grant("u2", "ads", source="banner")  # someone else's later record is not theirs
    lineage = store.scope("personalization").person_lineage("u1")
    [location] = [d for d in lineage.not_used if d.feature == "location"]
    assert (location.reason, location.events) == ("not_allowed_for_purpose", 1)
    assert location.choice == withdrawn
    assert location.choice.model_dump() == store.consent_history("u1")[-1].model_dump()


def test_a_signal_records_the_source_it_was_given() -> None:
    """GPC and TCF signals record the ``source`` the caller names (their defaults only when
    none is given), as Consent Mode does."""
    store, _ = _store()
    store.grant("u1", "ads", source="form")
    gpc = store.do_not_sell("u1", source="browser header Sec-GPC: 1")
    assert [(r.signal, r.source) for r in gpc] == [("gpc", "browser header Sec-GPC: 1")]
    tcf = store.apply_tcf("u1", [1, 3, 4], source="cmp tc string")
    assert [(r.signal, r.source) for r in tcf] == [("tcf", "cmp tc string")]
    store.grant("u2", "ads", source="form")
    assert [r.source for r in store.do_not_sell("u2")] == ["Global Privacy Control"]
