"""Processes that race for a privacy budget (started with multiprocessing's spawn)."""

from __future__ import annotations

import os
from typing import Any

PURPOSE = "personalization"


def reserve_in_store(path: str, barrier: Any, results: Any, settle: bool) -> None:
    """Open the store file, wait for the others, reserve ε = 1; settle it, or stop dead
    (``os._exit``) without settling, as a crashed fit would."""
    import persona
    from persona.schema import PrivacySpent

    store = persona.Store(path, timeout=120)
    ledger = store.privacy_ledger(PURPOSE)
    barrier.wait(timeout=300)
    try:
        reservation = ledger.reserve(PURPOSE, (1.0, 0.0))
    except persona.PrivacyBudgetExceeded:
        results.put("refused")
        return
    results.put("reserved")
    if not settle:
        results.close()
        results.join_thread()  # the answer is sent before the process dies
        os._exit(0)  # no settlement, no close: the reservation must keep counting
    ledger.settle(reservation, [PrivacySpent(mechanism="m", epsilon=1.0, delta=0.0)])


def reserve_in_file(path: str, barrier: Any, results: Any) -> None:
    """The same race on a JSON-lines ledger (held together by ``flock``)."""
    from persona.errors import PrivacyBudgetExceeded
    from persona.privacy import BudgetLedger, JsonlChargeStorage

    ledger = BudgetLedger(JsonlChargeStorage(path), epsilon_budget=2.0, delta_budget=1e-5)
    barrier.wait(timeout=300)
    try:
        ledger.reserve(PURPOSE, (1.0, 0.0))
    except PrivacyBudgetExceeded:
        results.put("refused")
        return
    results.put("reserved")
