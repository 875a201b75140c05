"""The budget ledger: overspending is refused before data is read, every fit is charged,
the file ledger survives a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona.errors import PrivacyBudgetExceeded, StoreError
from persona.privacy import (
    DP,
    BudgetLedger,
    ChargeStorage,
    JsonlChargeStorage,
    MemoryChargeStorage,
    PrivacyCharge,
    PrivacySpent,
    SeededBits,
    private_item_counts,
)


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
