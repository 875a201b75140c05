"""Store.record_consents: many people's choices, checked first, written all or none."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import persona


@pytest.fixture
def store() -> persona.Store:
    s = persona.Store(":memory:")
    s.define_purpose("marketing", description="Send offers")
    s.define_purpose("personalization", description="Recommend products")
    return s


def test_every_choice_is_recorded_in_order(store: persona.Store) -> None:
    records = store.record_consents([
        {"user": "u1", "purpose": "marketing", "action": "grant", "source": "CMP",
         "at": "2026-01-05T10:00:00Z", "notice_version": "v3"},
        {"user": "u1", "purpose": "marketing", "action": "withdraw", "source": "CMP",
         "at": "2026-01-06T10:00:00+00:00"},
        {"user": "u2", "purpose": "personalization", "action": "decline", "source": "CMP"},
    ])
    assert [r.action for r in records] == ["grant", "withdraw", "decline"]
    assert not store.has_consent("u1", "marketing")
    history = store.consent_history("u1")
    assert history[0].at == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert history[0].notice_version == "v3"
    assert [e.action for e in store.audit.entries()][-3:] == [
        "consent_grant", "consent_withdraw", "consent_decline"]
    assert store.audit.verify()


@pytest.mark.parametrize(("bad", "field"), [
    ({"user": "u3", "purpose": "nope", "action": "grant", "source": "CMP"}, "purpose"),
    ({"user": "u3", "purpose": "marketing", "action": "yes", "source": "CMP"}, "action"),
    ({"user": 7.5, "purpose": "marketing", "action": "grant", "source": "CMP"}, "user"),
    ({"user": "u3", "purpose": "marketing", "action": "grant", "source": " "}, "source"),
    ({"user": "u3", "purpose": "marketing", "action": "grant", "source": "CMP",
      "at": "2026-01-05 10:00"}, "at"),
    ({"user": "u3", "purpose": "marketing", "action": "grant", "source": "CMP",
      "at": "2999-01-01T00:00:00Z"}, "at"),
    ({"user": "u3", "purpose": "marketing", "action": "grant", "source": "CMP",
      "when": "now"}, "when"),
    (["u3", "marketing", "grant"], "choice"),
])
def test_one_bad_choice_rejects_all(store: persona.Store, bad: object, field: str) -> None:
    head = store.audit.head()
    good = {"user": "u1", "purpose": "marketing", "action": "grant", "source": "CMP"}
    with pytest.raises(persona.ValidationError) as info:
        store.record_consents([good, good, bad])  # type: ignore[list-item]
    assert info.value.errors[0]["row"] == 2
    assert info.value.errors[0]["field"] == field
    assert "nothing was recorded" in str(info.value)
    assert store.audit.head() == head
    assert store.consent_history("u1") == []


def test_a_str_is_not_a_list_of_choices(store: persona.Store) -> None:
    with pytest.raises(persona.ValidationError, match="give a list"):
        store.record_consents("u1,marketing,grant")  # type: ignore[arg-type]


def test_a_str_is_refused_naming_the_argument_and_an_example(store: persona.Store) -> None:
    with pytest.raises(persona.ValidationError) as info:
        store.record_consents("u1,marketing,grant")  # type: ignore[arg-type]
    assert str(info.value) == (
        "field 'choices': give a list, not a str; e.g. "
        "choices=[{'user': 'u1', 'purpose': 'marketing', ...}]")
    assert info.value.errors[0]["field"] == "choices"


@pytest.mark.parametrize(("bad", "field", "message"), [
    (["u3", "marketing", "grant"], "choice", "give a mapping, not a list"),
    ({"user": "u3", "purpose": "marketing", "action": "grant", "source": "CMP", "when": 1},
     "when", "unknown field(s) ['when']"),
    ({"user": "u3", "purpose": "marketing", "action": "yes", "source": "CMP"},
     "action", "field 'action': 'yes' is not 'grant', 'withdraw' or 'decline'"),
    ({"user": "u3", "purpose": 5, "action": "grant", "source": "CMP"},
     "purpose", "field 'purpose': give a purpose's name (a str), not 5"),
    ({"user": "u3", "purpose": "nope", "action": "grant", "source": "CMP"},
     "purpose", "unknown purpose 'nope'"),
    ({"user": "u3", "purpose": "marketing", "action": "grant", "source": "CMP",
      "notice_version": 3}, "notice_version", "notice_version"),
])
def test_the_error_names_the_choice_its_field_and_why(
    store: persona.Store, bad: object, field: str, message: str
) -> None:
    good = {"user": "u1", "purpose": "marketing", "action": "grant", "source": "CMP"}
    with pytest.raises(persona.ValidationError) as info:
        store.record_consents([good, bad])  # type: ignore[list-item]
    [error] = info.value.errors
    assert (error["row"], error["field"]) == (1, field)
    assert message in error["message"]
    assert str(info.value) == (
        "the 2 consent choice(s) were rejected and nothing was recorded: choice 1 (from 0): "
        + error["message"])


def test_a_repeated_choice_is_recorded_each_time_as_grant_is(store: persona.Store) -> None:
    """Like calling grant twice: an import records every choice it holds, also one that
    changes nothing (the record is the evidence of what the platform sent)."""
    choice = {"user": "u1", "purpose": "marketing", "action": "grant", "source": "CMP"}
    assert len(store.record_consents([choice, choice])) == 2
    assert [r.action for r in store.consent_history("u1")] == ["grant", "grant"]
