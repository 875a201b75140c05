"""The budget ledger: overspending is refused before data is read, every fit is charged,
the file ledger survives a restart."""

from __future__ import annotations

import math
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from persona.errors import PrivacyBudgetExceeded, StoreError, ValidationError
from persona.privacy import (
    DP,
    BudgetLedger,
    ChargeStorage,
    JsonlChargeStorage,
    MemoryChargeStorage,
    PrivacyCharge,
    PrivacyReservation,
    PrivacySpent,
    private_item_counts,
)
from persona.privacy.sampler import SeededBits


class _Data:
    """Stands in for the store's scoped view: records whether it was read."""

    def __init__(self) -> None:
        import scipy.sparse as sp

        self.reads = 0
        self._X = sp.random(50, 10, density=0.3, format="csr", random_state=0)

    def read(self):
        self.reads += 1
        return self._X


def _fit(data: _Data, cfg: DP):
    return private_item_counts(data.read(), cfg, bits=SeededBits(1))


def test_storages_follow_the_protocol(tmp_path: Path) -> None:
    assert isinstance(MemoryChargeStorage(), ChargeStorage)
    assert isinstance(JsonlChargeStorage(tmp_path / "l.jsonl"), ChargeStorage)


def test_overspend_is_refused_before_any_data_is_read() -> None:
    ledger = BudgetLedger(epsilon_budget=1.5, delta_budget=1e-5)
    data = _Data()
    cfg = DP(epsilon=1.0, delta=1e-6)
    ledger.run("recs", epsilon=cfg.epsilon, delta=cfg.delta, compute=lambda: _fit(data, cfg))
    assert data.reads == 1
    with pytest.raises(PrivacyBudgetExceeded) as info:
        ledger.run("recs", epsilon=cfg.epsilon, delta=cfg.delta,
                   compute=lambda: _fit(data, cfg))
    assert data.reads == 1  # the second fit never touched the data
    message = str(info.value)
    assert "spent ε = 1" in message
    assert "left" in message
    assert "Lower the fit's epsilon" in message
    assert info.value.code == "privacy_budget_exceeded"
    assert len(ledger.charges("recs")) == 1
    # other purposes have their own budget
    ledger.run("ads", epsilon=1.0, delta=1e-6, compute=lambda: _fit(data, cfg))


def test_two_fits_on_the_same_data_are_charged_twice() -> None:
    ledger = BudgetLedger(epsilon_budget=10.0)
    data = _Data()
    cfg = DP(epsilon=1.0, delta=1e-6)
    for _ in range(2):
        ledger.run("recs", epsilon=1.0, delta=1e-6, compute=lambda: _fit(data, cfg),
                   snapshot="snapshot-1")
    charges = ledger.charges("recs")
    assert len(charges) == 2
    assert charges[0].charge_id != charges[1].charge_id
    eps, delta = ledger.spent("recs")
    assert eps == pytest.approx(charges[0].epsilon * 2)
    assert delta == pytest.approx(2e-6)
    assert {c.snapshot for c in charges} == {"snapshot-1"}
    assert all(c.mechanism == "dp-item-counts" for c in charges)


def test_file_ledger_is_intact_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "ledger" / "privacy.jsonl"
    ledger = BudgetLedger(JsonlChargeStorage(path), epsilon_budget=2.5, delta_budget=1e-5)
    data = _Data()
    cfg = DP(epsilon=1.0, delta=1e-6)
    ledger.run("recs", epsilon=1.0, delta=1e-6, compute=lambda: _fit(data, cfg),
               snapshot="s1")
    before = ledger.charges()
    del ledger
    reopened = BudgetLedger(JsonlChargeStorage(path), epsilon_budget=2.5, delta_budget=1e-5)
    after = reopened.charges()
    assert after == before
    assert after[0].unit_of_privacy == "one person"
    assert after[0].created_at.tzinfo is not None
    reopened.run("recs", epsilon=1.0, delta=1e-6, compute=lambda: _fit(data, cfg))
    with pytest.raises(PrivacyBudgetExceeded):
        reopened.check("recs", epsilon=1.0, delta=1e-6)
    exported = reopened.export()
    assert [e["purpose"] for e in exported] == ["recs", "recs"]
    assert {"mechanism", "rho", "epsilon", "delta", "created_at", "snapshot", "bounds"} <= set(
        exported[0])


def test_damaged_file_ledger_is_an_error_not_an_empty_budget(tmp_path: Path) -> None:
    path = tmp_path / "privacy.jsonl"
    storage = JsonlChargeStorage(path)
    storage.append_charge(PrivacySpent(mechanism="m", epsilon=1.0, delta=0.0).charge("p"))
    with path.open("a") as fh:
        fh.write("{not json\n")
    with pytest.raises(StoreError, match="line 2"):
        BudgetLedger(storage, epsilon_budget=5.0).spent("p")


def test_a_computation_that_overruns_its_plan_is_charged_and_refused() -> None:
    ledger = BudgetLedger(epsilon_budget=10.0)

    def greedy():
        return "model", PrivacySpent(mechanism="m", epsilon=3.0, delta=0.0)

    with pytest.raises(PrivacyBudgetExceeded, match="more than the planned"):
        ledger.run("recs", epsilon=1.0, delta=0.0, compute=greedy)
    assert ledger.spent("recs") == (3.0, 0.0)


