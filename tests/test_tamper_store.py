"""Issue 16 point 9 and issue 17 point 9: the consent, privacy ledger and budget tables are
under the audit log's hash chain.

Each attack is what someone holding the store file would do: open it with sqlite3, drop
every trigger (listed from ``sqlite_master``), then delete or edit rows. Before, the chain
covered only its own entries: ``audit.verify()`` stayed True, ``has_consent`` flipped and
a fit refused for lack of budget went through.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import persona
from persona.privacy import BudgetLedger
from persona.schema import PrivacySpent
from store_helpers import Clock, event, file_rows, own_connection, shop
from test_personalizer import shop_with_people


def attack(path: str | Path, *statements: str) -> None:
    """Drop every trigger of the file, run ``statements``, commit."""
    con = sqlite3.connect(str(path))
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f'DROP TRIGGER "{name}"')
    for sql in statements:
        con.execute(sql)
    con.commit()
    con.close()


def busy(path: Path) -> persona.Store:
    """A store where every kind of consent, ledger and budget change has happened,
    erasures included."""
    clock = Clock()
    store = shop(str(path), clock=clock)
    for u in range(6):
        store.grant(f"u{u}", "personalization", source="signup form v3", notice_version="3")
        clock.advance(minutes=1)
    store.ingest([event(f"u{u}", "sku-1") for u in range(6)])
    store.withdraw("u1", "personalization", source="settings")
    store.decline("u2", "analytics", source="banner")
    store.grant("u3", "personalization", source="late form", at="2026-01-01T00:00:00Z")
    store.do_not_sell("u4")
    store.apply_tcf("u5", [1, 3, 4])
    store.apply_consent_mode("u0", {"ad_user_data": "granted", "ad_personalization": "denied"})
    store.erase("u2")
    store.withdraw("u2", "personalization")  # an erased person's "no": nothing stored
    store.erase("gone")  # never held
    store.grant("u2", "personalization", source="came back")  # lifts the suppression
    store.erase("u5")
    clock.advance(minutes=1)
    store.grant("u6", "analytics", source="form")
    store.set_privacy_budget("personalization", epsilon=4.0, delta=1e-5)
    store.set_privacy_budget("analytics", epsilon=1, delta=0)
    store.set_privacy_budget("personalization", epsilon=3.0, delta=1e-5)  # replaced
    ledger = BudgetLedger(store.charge_storage(), epsilon_budget=3.0, delta_budget=1e-5)
    spend = PrivacySpent(mechanism="dp-als", epsilon=1.0, delta=1e-6, rho=0.05)
    for _ in range(3):
        ledger.charge(spend, purpose="personalization", snapshot="audit#1")
    return store


@pytest.fixture
def store(tmp_path: Path) -> persona.Store:
    return busy(tmp_path / "shop.db")


def test_normal_operations_keep_verify_true(store: persona.Store) -> None:
    assert store.audit.verify()
    store.audit.check()
    assert store.has_consent("u2", "personalization")
    assert not store.has_consent("u5", "ads")
    assert store.privacy_budget("personalization") == (3.0, 1e-5)


def test_a_private_fit_through_the_personalizer_keeps_verify_true() -> None:
    store = shop_with_people()
    p = persona.Personalizer(
        store, model=persona.ALS(factors=4, iterations=2, random_state=0),
        privacy=persona.DP(epsilon=4.0, delta=1e-6),
    ).fit()
    store.set_privacy_budget("personalization", epsilon=8.0, delta=2e-6)
    p.fit()
    p.forget("p0")
    assert len(store.charge_storage().load_charges()) == 4
    assert store.audit.verify()


def test_two_handles_keep_verify_true(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    first = shop(str(path), clock=Clock())
    second = persona.Store(path, clock=Clock())
    for i in range(4):
        (first if i % 2 else second).grant(f"u{i}", "personalization", source="form")
        (second if i % 2 else first).set_privacy_budget("ads", epsilon=1.0 + i, delta=0.0)
    first.erase("u1")
    assert first.audit.verify() and second.audit.verify()


ATTACKS: dict[str, tuple[str, ...]] = {
    # the ledger and the budget
    "ledger row deleted": ("DELETE FROM privacy_ledger WHERE seq = 2",),
    "every ledger row deleted": ("DELETE FROM privacy_ledger",),
    "charge edited": (
        "UPDATE privacy_ledger SET charge = replace(charge, '\"epsilon\":1.0', "
        "'\"epsilon\":0.1') WHERE seq = 1",
    ),
    "charge moved to another purpose": (
        "UPDATE privacy_ledger SET purpose = 'analytics' WHERE seq = 3",
    ),
    "charge inserted": (
        "INSERT INTO privacy_ledger(at, purpose, charge) SELECT at, purpose, charge "
        "FROM privacy_ledger WHERE seq = 1",
    ),
    "budget raised": ("UPDATE privacy_budget SET epsilon = 100 WHERE purpose = 'personalization'",),
    "budget delta raised": ("UPDATE privacy_budget SET delta = 0.5 WHERE purpose = 'analytics'",),
    "budget deleted": ("DELETE FROM privacy_budget WHERE purpose = 'analytics'",),
    "budget inserted": (
        "INSERT INTO privacy_budget(purpose, epsilon, delta, at) VALUES ('ads', 9, 0, 'x')",
    ),
    # consent history
    "consent source edited": ("UPDATE consent_events SET source = 'forged' WHERE seq = 1",),
    "consent action edited": (
        "UPDATE consent_events SET action = 'grant' WHERE action = 'withdraw'",
    ),
    "consent time edited": (
        "UPDATE consent_events SET at = at - 1 WHERE seq = (SELECT min(seq) FROM "
        "consent_events WHERE subject_id = (SELECT id FROM subjects WHERE ext = 'u3'))",
    ),
    "consent notice edited": (
        "UPDATE consent_events SET notice_version = '4' WHERE notice_version = '3'",
    ),
    "consent moved to another person": (
        "UPDATE consent_events SET subject_id = (SELECT max(id) FROM subjects) WHERE seq = 1",
    ),
    "consent moved to another purpose": (
        "UPDATE consent_events SET purpose_id = (SELECT id FROM purposes WHERE name = 'ads') "
        "WHERE seq = 1",
    ),
    "consent record deleted": (
        "DELETE FROM consent_events WHERE seq = (SELECT min(seq) FROM consent_events "
        "WHERE subject_id = (SELECT id FROM subjects WHERE ext = 'u3'))",
    ),
    "last consent record deleted": (
        "DELETE FROM consent_events WHERE seq = (SELECT max(seq) FROM consent_events)",
    ),
    "consent record inserted": (
        "INSERT INTO consent_events(subject_id, purpose_id, action, at, recorded_at, source) "
        "SELECT subject_id, purpose_id, 'grant', at + 1, recorded_at + 1, source "
        "FROM consent_events WHERE seq = (SELECT max(seq) FROM consent_events)",
    ),
    "person renamed": ("UPDATE subjects SET ext = 'someone-else' WHERE ext = 'u0'",),
    # the current state
    "consent state flipped": (
        "UPDATE consent_state SET action = 'grant' WHERE action = 'withdraw'",
    ),
    "consent state deleted": ("DELETE FROM consent_state WHERE action = 'grant'",),
    "consent state inserted": (
        "INSERT INTO consent_state(purpose_id, subject_id, action, at, seq) "
        "SELECT (SELECT id FROM purposes WHERE name = 'ads'), subject_id, 'grant', at, seq "
        "FROM consent_events WHERE seq = 1",
    ),
}


@pytest.mark.parametrize("how", sorted(ATTACKS))
def test_row_tampering_makes_verify_false(store: persona.Store, how: str) -> None:
    assert store.audit.verify()
    attack(store.path, *ATTACKS[how])
    assert not store.audit.verify()
    with pytest.raises(persona.AuditError, match="failed verification"):
        store.audit.check()
    assert store.audit.verify(tables=False)  # the chain itself is untouched


def test_a_flipped_consent_state_changes_has_consent_but_not_verify(
    store: persona.Store,
) -> None:
    """The case of issue 17: has_consent flips, verify() must not stay True."""
    assert not store.has_consent("u1", "personalization")
    attack(
        store.path,
        "UPDATE consent_state SET action = 'grant' WHERE subject_id = "
        "(SELECT id FROM subjects WHERE ext = 'u1')",
    )
    assert store.has_consent("u1", "personalization")
    problems = store.audit.problems()
    assert any("consent state" in p for p in problems)


def test_erased_peoples_consent_rows_put_back_are_caught(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    store = shop(str(path), clock=Clock())
    store.grant("ana", "personalization", source="form")
    rows = file_rows(
        store, "SELECT subject_id, purpose_id, action, at, recorded_at, source FROM consent_events"
    )
    store.erase("ana")
    store.grant("bo", "personalization", source="form")
    assert store.audit.verify()
    values = ", ".join(repr(v) for v in rows[0])
    attack(
        path,
        f"INSERT INTO subjects(id, ext, pseudonym, created_at) VALUES ({rows[0][0]}, 'ana', "
        "'x', 0)",
        "INSERT INTO consent_events(subject_id, purpose_id, action, at, recorded_at, source) "
        f"VALUES ({values})",
    )
    assert not store.audit.verify()


def test_a_refused_fit_stays_refused_after_the_ledger_is_emptied(tmp_path: Path) -> None:
    """Issue 16 point 9: deleting the charges let a fit over budget through."""
    store = shop_with_people(path=str(tmp_path / "shop.db"))
    p = persona.Personalizer(
        store, model=persona.ALS(factors=4, iterations=2, random_state=0),
        privacy=persona.DP(epsilon=4.0, delta=1e-6),
    ).fit()
    with pytest.raises(persona.PrivacyBudgetExceeded):
        p.fit()
    attack(store.path, "DELETE FROM privacy_ledger")
    assert not store.audit.verify()
    with pytest.raises(persona.AuditError, match="ledger or budget does not match"):
        p.fit()
    with pytest.raises(persona.AuditError):
        store.charge_storage().load_charges()


def test_a_raised_budget_is_refused_by_the_budget_check(store: persona.Store) -> None:
    attack(store.path, "UPDATE privacy_budget SET epsilon = 100")
    with pytest.raises(persona.AuditError, match="budget of 'personalization' differs"):
        store.privacy_budget("personalization")
    with pytest.raises(persona.AuditError):
        BudgetLedger(store.charge_storage(), epsilon_budget=100).check(
            "personalization", epsilon=1.0, delta=0.0)


def test_budget_raised_in_table_and_entry_alike_is_refused(store: persona.Store) -> None:
    """Editing the audit entry too breaks its hash: caught by the budget check, which
    recomputes the hashes of the ledger's and budgets' entries."""
    attack(
        store.path,
        "UPDATE privacy_budget SET epsilon = 100",
        "UPDATE audit SET detail = replace(detail, '\"epsilon\":3.0', '\"epsilon\":100') "
        "WHERE action = 'privacy_budget'",
    )
    with pytest.raises(persona.AuditError, match="changed after it was written"):
        store.privacy_budget("personalization")
    assert not store.audit.verify()


def test_entries_written_before_row_digests_are_checked_on_their_fields(
    tmp_path: Path,
) -> None:
    """Stores written by earlier persona versions have charge and budget entries without
    the row digest: they verify, and an edit of a field the entry holds is still caught."""
    store = shop(str(tmp_path / "old.db"), clock=Clock())
    spend = PrivacySpent(mechanism="dp-als", epsilon=1.0, delta=1e-6, rho=0.05)
    charge = spend.charge("personalization", "audit#1")
    with store._lock, store._tx():  # as set_privacy_budget and append_charge used to write
        store._con.execute(
            "INSERT INTO privacy_budget(purpose, epsilon, delta, at) VALUES (?, ?, ?, ?)",
            ("personalization", 2.0, 1e-5, "2026-11-26T12:00:00+00:00"),
        )
        store.audit.append(
            "privacy_budget", {"purpose": "personalization", "epsilon": 2, "delta": 1e-5}
        )
        for _ in range(2):
            store._con.execute(
                "INSERT INTO privacy_ledger(at, purpose, charge) VALUES (?, ?, ?)",
                (charge.created_at.isoformat(), charge.purpose, charge.model_dump_json()),
            )
            store.audit.append("privacy_charge", {
                "purpose": charge.purpose, "mechanism": charge.mechanism,
                "epsilon": charge.epsilon, "delta": charge.delta, "rho": charge.rho,
                "snapshot": charge.snapshot, "charge_id": charge.charge_id,
            })
    BudgetLedger(store.charge_storage(), epsilon_budget=3.0).charge(
        spend, purpose="personalization")  # a new-style entry after the old ones
    assert store.audit.verify()
    assert store.privacy_budget("personalization") == (2.0, 1e-5)
    attack(store.path, "DELETE FROM privacy_ledger WHERE seq = 2")
    assert not store.audit.verify()
    with pytest.raises(persona.AuditError, match=r"row 2 .* is missing"):
        store.charge_storage().load_charges()


def test_the_budget_check_finds_its_entries_through_an_index(tmp_path: Path) -> None:
    from persona.store._rows import PRIVACY_ENTRIES_SQL

    store = persona.Store(tmp_path / "shop.db")
    plan = file_rows(store, "EXPLAIN QUERY PLAN " + PRIVACY_ENTRIES_SQL)
    assert "USING INDEX audit_privacy" in plan[0][3]


# ---------------------------------------------------------------- property
OPS = st.lists(
    st.tuples(
        st.sampled_from(["grant", "withdraw", "decline", "erase", "budget"]),
        st.integers(0, 3),  # person
        st.sampled_from(["personalization", "analytics"]),
        st.integers(0, 5),  # days back in time the choice was made
    ),
    min_size=1,
    max_size=25,
)


def _apply(store: persona.Store, clock: Clock, ops: list[tuple[str, int, str, int]]) -> None:
    for kind, person, purpose, back in ops:
        clock.advance(minutes=1)
        user = f"u{person}"
        at = None if back == 0 else f"2026-11-{20 - back:02d}T08:00:00.000123+02:00"
        if kind == "erase":
            store.erase(user)
        elif kind == "budget":
            store.set_privacy_budget(purpose, epsilon=1.0 + person, delta=1e-6 * back)
        else:
            getattr(store, kind)(user, purpose, source=f"s{back}", at=at)


@given(ops=OPS, victim=st.integers(0, 10**6), column=st.sampled_from(
    ["source", "action", "at", "recorded_at", "notice_version", "signal", "delete"]))
def test_any_history_verifies_and_any_consent_edit_is_caught(
    ops: list[tuple[str, int, str, int]], victim: int, column: str
) -> None:
    clock = Clock()
    with tempfile.TemporaryDirectory() as folder:
        store = shop(str(Path(folder) / "shop.db"), clock=clock)
        try:
            _check_consent_edit(store, clock, ops, victim, column)
        finally:
            store.close()


def _check_consent_edit(
    store: persona.Store, clock: Clock, ops: list[tuple[str, int, str, int]], victim: int,
    column: str,
) -> None:
    _apply(store, clock, ops)
    assert store.audit.verify()
    seqs = [r[0] for r in file_rows(store, "SELECT seq FROM consent_events")]
    if not seqs:
        return
    seq = seqs[victim % len(seqs)]
    edit: dict[str, Callable[[], str]] = {
        "source": lambda: "UPDATE consent_events SET source = source || 'x'",
        "action": lambda: "UPDATE consent_events SET action = CASE action WHEN 'grant' THEN "
                          "'withdraw' ELSE 'grant' END",
        "at": lambda: "UPDATE consent_events SET at = at + 1",
        "recorded_at": lambda: "UPDATE consent_events SET recorded_at = recorded_at - 1",
        "notice_version": lambda: "UPDATE consent_events SET notice_version = 'v9'",
        "signal": lambda: "UPDATE consent_events SET signal = 'forged'",
        "delete": lambda: "DELETE FROM consent_events",
    }
    con = own_connection(store)
    con.execute(edit[column]() + f" WHERE seq = {seq}")
    con.close()
    assert not store.audit.verify()
