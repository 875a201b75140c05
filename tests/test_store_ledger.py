"""The privacy budget ledger persisted in the store."""

from __future__ import annotations

import math
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

import persona
import persona.reports
from ledger_helpers import reserve_in_store
from persona.privacy import BudgetLedger, ChargeStorage
from persona.schema import PrivacySpent
from persona.store._sql import SCHEMA_VERSION
from store_helpers import Clock, file_rows, own_connection, shop


def test_ledger_survives_restarts_refuses_overspending_and_is_exported(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.db")
    store = shop(path)
    assert isinstance(store.charge_storage(), ChargeStorage)
    store.set_privacy_budget("personalization", epsilon=5.0, delta=1e-5)
    budget = store.privacy_budget("personalization")
    assert budget == (5.0, 1e-5)
    ledger = BudgetLedger(store.charge_storage(), epsilon_budget=budget[0], delta_budget=budget[1])
    spend = PrivacySpent(mechanism="dp-als", epsilon=2.0, delta=1e-6, rho=0.05)
    ledger.charge(spend, purpose="personalization", snapshot="audit#12")
    ledger.charge(spend, purpose="personalization", snapshot="audit#12")  # charged twice
    store.close()

    again = persona.Store(path)
    ledger = BudgetLedger(again.charge_storage(), epsilon_budget=5.0, delta_budget=1e-5)
    assert ledger.spent("personalization") == pytest.approx((4.0, 2e-6))
    with pytest.raises(persona.PrivacyBudgetExceeded):
        ledger.check("personalization", epsilon=2.0, delta=1e-6)
    again.grant("u1", "personalization", source="form")
    exported = again.export("u1")["privacy_ledger"]
    assert [c["charge"]["mechanism"] for c in exported] == ["dp-als", "dp-als"]
    assert [e.action for e in again.audit.entries(action="privacy_charge")] == [
        "privacy_charge"
    ] * 2
    con = own_connection(again)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM privacy_ledger")
    con.close()
    with pytest.raises(persona.ValidationError):
        again.set_privacy_budget("personalization", epsilon=0.0, delta=1e-6)
    with pytest.raises(persona.UnknownPurposeError):
        again.set_privacy_budget("nope", epsilon=1.0, delta=1e-6)


# ---------------------------------------------------------------------- reservations
def _spend(eps: float, delta: float = 0.0) -> PrivacySpent:
    return PrivacySpent(mechanism="dp-als", epsilon=eps, delta=delta)


def test_two_handles_on_one_file_cannot_both_pass_the_check(tmp_path: Path) -> None:
    """Process A checks the budget and starts reading; process B checks and fits in the
    meantime. The old check-then-charge ledger let both read (and then refused A's charge,
    after the fact); a reservation made before the read refuses B before it reads."""
    path = str(tmp_path / "race.db")
    shop(path).close()
    store_a, store_b = persona.Store(path), persona.Store(path)
    store_a.set_privacy_budget("personalization", epsilon=1.0, delta=1e-5)
    a = BudgetLedger(store_a.charge_storage(), epsilon_budget=1.0)
    b = BudgetLedger(store_b.charge_storage(), epsilon_budget=1.0)
    reads: list[str] = []

    def fit(name: str) -> tuple[str, PrivacySpent]:
        reads.append(name)
        return name, _spend(1.0)

    def a_reads() -> tuple[str, PrivacySpent]:
        with pytest.raises(persona.PrivacyBudgetExceeded, match="Nothing was read"):
            b.run("personalization", epsilon=1.0, delta=0.0, compute=lambda: fit("b"))
        return fit("a")

    a.run("personalization", epsilon=1.0, delta=0.0, compute=a_reads)
    assert reads == ["a"]
    assert b.spent("personalization") == (1.0, 0.0)


def test_processes_racing_for_the_budget_reserve_exactly_what_it_allows(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "race.db")
    store = shop(path)
    store.set_privacy_budget("personalization", epsilon=2.0, delta=1e-5)
    ctx = multiprocessing.get_context("spawn")
    n = 4
    barrier, results = ctx.Barrier(n), ctx.Queue()
    # two of them stop dead after reserving, without settling (a crashed fit)
    procs = [ctx.Process(target=reserve_in_store, args=(path, barrier, results, k % 2 == 0))
             for k in range(n)]
    for p in procs:
        p.start()
    outcomes = sorted(results.get(timeout=300) for _ in range(n))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert outcomes == ["refused", "refused", "reserved", "reserved"]
    ledger = store.privacy_ledger("personalization")
    assert ledger.spent("personalization") == pytest.approx((2.0, 0.0))
    with pytest.raises(persona.PrivacyBudgetExceeded):
        ledger.reserve("personalization", (0.01, 0.0))
    reservations = store.audit.entries(action="privacy_reservation")
    assert len(reservations) == 2
    assert store.audit.verify()


def test_an_unsettled_reservation_is_listed_and_survives_a_crash(tmp_path: Path) -> None:
    path = str(tmp_path / "crash.db")
    shop(path).close()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(1), ctx.Queue()
    store = persona.Store(path)
    store.set_privacy_budget("personalization", epsilon=1.5, delta=1e-5)
    p = ctx.Process(target=reserve_in_store, args=(path, barrier, results, False))
    p.start()
    assert results.get(timeout=300) == "reserved"
    p.join(timeout=60)
    (line,) = store.privacy_charges("personalization")
    assert (line.status, line.epsilon) == ("reserved", 1.0)
    with pytest.raises(persona.PrivacyBudgetExceeded, match="not settled"):
        store.privacy_ledger("personalization").reserve("personalization", (1.0, 0.0))


def test_privacy_charges_lists_settled_and_reserved_lines_oldest_first(tmp_path: Path) -> None:
    store = shop(str(tmp_path / "shop.db"))
    store.set_privacy_budget("personalization", epsilon=5.0, delta=1e-5)
    store.set_privacy_budget("analytics", epsilon=5.0, delta=1e-5)
    ledger = store.privacy_ledger("personalization")
    first = ledger.reserve("personalization", [_spent_named("dp-als", 2.0)])
    ledger.settle(first, [_spent_named("dp-als", 1.9)], snapshot="audit#7")
    store.privacy_ledger("analytics").reserve("analytics", (1.0, 0.0))
    second = ledger.reserve("personalization", (1.0, 1e-6))
    lines = store.privacy_charges("personalization")
    assert [(c.mechanism, c.status, c.epsilon) for c in lines] == [
        ("dp-als", "settled", 1.9), ("reserved", "reserved", 1.0)]
    assert lines[0].reservation_id == first.reservation_id and lines[0].snapshot == "audit#7"
    assert lines[1].charge_id == second.reservation_id
    assert [c.purpose for c in store.privacy_charges()] == [
        "personalization", "analytics", "personalization"]
    # charge_storage().load_charges() still lists recorded charges only
    assert [c.epsilon for c in store.charge_storage().load_charges()] == [1.9]
    with pytest.raises(persona.UnknownPurposeError):
        store.privacy_charges("nope")
    actions = [e.action for e in store.audit.entries() if e.action.startswith("privacy_")]
    assert actions == ["privacy_budget", "privacy_budget", "privacy_reservation",
                       "privacy_charge", "privacy_settlement", "privacy_reservation",
                       "privacy_reservation"]
    con = own_connection(store)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE privacy_ledger SET charge = '{}'")
    con.close()


def _spent_named(mechanism: str, eps: float) -> PrivacySpent:
    return PrivacySpent(mechanism=mechanism, epsilon=eps, delta=0.0)


def test_budget_policy_per_period_is_explicit_and_enforced() -> None:
    clock = Clock()
    store = shop(clock=clock)
    assert store.privacy_budget_policy("personalization") is None
    policy = store.set_privacy_budget("personalization", epsilon=2.0, delta=1e-6,
                                      period_days=30)
    assert store.privacy_budget_policy("personalization") == policy
    assert (policy.epsilon, policy.delta, policy.period_days) == (2.0, 1e-6, 30)
    assert policy.set_at == clock.now
    assert store.privacy_budget("personalization") == (2.0, 1e-6)  # the old API
    entry = store.audit.entries(action="privacy_budget")[-1]
    assert entry.detail["period_days"] == 30
    ledger = store.privacy_ledger("personalization")
    r = ledger.reserve("personalization", (2.0, 1e-6))
    ledger.settle(r, [_spend(2.0, 1e-6)])
    with pytest.raises(persona.PrivacyBudgetExceeded, match="in the last 30 days"):
        ledger.reserve("personalization", (0.5, 0.0))
    clock.advance(days=30)  # the nightly refit of next month
    ledger.reserve("personalization", (2.0, 1e-6))
    # a lifetime total counts everything, whenever it was spent
    store.set_privacy_budget("personalization", epsilon=5.0, delta=1e-5)
    assert store.privacy_budget_policy("personalization").period_days is None
    with pytest.raises(persona.PrivacyBudgetExceeded):
        store.privacy_ledger("personalization").reserve("personalization", (1.5, 0.0))


@pytest.mark.parametrize("kwargs", [
    {"epsilon": math.nan, "delta": 1e-6}, {"epsilon": math.inf, "delta": 1e-6},
    {"epsilon": 1.0, "delta": -1e-6}, {"epsilon": 1.0, "delta": 1.0},
    {"epsilon": True, "delta": 0.0}, {"epsilon": 1.0, "delta": 0.0, "period_days": 0},
    {"epsilon": 1.0, "delta": 0.0, "period_days": 7.0},
    {"epsilon": 1.0, "delta": 0.0, "period_days": True},
])
def test_bad_budgets_are_refused_naming_the_field(kwargs: dict[str, object]) -> None:
    store = shop()
    with pytest.raises(persona.ValidationError) as info:
        store.set_privacy_budget("personalization", **kwargs)  # type: ignore[arg-type]
    field = info.value.errors[0]["field"]
    assert field in kwargs and f"'{field}'" in str(info.value)
    assert store.privacy_budget_policy("personalization") is None


def test_the_first_private_fit_sets_the_budget_when_none_is_set() -> None:
    store = shop()
    view = store.scope("personalization")
    with pytest.raises(persona.PrivacyBudgetExceeded, match="set_privacy_budget"):
        view.privacy_ledger()
    ledger = view.privacy_ledger(default=(1.0, 1e-6))
    assert store.privacy_budget("personalization") == (1.0, 1e-6)
    assert "first private fit" in store.audit.entries(action="privacy_budget")[-1].detail[
        "reason"]
    # a budget once set is kept: the default of a later fit does not replace it
    assert view.privacy_ledger(default=(9.0, 1e-3)).epsilon_budget == 1.0
    r = ledger.reserve(view.purpose, [_spend(1.0, 1e-6)])
    ledger.settle(r, [_spend(1.0, 1e-6)], snapshot="audit#1")
    with pytest.raises(persona.PrivacyBudgetExceeded):
        view.privacy_ledger().reserve(view.purpose, (0.1, 0.0))
    assert [c.status for c in store.privacy_charges("personalization")] == ["settled"]


def test_a_format_2_file_gains_budget_periods(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    store = shop(path)
    store.set_privacy_budget("personalization", epsilon=3.0, delta=1e-6)
    BudgetLedger(store.charge_storage(), epsilon_budget=3.0).charge(
        _spend(1.0), purpose="personalization")
    store.close()
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE privacy_budget DROP COLUMN period_days")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    again = persona.Store(path)
    assert file_rows(
        again, "SELECT value FROM meta WHERE key = 'schema_version'")[0] == (
        str(SCHEMA_VERSION),)
    policy = again.privacy_budget_policy("personalization")
    assert (policy.epsilon, policy.period_days) == (3.0, None)
    assert again.privacy_ledger("personalization").spent("personalization") == (1.0, 0.0)
    assert again.audit.verify()


def test_reports_state_the_budget_policy_and_the_weaker_per_period_guarantee() -> None:
    store = shop()
    store.set_privacy_budget("personalization", epsilon=2.0, delta=1e-6, period_days=30)
    store.set_privacy_budget("analytics", epsilon=4.0, delta=1e-6)
    store.privacy_ledger("personalization").reserve("personalization", (1.0, 0.0))
    rop = persona.reports.records_of_processing(store)
    by = {p.name: p for p in rop.purposes}
    assert by["personalization"].privacy_budget_policy["period_days"] == 30
    text = rop.to_markdown()
    assert "ε = 2, δ = 1 × 10⁻⁶ per rolling 30 days" in text
    assert "up to ε = 26" in text and "13 periods of 30 days" in text
    assert "the guarantee is ε = 26, not ε = 2" in text
    assert "ε = 4, δ = 1 × 10⁻⁶ in total for the lifetime of the store" in text
    assert "none set: the first private fit" in text  # the 'ads' purpose
    assert "| reserved |" in text and "counts at the reserved amount" in text
