"""The privacy budget ledger: every private computation is paid for before it reads data.

A computation first *reserves* its planned (ε, δ): in one atomic step the ledger reads what
the purpose has spent under its policy, refuses with :class:`~persona.PrivacyBudgetExceeded`
if the new total would exceed the budget, and otherwise appends a
:class:`~persona.schema.PrivacyReservation`. Two processes can therefore never both pass
the check and overspend. After the computation, :meth:`BudgetLedger.settle` appends what it
actually spent (:class:`~persona.schema.PrivacyCharge` lines) and a
:class:`~persona.schema.PrivacySettlement`. Lines are only ever appended.

What a purpose has spent is the sum over its reservations of their settled charges when
settled, else of the reserved amount (a reservation never settled, because its process
stopped, keeps counting: conservative), plus charges recorded without a reservation. Under a
per-period policy only reservations and charges made in the last ``period_days`` count.
Budgets add up ε and δ (basic composition: always valid, whatever the mechanisms).

Lines are kept by a storage (:class:`ChargeStorage`): in memory here, in a JSON-lines file
(``persona.privacy.JsonlChargeStorage``) and in the store file (``store.charge_storage()``).
This module lives in ``persona.schema`` so the store can hand out ledgers
(``store.privacy_ledger(purpose)``) while importing only the schema;
``persona.privacy`` re-exports it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar, cast, runtime_checkable

from persona.errors import PrivacyBudgetExceeded, ValidationError
from persona.schema._privacy import (
    LedgerEntry,
    PrivacyBudgetPolicy,
    PrivacyCharge,
    PrivacyReservation,
    PrivacySettlement,
    PrivacySpent,
)

__all__ = ["BudgetLedger", "ChargeStorage", "LedgerCheck", "MemoryChargeStorage", "Spending"]

T = TypeVar("T")
LedgerCheck = Callable[[list[LedgerEntry]], None]
"""Called with every line already recorded; raises to refuse an append."""

_TOL = 1e-12  # relative slack for float sums when comparing with a budget
_OVERRUN = 1e-9  # relative slack when comparing what was spent with what was reserved


@runtime_checkable
class ChargeStorage(Protocol):
    """Where ledger lines live. Implementations keep lines across restarts (except the
    in-memory one), return them in the order they were appended, and make
    :meth:`append_entries` atomic across every handle that shares the storage."""

    def load_entries(self) -> list[LedgerEntry]:
        """Every line recorded so far (charges, reservations, settlements), oldest first."""
        ...

    def append_entries(
        self, entries: Sequence[LedgerEntry], *, check: LedgerCheck | None = None
    ) -> None:
        """Atomically: read every line, call ``check`` on them (it raises to refuse, and
        then nothing is written), then append ``entries`` durably."""
        ...

    def load_charges(self) -> list[PrivacyCharge]:
        """The charge lines recorded so far, oldest first (no reservations)."""
        ...

    def append_charge(self, charge: PrivacyCharge) -> None:
        """Record one charge durably, without a check."""
        ...


class MemoryChargeStorage:
    """Ledger lines in a list; lost when the process ends. For tests and notebooks.

    Appends are atomic between threads of one process (a lock).
    """

    def __init__(self) -> None:
        self._entries: list[LedgerEntry] = []
        self._lock = threading.Lock()

    def load_entries(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self._entries)

    def append_entries(
        self, entries: Sequence[LedgerEntry], *, check: LedgerCheck | None = None
    ) -> None:
        with self._lock:
            if check is not None:
                check(list(self._entries))
            self._entries.extend(entries)

    def load_charges(self) -> list[PrivacyCharge]:
        return [e for e in self.load_entries() if isinstance(e, PrivacyCharge)]

    def append_charge(self, charge: PrivacyCharge) -> None:
        self.append_entries([charge])


@dataclass(frozen=True)
class Spending:
    """What a purpose has spent under a policy, as a ledger counts it."""

    epsilon: float
    delta: float
    reserved_epsilon: float
    """The part of :attr:`epsilon` held by reservations not settled yet."""
    reserved_delta: float
    pending: int
    """How many reservations are not settled yet."""


def spending(
    entries: Sequence[LedgerEntry], purpose: str, *, period_days: int | None, now: datetime
) -> Spending:
    """``(ε, δ)`` spent by ``purpose``: each reservation at its settled charges if settled,
    else at the larger of what it reserved and what was charged to it, plus charges made
    without a reservation. With ``period_days``, only lines dated after
    ``now - period_days`` count (a reservation's charges are dated by the reservation)."""
    cutoff = None if period_days is None else now - timedelta(days=period_days)
    reservations: dict[str, PrivacyReservation] = {}
    settled: set[str] = set()
    for e in entries:
        if e.purpose != purpose:
            continue
        if isinstance(e, PrivacyReservation):
            reservations[e.reservation_id] = e
        elif isinstance(e, PrivacySettlement):
            settled.add(e.reservation_id)
    charged: dict[str, list[float]] = {rid: [0.0, 0.0] for rid in reservations}
    eps = delta = 0.0
    for e in entries:
        if e.purpose != purpose or not isinstance(e, PrivacyCharge):
            continue
        if e.reservation_id in charged:
            acc = charged[e.reservation_id]
            acc[0] += e.epsilon
            acc[1] += e.delta
        elif cutoff is None or e.created_at > cutoff:
            eps += e.epsilon
            delta += e.delta
    held_eps = held_delta = 0.0
    pending = 0
    for rid, r in reservations.items():
        if cutoff is not None and r.created_at <= cutoff:
            continue
        c_eps, c_delta = charged[rid]
        if rid in settled:
            eps += c_eps
            delta += c_delta
        else:
            pending += 1
            eps += max(r.epsilon, c_eps)
            delta += max(r.delta, c_delta)
            held_eps += max(r.epsilon, c_eps)
            held_delta += max(r.delta, c_delta)
    return Spending(eps, delta, held_eps, held_delta, pending)


def ledger_lines(entries: Sequence[LedgerEntry], purpose: str | None = None) -> list[PrivacyCharge]:
    """The charges of ``purpose`` (all purposes if ``None``), oldest first, with each
    reservation not settled yet shown as a line with ``status="reserved"``."""
    settled = {e.reservation_id for e in entries if isinstance(e, PrivacySettlement)}
    out: list[PrivacyCharge] = []
    for e in entries:
        if purpose is not None and e.purpose != purpose:
            continue
        if isinstance(e, PrivacyCharge):
            out.append(e)
        elif isinstance(e, PrivacyReservation) and e.reservation_id not in settled:
            out.append(e.as_charge())
    return out


def _planned(
    planned: Sequence[PrivacySpent] | tuple[float, float],
) -> tuple[tuple[PrivacySpent, ...], float, float]:
    if isinstance(planned, tuple) and len(planned) == 2 and not any(
        isinstance(p, PrivacySpent) for p in planned
    ):
        eps, delta = cast("tuple[float, float]", planned)  # no PrivacySpent in it: the pair
        for name, v in (("epsilon", eps), ("delta", delta)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) \
                    or v < 0:
                raise ValidationError(
                    f"a planned {name} must be a finite number >= 0, not {v!r}",
                    errors=[{"row": None, "field": name, "message": "invalid"}],
                )
        if not delta < 1:
            raise ValidationError(
                f"a planned delta must be below 1, not {delta!r}",
                errors=[{"row": None, "field": "delta", "message": "invalid"}],
            )
        return (), float(eps), float(delta)
    spents: list[PrivacySpent] = []
    for s in planned:
        if isinstance(s, PrivacySpent):
            spents.append(s)
        else:
            raise ValidationError(
                "plan a reservation with a list of PrivacySpent or an (epsilon, delta) pair, "
                f"not {type(s).__name__}",
                errors=[{"row": None, "field": "spents", "message": "invalid"}],
            )
    return tuple(spents), sum(s.epsilon for s in spents), sum(s.delta for s in spents)


class BudgetLedger:
    """Reserves planned private computations against a purpose's (ε, δ) budget before
    they read data, and records what they spent.

    Parameters
    ----------
    storage
        Where lines are kept (:class:`MemoryChargeStorage` by default).
    epsilon_budget, delta_budget
        ε and δ allowed per purpose: in total, or per period.
    period_days
        ``None`` (default): a lifetime total, every charge counts. An integer: a budget per
        rolling period of that many days (only charges of the last ``period_days`` count);
        a weaker guarantee, see :class:`~persona.schema.PrivacyBudgetPolicy`.
    clock
        Returns the current time (timezone-aware); defaults to the system clock.

    Examples
    --------
    >>> ledger = BudgetLedger(epsilon_budget=3.0, delta_budget=1e-5)
    >>> plan = [PrivacySpent(mechanism="dp-item-counts", epsilon=2.0, delta=1e-6)]
    >>> r = ledger.reserve("recommendations", plan)  # before any data is read
    >>> ledger.remaining("recommendations")
    (1.0, 9e-06)
    >>> _ = ledger.settle(r, plan, snapshot="s1")  # after the computation
    >>> [(c.mechanism, c.status) for c in ledger.charges("recommendations")]
    [('dp-item-counts', 'settled')]
    >>> ledger.reserve("recommendations", (2.0, 1e-6))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    persona.errors.PrivacyBudgetExceeded: purpose 'recommendations' has spent ε = 2, δ = 1e-06...
    """

    def __init__(
        self,
        storage: ChargeStorage | None = None,
        *,
        epsilon_budget: float,
        delta_budget: float = 1e-5,
        period_days: int | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        try:
            self.policy = PrivacyBudgetPolicy(
                purpose="*", epsilon=epsilon_budget, delta=delta_budget, period_days=period_days
            )
        except ValueError:
            raise ValidationError(
                "epsilon_budget must be a finite number > 0, delta_budget in [0, 1) and "
                f"period_days None or a whole number of days >= 1; got ({epsilon_budget!r}, "
                f"{delta_budget!r}, {period_days!r})",
                errors=[{"row": None, "field": "epsilon_budget", "message": "out of range"}],
            ) from None
        self.storage: ChargeStorage = storage if storage is not None else MemoryChargeStorage()
        self.epsilon_budget = float(epsilon_budget)
        self.delta_budget = float(delta_budget)
        self.period_days = period_days
        self._clock = clock or (lambda: datetime.now(UTC))

    # ------------------------------------------------------------------ reading
    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValidationError("the ledger's clock returned a time without a time zone")
        return now

    def entries(self, purpose: str | None = None) -> list[LedgerEntry]:
        """Every line (charges, reservations, settlements), oldest first."""
        out = self.storage.load_entries()
        return [e for e in out if purpose is None or e.purpose == purpose]

    def charges(self, purpose: str | None = None) -> list[PrivacyCharge]:
        """Charges, oldest first, optionally for one purpose; reservations not settled yet
        appear as lines with ``status="reserved"``."""
        return ledger_lines(self.storage.load_entries(), purpose)

    def spending(self, purpose: str) -> Spending:
        """What ``purpose`` has spent under this ledger's policy, now."""
        return spending(self.storage.load_entries(), purpose, period_days=self.period_days,
                        now=self._now())

    def spent(self, purpose: str) -> tuple[float, float]:
        """``(ε, δ)`` spent so far by ``purpose`` (within the period, for a per-period
        budget), counting reservations not settled yet at their reserved amount."""
        s = self.spending(purpose)
        return s.epsilon, s.delta

    def remaining(self, purpose: str) -> tuple[float, float]:
        """``(ε, δ)`` still available for ``purpose``."""
        return self._remaining(*self.spent(purpose))

    def _remaining(self, eps: float, delta: float) -> tuple[float, float]:
        return (round(max(0.0, self.epsilon_budget - eps), 12),
                round(max(0.0, self.delta_budget - delta), 18))

    # ------------------------------------------------------------------ the rule
    def _refuse_if_over(
        self, entries: Sequence[LedgerEntry], purpose: str, epsilon: float, delta: float,
        now: datetime,
    ) -> None:
        s = spending(entries, purpose, period_days=self.period_days, now=now)
        if (s.epsilon + epsilon <= self.epsilon_budget * (1 + _TOL)
                and s.delta + delta <= self.delta_budget * (1 + _TOL) + 1e-300):
            return
        eps_left, delta_left = self._remaining(s.epsilon, s.delta)
        within = "" if self.period_days is None else f" in the last {self.period_days} days"
        per = "" if self.period_days is None else f" per {self.period_days} days"
        held = ""
        if s.pending:
            held = (
                f" (ε = {s.reserved_epsilon:.4g} of it is held by {s.pending} reservation(s) "
                "not settled: a fit in progress, or one whose process stopped before "
                "settling, which keeps counting)"
            )
        raise PrivacyBudgetExceeded(
            f"purpose {purpose!r} has spent ε = {s.epsilon:.4g}, δ = {s.delta:.3g}{within}"
            f"{held} of its budget ε = {self.epsilon_budget:.4g}, δ = {self.delta_budget:.3g}"
            f"{per}; this fit needs ε = {epsilon:.4g}, δ = {delta:.3g} but only "
            f"ε = {eps_left:.4g}, δ = {delta_left:.3g} is left. Nothing was read. "
            "Lower the fit's epsilon, reuse an existing model, or have a reviewer raise "
            "the budget.",
            purpose=purpose, spent=(s.epsilon, s.delta),
            requested=(epsilon, delta), remaining=(eps_left, delta_left),
        )

    def check(self, purpose: str, *, epsilon: float, delta: float) -> None:
        """Raise :class:`~persona.PrivacyBudgetExceeded` if spending ``(epsilon, delta)``
        on ``purpose`` would exceed the budget now. Reads only the ledger, never data.

        Advisory only: another process may spend in between. To hold the budget, use
        :meth:`reserve`, which checks and records in one atomic step."""
        self._refuse_if_over(self.storage.load_entries(), purpose, epsilon, delta, self._now())

    # ------------------------------------------------------------------ spending
    def reserve(
        self,
        purpose: str,
        spents: Sequence[PrivacySpent] | tuple[float, float],
        snapshot: str | None = None,
    ) -> PrivacyReservation:
        """Hold the planned spend of a computation *before* it reads any data.

        In one atomic step (one ``BEGIN IMMEDIATE`` transaction in the store, a file lock
        for a JSON-lines ledger): read what ``purpose`` has spent, raise
        :class:`~persona.PrivacyBudgetExceeded` if adding ``spents`` (a list of planned
        :class:`~persona.schema.PrivacySpent`, or an ``(epsilon, delta)`` pair) would
        exceed the budget, else append the reservation. Settle it with :meth:`settle`.

        A reservation never settled (the process stopped) keeps counting against the
        budget at the reserved amount: a crash never gives budget back.
        """
        planned, eps, delta = _planned(spents)
        if not isinstance(purpose, str) or not purpose:
            raise ValidationError("purpose must be a non-empty string",
                                  errors=[{"row": None, "field": "purpose", "message": "empty"}])
        now = self._now()
        reservation = PrivacyReservation(
            purpose=purpose, epsilon=eps, delta=delta, planned=planned, snapshot=snapshot,
            created_at=now,
        )
        self.storage.append_entries(
            [reservation],
            check=lambda entries: self._refuse_if_over(entries, purpose, eps, delta, now),
        )
        return reservation

    def settle(
        self,
        reservation: PrivacyReservation,
        spents: Sequence[PrivacySpent],
        *,
        snapshot: str | None = None,
    ) -> list[PrivacyCharge]:
        """Record what the computation of ``reservation`` actually spent, closing it.

        Appends one charge per spend and a settlement line, atomically. If the spends add
        up to more than was reserved, they are recorded all the same (the data was read)
        and :class:`~persona.PrivacyBudgetExceeded` is raised: discard the result. Settling
        with no spends (:meth:`cancel`) says the computation read nothing.
        """
        if not isinstance(reservation, PrivacyReservation):
            raise ValidationError(
                f"settle needs the PrivacyReservation that reserve returned, not "
                f"{type(reservation).__name__}",
                errors=[{"row": None, "field": "reservation", "message": "invalid"}],
            )
        spents = tuple(spents)
        for s in spents:
            if not isinstance(s, PrivacySpent):
                raise ValidationError(
                    f"settle needs PrivacySpent values, not {type(s).__name__}",
                    errors=[{"row": None, "field": "spents", "message": "invalid"}],
                )
        now = self._now()
        snap = snapshot if snapshot is not None else reservation.snapshot
        lines = [
            PrivacyCharge(
                **s.model_dump(include=set(PrivacySpent.model_fields)),
                purpose=reservation.purpose, snapshot=snap, created_at=now,
                reservation_id=reservation.reservation_id,
            )
            for s in spents
        ]
        closing = PrivacySettlement(
            reservation_id=reservation.reservation_id, purpose=reservation.purpose,
            charge_ids=tuple(c.charge_id for c in lines), created_at=now,
        )
        rid = reservation.reservation_id

        def open_reservation(entries: list[LedgerEntry]) -> None:
            found = False
            for e in entries:
                if isinstance(e, PrivacyReservation) and e.reservation_id == rid:
                    found = True
                elif isinstance(e, PrivacySettlement) and e.reservation_id == rid:
                    raise ValidationError(
                        f"reservation {rid} is already settled; reserve again for a new "
                        "computation",
                        errors=[{"row": None, "field": "reservation", "message": "settled"}],
                    )
            if not found:
                raise ValidationError(
                    f"reservation {rid} is not in this ledger; settle it with the ledger "
                    "that reserved it",
                    errors=[{"row": None, "field": "reservation", "message": "unknown"}],
                )

        self.storage.append_entries([*lines, closing], check=open_reservation)
        eps, delta = sum(c.epsilon for c in lines), sum(c.delta for c in lines)
        if (eps > reservation.epsilon * (1 + _OVERRUN)
                or delta > reservation.delta * (1 + _OVERRUN) + 1e-300):
            raise PrivacyBudgetExceeded(
                f"the computation spent ε = {eps:.4g}, δ = {delta:.3g}, more than the "
                f"planned ε = {reservation.epsilon:.4g}, δ = {reservation.delta:.3g} it "
                "reserved; its "
                "result is discarded and the spend is still charged.",
                purpose=reservation.purpose, spent=(eps, delta),
                requested=(reservation.epsilon, reservation.delta),
            )
        return lines

    def cancel(self, reservation: PrivacyReservation) -> None:
        """Release a reservation whose computation read no data (settle it with nothing).

        Only for a computation that stopped before its read: if data was read, settle
        with what was released, or leave the reservation to keep counting."""
        self.settle(reservation, [])

    def charge(
        self, spent: PrivacySpent, *, purpose: str, snapshot: str | None = None
    ) -> PrivacyCharge:
        """Check and record ``spent`` against ``purpose`` in one atomic step, without a
        reservation; returns the ledger line. Call it *before* the computation it pays for
        reads data (like a reservation settled at once, for a spend known in advance): a
        refused charge is not recorded."""
        now = self._now()
        line = spent.charge(purpose, snapshot, at=now)
        self.storage.append_entries(
            [line],
            check=lambda entries: self._refuse_if_over(
                entries, purpose, spent.epsilon, spent.delta, now),
        )
        return line

    def run(
        self, purpose: str, *, epsilon: float, delta: float,
        compute: Callable[[], tuple[T, PrivacySpent]], snapshot: str | None = None,
    ) -> tuple[T, PrivacyCharge]:
        """Reserve the planned ``(epsilon, delta)`` *before* calling ``compute`` (which
        reads the data), then settle with what it actually spent.

        If ``compute`` raises, the reservation stays open and keeps counting: the data may
        have been read.

        Examples
        --------
        >>> ledger = BudgetLedger(epsilon_budget=1.0)
        >>> def fit():
        ...     return "model", PrivacySpent(mechanism="demo", epsilon=0.6, delta=0.0)
        >>> model, line = ledger.run("ads", epsilon=0.6, delta=0.0, compute=fit)
        >>> line.epsilon
        0.6
        """
        reservation = self.reserve(purpose, (epsilon, delta), snapshot)
        result, spent = compute()
        (line,) = self.settle(reservation, [spent], snapshot=snapshot)
        return result, line

    def export(self) -> list[dict[str, object]]:
        """Every charge (and open reservation) as JSON-ready dicts, for reviewers."""
        return [c.model_dump(mode="json") for c in self.charges()]