def test_charge_records_every_field() -> None:
    spent = PrivacySpent(mechanism="dp-als", epsilon=2.0, delta=1e-6, rho=0.1, steps=5,
                         bounds={"max_events_per_person": 64.0})
    charge = spent.charge("recs", snapshot="snap")
    assert isinstance(charge, PrivacyCharge)
    assert charge.model_dump(include=set(PrivacySpent.model_fields)) == spent.model_dump()
    assert "5 noisy steps" in spent.describe()
    with pytest.raises(ValueError, match="timezone"):
        PrivacyCharge(**spent.model_dump(), purpose="p",
                      created_at="2026-01-01T00:00:00")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- reservations
def _ledgers(kind: str, tmp_path: Path, budget: float = 2.0) -> tuple[BudgetLedger, BudgetLedger]:
    """Two handles on one ledger, as two processes would hold them."""
    if kind == "memory":
        storage = MemoryChargeStorage()
        return (BudgetLedger(storage, epsilon_budget=budget),
                BudgetLedger(storage, epsilon_budget=budget))
    path = tmp_path / "ledger.jsonl"
    return (BudgetLedger(JsonlChargeStorage(path), epsilon_budget=budget),
            BudgetLedger(JsonlChargeStorage(path), epsilon_budget=budget))


def _spent(eps: float) -> PrivacySpent:
    return PrivacySpent(mechanism="m", epsilon=eps, delta=0.0)


@pytest.mark.parametrize("kind", ["memory", "jsonl"])
def test_a_fit_that_starts_while_another_runs_is_refused_before_it_reads(
    kind: str, tmp_path: Path
) -> None:
    """Handle A passes the budget check and starts reading; meanwhile handle B checks and
    fits. With a separate check and charge (the old ledger), both read and the ledger
    ends up refusing A's charge after the fact; with a reservation, B never reads."""
    a, b = _ledgers(kind, tmp_path, budget=1.0)
    reads: list[str] = []

    def fit(name: str) -> tuple[str, PrivacySpent]:
        reads.append(name)
        return name, _spent(1.0)

    def a_computes() -> tuple[str, PrivacySpent]:
        with pytest.raises(PrivacyBudgetExceeded, match="Nothing was read"):
            b.run("recs", epsilon=1.0, delta=0.0, compute=lambda: fit("b"))
        return fit("a")

    a.run("recs", epsilon=1.0, delta=0.0, compute=a_computes)
    assert reads == ["a"]
    assert a.spent("recs") == b.spent("recs") == (1.0, 0.0)


@pytest.mark.parametrize("kind", ["memory", "jsonl"])
def test_reserve_settle_and_what_counts(kind: str, tmp_path: Path) -> None:
    a, b = _ledgers(kind, tmp_path, budget=3.0)
    planned = [_spent(1.0), PrivacySpent(mechanism="n", epsilon=0.5, delta=1e-6)]
    r = a.reserve("recs", planned)
    assert (r.epsilon, r.delta) == (1.5, 1e-6)
    # until settled it counts at the reserved amount, for every handle
    assert b.spent("recs") == (1.5, 1e-6)
    (line,) = b.charges("recs")
    assert (line.status, line.charge_id, line.mechanism) == ("reserved", r.reservation_id, "m + n")
    lines = a.settle(r, [_spent(0.8)], snapshot="audit#3")
    assert [c.reservation_id for c in lines] == [r.reservation_id]
    # settled: what it actually spent counts, and the reservation line is gone
    assert b.spent("recs") == (0.8, 0.0)
    assert [(c.status, c.snapshot) for c in b.charges("recs")] == [("settled", "audit#3")]
    with pytest.raises(ValidationError, match="already settled"):
        b.settle(r, [_spent(0.1)])
    assert b.spent("recs") == (0.8, 0.0)
    assert [type(e).__name__ for e in b.entries("recs")] == [
        "PrivacyReservation", "PrivacyCharge", "PrivacySettlement"]
    # a reservation for another purpose, or from another ledger, cannot be settled here
    other = BudgetLedger(epsilon_budget=1.0).reserve("recs", (0.1, 0.0))
    with pytest.raises(ValidationError, match="not in this ledger"):
        a.settle(other, [])


def test_a_reservation_never_settled_keeps_counting_and_cancel_releases_it() -> None:
    storage = MemoryChargeStorage()
    ledger = BudgetLedger(storage, epsilon_budget=2.0)
    r = ledger.reserve("recs", (1.5, 0.0))
    del ledger  # the process stopped between reserve and settle
    again = BudgetLedger(storage, epsilon_budget=2.0)
    assert again.spent("recs") == (1.5, 0.0)
    with pytest.raises(PrivacyBudgetExceeded, match="1 reservation"):
        again.reserve("recs", (1.0, 0.0))
    again.cancel(r)  # its computation read nothing
    assert again.spent("recs") == (0.0, 0.0)
    again.reserve("recs", (2.0, 0.0))


