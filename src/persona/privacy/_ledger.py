"""The privacy budget ledger: every private fit is charged to a purpose's budget.

A planned charge is checked against the configured total *before* any data is read; a charge
that would overspend raises :class:`~persona.PrivacyBudgetExceeded`. Charges are kept by a
small storage interface (:class:`ChargeStorage`): in memory, in a JSON-lines file here, and in
the SQLite store (``persona.store``) behind the same two methods.

Budgets add up ε and δ over charges (basic composition: always valid, whatever the mechanisms).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

from persona.errors import PrivacyBudgetExceeded, StoreError, ValidationError
from persona.schema._privacy import PrivacyCharge, PrivacySpent

__all__ = ["BudgetLedger", "ChargeStorage", "JsonlChargeStorage", "MemoryChargeStorage"]

T = TypeVar("T")


@runtime_checkable
class ChargeStorage(Protocol):
    """Where ledger lines live. Implementations must keep charges across restarts (except
    the in-memory one) and return them in the order they were appended."""

    def load_charges(self) -> list[PrivacyCharge]:
        """Every charge recorded so far, oldest first."""
        ...

    def append_charge(self, charge: PrivacyCharge) -> None:
        """Record one charge durably."""
        ...


class MemoryChargeStorage:
    """Charges in a list; lost when the process ends. For tests and notebooks."""

    def __init__(self) -> None:
        self._charges: list[PrivacyCharge] = []

    def load_charges(self) -> list[PrivacyCharge]:
        return list(self._charges)

    def append_charge(self, charge: PrivacyCharge) -> None:
        self._charges.append(charge)


class JsonlChargeStorage:
    """Charges as JSON lines in a file, flushed and fsynced on every append.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ledger.jsonl"
    >>> JsonlChargeStorage(path).load_charges()
    []
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load_charges(self) -> list[PrivacyCharge]:
        if not self.path.exists():
            return []
        out = []
        with self.path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    out.append(PrivacyCharge.model_validate_json(line))
                except ValueError as exc:
                    raise StoreError(
                        f"privacy ledger {self.path} line {lineno} is damaged ({exc}); "
                        "restore it from a backup: spending cannot be verified without it"
                    ) from None
        return out

    def append_charge(self, charge: PrivacyCharge) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(charge.model_dump_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())


