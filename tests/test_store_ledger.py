"""The privacy budget ledger persisted in the store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import persona
from persona.privacy import BudgetLedger, ChargeStorage
from persona.schema import PrivacySpent
from store_helpers import shop


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
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        again._con.execute("DELETE FROM privacy_ledger")
    with pytest.raises(persona.ValidationError):
        again.set_privacy_budget("personalization", epsilon=0.0, delta=1e-6)
    with pytest.raises(persona.UnknownPurposeError):
        again.set_privacy_budget("nope", epsilon=1.0, delta=1e-6)