def test_a_settlement_over_the_reservation_is_charged_and_raises() -> None:
    ledger = BudgetLedger(epsilon_budget=10.0)
    r = ledger.reserve("recs", [_spent(1.0)])
    with pytest.raises(PrivacyBudgetExceeded, match="more than the planned"):
        ledger.settle(r, [_spent(1.0), _spent(0.5)])
    assert ledger.spent("recs") == (1.5, 0.0)


def test_charge_checks_and_appends_in_one_step() -> None:
    a, b = _ledgers("memory", Path("."), budget=1.0)
    a.charge(_spent(0.7), purpose="recs")
    with pytest.raises(PrivacyBudgetExceeded):
        b.charge(_spent(0.7), purpose="recs")
    assert len(b.charges("recs")) == 1


def test_a_per_period_budget_counts_only_the_last_period() -> None:
    now = [datetime(2026, 11, 1, tzinfo=UTC)]
    ledger = BudgetLedger(epsilon_budget=2.0, delta_budget=1e-6, period_days=30,
                          clock=lambda: now[0])
    r = ledger.reserve("recs", (2.0, 1e-6))
    ledger.settle(r, [PrivacySpent(mechanism="m", epsilon=2.0, delta=1e-6)])
    now[0] += timedelta(days=29, hours=23)
    with pytest.raises(PrivacyBudgetExceeded, match="in the last 30 days"):
        ledger.reserve("recs", (0.1, 0.0))
    now[0] += timedelta(hours=1)  # 30 days after the first fit: it stops counting
    assert ledger.spent("recs") == (0.0, 0.0)
    ledger.reserve("recs", (2.0, 1e-6))  # an unsettled one counts in its period too
    now[0] += timedelta(days=29)
    assert ledger.spent("recs") == (2.0, 1e-6)
    assert len(ledger.charges("recs")) == 2  # the listing keeps every charge


@pytest.mark.parametrize("bad", [(math.nan, 0.0), (1.0, 1.0), (-1.0, 0.0), (math.inf, 0.0)])
def test_a_bad_plan_is_refused(bad: tuple[float, float]) -> None:
    with pytest.raises(ValidationError):
        BudgetLedger(epsilon_budget=10.0).reserve("recs", bad)


@pytest.mark.parametrize("kwargs", [
    {"epsilon_budget": math.inf}, {"epsilon_budget": 1.0, "delta_budget": math.nan},
    {"epsilon_budget": 1.0, "period_days": 0}, {"epsilon_budget": 1.0, "period_days": 1.5},
])
def test_a_bad_budget_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        BudgetLedger(**kwargs)  # type: ignore[arg-type]


def test_processes_racing_on_a_file_ledger_spend_no_more_than_the_budget(
    tmp_path: Path,
) -> None:
    from ledger_helpers import reserve_in_file

    path = str(tmp_path / "ledger.jsonl")
    ctx = multiprocessing.get_context("spawn")
    n = 4
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=reserve_in_file, args=(path, barrier, results))
             for _ in range(n)]
    for p in procs:
        p.start()
    outcomes = sorted(results.get(timeout=300) for _ in range(n))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert outcomes == ["refused", "refused", "reserved", "reserved"]  # budget ε = 2
    ledger = BudgetLedger(JsonlChargeStorage(path), epsilon_budget=2.0)
    assert ledger.spent("recs") == (0.0, 0.0)
    assert ledger.spent("personalization") == (2.0, 0.0)


@given(st.lists(st.tuples(st.sampled_from(["reserve", "settle", "cancel", "charge"]),
                          st.integers(0, 10), st.integers(0, 10)), max_size=40))
def test_spent_is_the_sum_of_what_each_reservation_counts_and_never_passes_the_budget(
    ops: list[tuple[str, int, int]],
) -> None:
    """Any sequence of reserve / settle (at or under the reservation) / cancel / charge:
    the ledger's spent equals open reservations at their reserved amount plus settled
    spends, and never exceeds the budget. Amounts are in tenths of ε (exact sums)."""
    budget = 3.0
    ledger = BudgetLedger(epsilon_budget=budget, delta_budget=0.5)
    open_: list[tuple[PrivacyReservation, int]] = []
    expected = 0  # tenths
    for op, a, b in ops:
        if op == "reserve":
            try:
                r = ledger.reserve("p", (a / 10, 0.0))
            except PrivacyBudgetExceeded:
                assert expected + a > 30
                continue
            open_.append((r, a))
            expected += a
        elif op in ("settle", "cancel") and open_:
            r, held = open_.pop(b % len(open_))
            actual = 0 if op == "cancel" else min(a, held)
            ledger.settle(r, [_spent(actual / 10)] if actual else [])
            expected += actual - held
        elif op == "charge":
            try:
                ledger.charge(_spent(a / 10), purpose="p")
            except PrivacyBudgetExceeded:
                assert expected + a > 30
                continue
            expected += a
        eps, _ = ledger.spent("p")
        assert eps == pytest.approx(expected / 10)
        assert eps <= budget + 1e-9
    assert sum(c.status == "reserved" for c in ledger.charges("p")) == len(open_)