class BudgetLedger:
    """Checks planned private computations against per-purpose (ε, δ) budgets and records
    what they spent.

    Parameters
    ----------
    storage
        Where charges are kept (:class:`MemoryChargeStorage` by default).
    epsilon_budget, delta_budget
        Total ε and δ allowed per purpose over all charges.

    Examples
    --------
    >>> ledger = BudgetLedger(epsilon_budget=3.0, delta_budget=1e-5)
    >>> spend = PrivacySpent(mechanism="dp-item-counts", epsilon=2.0, delta=1e-6)
    >>> _ = ledger.charge(spend, purpose="recommendations", snapshot="s1")
    >>> ledger.remaining("recommendations")
    (1.0, 9e-06)
    >>> ledger.check("recommendations", epsilon=2.0, delta=1e-6)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    persona.errors.PrivacyBudgetExceeded: purpose 'recommendations' has spent ε = 2, δ = 1e-06...
    """

    def __init__(
        self, storage: ChargeStorage | None = None, *, epsilon_budget: float,
        delta_budget: float = 1e-5,
    ) -> None:
        if not epsilon_budget > 0 or not 0 <= delta_budget < 1:
            raise ValidationError("epsilon_budget must be > 0 and delta_budget in [0, 1)")
        self.storage: ChargeStorage = storage if storage is not None else MemoryChargeStorage()
        self.epsilon_budget = float(epsilon_budget)
        self.delta_budget = float(delta_budget)

    def charges(self, purpose: str | None = None) -> list[PrivacyCharge]:
        """Recorded charges, oldest first, optionally for one purpose."""
        out = self.storage.load_charges()
        return [c for c in out if purpose is None or c.purpose == purpose]

    def spent(self, purpose: str) -> tuple[float, float]:
        """``(ε, δ)`` spent so far for ``purpose`` (summed over charges)."""
        cs = self.charges(purpose)
        return sum(c.epsilon for c in cs), sum(c.delta for c in cs)

    def remaining(self, purpose: str) -> tuple[float, float]:
        """``(ε, δ)`` still available for ``purpose``."""
        eps, delta = self.spent(purpose)
        return (round(max(0.0, self.epsilon_budget - eps), 12),
                round(max(0.0, self.delta_budget - delta), 18))

    def check(self, purpose: str, *, epsilon: float, delta: float) -> None:
        """Raise :class:`~persona.PrivacyBudgetExceeded` if spending ``(epsilon, delta)``
        on ``purpose`` would exceed the budget. Reads only the ledger, never data."""
        eps_spent, delta_spent = self.spent(purpose)
        tol = 1e-12
        if (eps_spent + epsilon > self.epsilon_budget * (1 + tol)
                or delta_spent + delta > self.delta_budget * (1 + tol) + 1e-300):
            eps_left, delta_left = self.remaining(purpose)
            raise PrivacyBudgetExceeded(
                f"purpose {purpose!r} has spent ε = {eps_spent:.4g}, δ = {delta_spent:.3g} "
                f"of its budget ε = {self.epsilon_budget:.4g}, δ = {self.delta_budget:.3g}; "
                f"this fit needs ε = {epsilon:.4g}, δ = {delta:.3g} but only "
                f"ε = {eps_left:.4g}, δ = {delta_left:.3g} is left. Nothing was read. "
                "Lower the fit's epsilon, reuse an existing model, or have a reviewer raise "
                "the budget.",
                purpose=purpose, spent=(eps_spent, delta_spent),
                requested=(epsilon, delta), remaining=(eps_left, delta_left),
            )

    def charge(
        self, spent: PrivacySpent, *, purpose: str, snapshot: str | None = None
    ) -> PrivacyCharge:
        """Check, then record ``spent`` against ``purpose``; returns the ledger line."""
        self.check(purpose, epsilon=spent.epsilon, delta=spent.delta)
        line = spent.charge(purpose, snapshot)
        self.storage.append_charge(line)
        return line

    def run(
        self, purpose: str, *, epsilon: float, delta: float,
        compute: Callable[[], tuple[T, PrivacySpent]], snapshot: str | None = None,
    ) -> tuple[T, PrivacyCharge]:
        """Check the planned ``(epsilon, delta)`` *before* calling ``compute`` (which reads
        the data), then charge what it actually spent.

        Examples
        --------
        >>> ledger = BudgetLedger(epsilon_budget=1.0)
        >>> def fit():
        ...     return "model", PrivacySpent(mechanism="demo", epsilon=0.6, delta=0.0)
        >>> model, line = ledger.run("ads", epsilon=0.6, delta=0.0, compute=fit)
        >>> line.epsilon
        0.6
        """
        self.check(purpose, epsilon=epsilon, delta=delta)
        result, spent = compute()
        if spent.epsilon > epsilon * (1 + 1e-9) or spent.delta > delta * (1 + 1e-9) + 1e-300:
            # the data was read: the spend is real and is recorded even though it overran
            self.storage.append_charge(spent.charge(purpose, snapshot))
            raise PrivacyBudgetExceeded(
                f"the computation spent ε = {spent.epsilon:.4g}, δ = {spent.delta:.3g}, more "
                f"than the planned ε = {epsilon:.4g}, δ = {delta:.3g}; its result is discarded "
                "and the spend is still charged.", purpose=purpose,
            )
        return result, self.charge(spent, purpose=purpose, snapshot=snapshot)

    def export(self) -> list[dict[str, object]]:
        """Every charge as JSON-ready dicts, for ``store.export`` and reviewers."""
        return [json.loads(c.model_dump_json()) for c in self.storage.load_charges()]
