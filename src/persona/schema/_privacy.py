"""Records of differential-privacy spending: what one private computation cost
(:class:`PrivacySpent`), the ledger line that charges it to a budget (:class:`PrivacyCharge`),
the reservation made before any data is read (:class:`PrivacyReservation`) and the line that
closes it (:class:`PrivacySettlement`), and the budget policy of a purpose
(:class:`PrivacyBudgetPolicy`).

The unit of privacy is always one person: all of their events. Every model is frozen and
round-trips through JSON, so a reviewer can read them in ``store.export``.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DAYS_PER_YEAR",
    "UNIT_OF_PRIVACY",
    "LedgerEntry",
    "PrivacyBudgetPolicy",
    "PrivacyCharge",
    "PrivacyReservation",
    "PrivacySettlement",
    "PrivacySpent",
    "ledger_entry_from_json",
]

UNIT_OF_PRIVACY: Literal["one person"] = "one person"
"""What neighbouring data sets differ by: all events of one person."""


class PrivacySpent(BaseModel):
    """What one private computation spent, in the vocabulary a reviewer expects.

    Examples
    --------
    >>> s = PrivacySpent(mechanism="dp-item-counts", epsilon=1.0, delta=1e-6, rho=0.02,
    ...                  bounds={"max_events_per_person": 50})
    >>> s.unit_of_privacy
    'one person'
    >>> print(s.describe())  # doctest: +NORMALIZE_WHITESPACE
    dp-item-counts: (ε = 1, δ = 1e-06)-differential privacy for one person (all of their
    events); ρ = 0.02 zCDP; bounds: max_events_per_person=50.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mechanism: str = Field(min_length=1)
    """Name of the private algorithm (``"dp-als"``, ``"dp-cooccurrence"``, ...)."""
    epsilon: float = Field(ge=0, allow_inf_nan=False)
    """Total ε of the release, as accounted by OpenDP."""
    delta: float = Field(ge=0, lt=1, allow_inf_nan=False)
    """Total δ of the release (0 for pure differential privacy)."""
    rho: float | None = Field(default=None, ge=0)
    """Total zero-concentrated DP parameter, or ``None`` for a pure-DP (Laplace) release."""
    unit_of_privacy: Literal["one person"] = UNIT_OF_PRIVACY
    """Neighbouring data sets differ by all events of one person."""
    bounds: dict[str, float] = Field(default_factory=dict)
    """The public contribution bounds the guarantee rests on (caps, clipping norms)."""
    steps: int = Field(default=1, ge=1)
    """Number of noisy releases composed (iterations of DP-ALS, for example)."""
    noise: dict[str, float] = Field(default_factory=dict)
    """Noise scales and grids per release (``"scale"``, ``"k"``, ``"sensitivity"``, ...)."""
    accounting: str = "OpenDP zCDP composition, make_zCDP_to_approxDP"
    """How ε was computed."""
    epsilon_pld: float | None = Field(default=None, ge=0)
    """Informational ε at the same δ from Google's ``dp-accounting`` PLD accountant, when
    it is tighter; the claim is :attr:`epsilon`."""

    def describe(self) -> str:
        """One plain-language sentence for a reviewer."""
        parts = [
            f"{self.mechanism}: (ε = {self.epsilon:.4g}, δ = {self.delta:.4g})-differential "
            f"privacy for {self.unit_of_privacy} (all of their events)"
        ]
        if self.rho is not None:
            parts.append(f"ρ = {self.rho:.4g} zCDP")
        if self.steps > 1:
            parts.append(f"{self.steps} noisy steps composed")
        if self.bounds:
            parts.append(
                "bounds: " + ", ".join(f"{k}={v:g}" for k, v in sorted(self.bounds.items()))
            )
        return "; ".join(parts) + "."

    @classmethod
    def composed(cls, parts: list[PrivacySpent]) -> PrivacySpent:
        """Several releases on the same data as one spend, by basic composition (ε and δ
        add up; always valid, whatever the mechanisms). When every part is a zCDP release,
        their ρ add up too (zCDP's own composition, also valid), so that the whole can be
        composed further in zCDP; otherwise ``rho`` is ``None``. Each part's bounds and
        noise are kept under its mechanism's name.

        >>> a = PrivacySpent(mechanism="dp-item-selection", epsilon=0.1, delta=1e-7)
        >>> b = PrivacySpent(mechanism="dp-item-counts", epsilon=0.9, delta=9e-7, rho=0.01)
        >>> c = PrivacySpent.composed([a, b])
        >>> c.mechanism, round(c.epsilon, 9), c.delta
        ('dp-item-selection + dp-item-counts', 1.0, 1e-06)
        """
        if len(parts) == 1:
            return parts[0]
        return cls(
            mechanism=" + ".join(p.mechanism for p in parts),
            epsilon=sum(p.epsilon for p in parts), delta=sum(p.delta for p in parts),
            rho=None if any(p.rho is None for p in parts) else sum(
                p.rho for p in parts if p.rho is not None),
            bounds={f"{p.mechanism}.{k}": v for p in parts for k, v in p.bounds.items()},
            steps=max(p.steps for p in parts),
            noise={f"{p.mechanism}.{k}": v for p in parts for k, v in p.noise.items()},
            accounting="basic composition (ε and δ added) of: "
                       + "; ".join(f"{p.mechanism}: {p.accounting}" for p in parts),
        )

    def charge(
        self, purpose: str, snapshot: str | None = None, *, at: datetime | None = None
    ) -> PrivacyCharge:
        """The ledger line that charges this spend to ``purpose``'s budget."""
        return PrivacyCharge(
            **self.model_dump(),
            purpose=purpose,
            snapshot=snapshot,
            created_at=at or datetime.now(UTC),
        )


class PrivacyCharge(PrivacySpent):
    """One line of the privacy budget ledger: a spend charged to a purpose.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> s = PrivacySpent(mechanism="dp-als", epsilon=2.0, delta=1e-6, rho=0.1)
    >>> c = s.charge("recommendations", snapshot="snap-1",
    ...              at=datetime(2026, 11, 1, tzinfo=UTC))
    >>> PrivacyCharge.model_validate_json(c.model_dump_json()) == c
    True
    """

    charge_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    """Unique id of this ledger line."""
    purpose: str = Field(min_length=1)
    """The purpose whose budget is charged."""
    snapshot: str | None = None
    """Id of the data snapshot the computation read (``None`` when unknown)."""
    created_at: datetime
    """When the charge was recorded (timezone-aware, UTC)."""
    reservation_id: str | None = None
    """The reservation this charge settles (``None`` for a charge recorded without one)."""
    status: Literal["settled", "reserved"] = "settled"
    """``"settled"``: a recorded spend. ``"reserved"``: a reservation not settled yet, as a
    ledger lists it (it counts against the budget at the reserved amount until settled)."""

    @field_validator("created_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return _aware(v)


def _aware(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError("created_at must be timezone-aware")
    return v.astimezone(UTC)


class PrivacyReservation(BaseModel):
    """A ledger line that holds budget for a private computation *before* it reads data.

    A ledger appends it only if the purpose's budget can pay for it, in the same atomic step
    as the check; the computation then runs and is settled (:class:`PrivacySettlement`).
    Until it is settled it counts against the budget at its reserved amount, also if the
    process that made it stopped: a crash never gives budget back.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> r = PrivacyReservation(purpose="recs", epsilon=1.0, delta=1e-6,
    ...                        created_at=datetime(2026, 11, 1, tzinfo=UTC))
    >>> r.kind, r.as_charge().status
    ('reservation', 'reserved')
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["reservation"] = "reservation"
    reservation_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    """Unique id; the charges that settle it refer to it."""
    purpose: str = Field(min_length=1)
    """The purpose whose budget is held."""
    epsilon: float = Field(ge=0, allow_inf_nan=False)
    """ε held (the sum of :attr:`planned`, when given)."""
    delta: float = Field(ge=0, lt=1, allow_inf_nan=False)
    """δ held."""
    planned: tuple[PrivacySpent, ...] = ()
    """The planned releases, when the caller named them (empty for a bare ``(ε, δ)``)."""
    snapshot: str | None = None
    """Id of the data snapshot, when known before the read."""
    created_at: datetime
    """When the budget was reserved; a per-period budget dates the spend by this time."""

    @field_validator("created_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return _aware(v)

    def as_charge(self) -> PrivacyCharge:
        """This reservation as a ledger line with ``status="reserved"``."""
        rhos = [p.rho for p in self.planned]
        return PrivacyCharge(
            mechanism=" + ".join(p.mechanism for p in self.planned) or "reserved",
            epsilon=self.epsilon,
            delta=self.delta,
            rho=sum(rhos) if rhos and None not in rhos else None,  # type: ignore[arg-type]
            charge_id=self.reservation_id,
            purpose=self.purpose,
            snapshot=self.snapshot,
            created_at=self.created_at,
            reservation_id=self.reservation_id,
            status="reserved",
            accounting="reserved before the read; not settled",
        )


class PrivacySettlement(BaseModel):
    """The ledger line that closes a reservation: from then on the reservation counts at
    what its charges (listed by id, possibly none) actually spent.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> PrivacySettlement(reservation_id="r1", purpose="recs", charge_ids=("c1",),
    ...                   created_at=datetime(2026, 11, 1, tzinfo=UTC)).kind
    'settlement'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["settlement"] = "settlement"
    reservation_id: str = Field(min_length=1)
    purpose: str = Field(min_length=1)
    charge_ids: tuple[str, ...] = ()
    """The charges that settle the reservation (appended with this line)."""
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return _aware(v)


LedgerEntry = PrivacyCharge | PrivacyReservation | PrivacySettlement
"""One line of a budget ledger, in the order lines were appended."""


def ledger_entry_from_json(text: str) -> LedgerEntry:
    """Parse one ledger line written with ``model_dump_json()`` (a charge has no ``kind``).

    >>> from datetime import datetime, UTC
    >>> r = PrivacyReservation(purpose="p", epsilon=1.0, delta=0.0,
    ...                        created_at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> ledger_entry_from_json(r.model_dump_json()) == r
    True
    """
    data = json.loads(text)
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "reservation":
        return PrivacyReservation.model_validate(data)
    if kind == "settlement":
        return PrivacySettlement.model_validate(data)
    return PrivacyCharge.model_validate(data)


DAYS_PER_YEAR = 365


class PrivacyBudgetPolicy(BaseModel):
    """How much a purpose's private computations may spend, and over what time.

    ``period_days=None`` (the default) is a lifetime total: every charge ever made counts.
    An integer is a budget per rolling period: a reservation is refused if it, plus every
    charge made in the last ``period_days`` days, would exceed (ε, δ). That suits nightly
    refits, but it is a weaker guarantee, which :meth:`describe` states: a person whose data
    stays in the store through many periods is covered only by the sum over those periods.

    Examples
    --------
    >>> print(PrivacyBudgetPolicy(purpose="recs", epsilon=2.0, delta=1e-6).describe())
    ... # doctest: +NORMALIZE_WHITESPACE
    ε = 2, δ = 1e-06 in total for the lifetime of the store: every private computation on
    this purpose counts against it, however long ago it ran.
    >>> p = PrivacyBudgetPolicy(purpose="recs", epsilon=2.0, delta=1e-6, period_days=30)
    >>> p.periods_per_year()
    13
    >>> print(p.describe())  # doctest: +NORMALIZE_WHITESPACE
    ε = 2, δ = 1e-06 per rolling 30 days: a computation stops counting 30 days after it
    ran. This is weaker than a lifetime total of ε = 2: within any year, computations may
    spend up to ε = 26, δ = 1.3e-05 in total (13 periods of 30 days), so for a customer
    whose data is held for a year the guarantee is ε = 26, not ε = 2, and it weakens further
    the longer they stay.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    purpose: str = Field(min_length=1)
    epsilon: float = Field(gt=0, allow_inf_nan=False)
    """ε allowed (in total, or per period)."""
    delta: float = Field(ge=0, lt=1, allow_inf_nan=False)
    """δ allowed (in total, or per period)."""
    period_days: int | None = Field(default=None, ge=1, le=36_500, strict=True)
    """``None``: a lifetime total. An integer: a budget per rolling period of that many days."""
    set_at: datetime | None = None
    """When the policy was set (``None`` for a ledger configured in code)."""

    @field_validator("set_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return None if v is None else _aware(v)

    def periods_per_year(self) -> int | None:
        """The most periods whose spending can fall within one year: ``ceil(365 / period)``
        (``None`` for a lifetime total). Reservations at least one period apart can each
        spend the whole budget, so this many can land in any 365 days."""
        if self.period_days is None:
            return None
        return math.ceil(DAYS_PER_YEAR / self.period_days)

    def describe(self) -> str:
        """The policy in plain words, with the weaker guarantee of a per-period budget."""
        eps, delta = f"{self.epsilon:.4g}", f"{self.delta:.3g}"
        if self.period_days is None:
            return (
                f"ε = {eps}, δ = {delta} in total for the lifetime of the store: every "
                "private computation on this purpose counts against it, however long ago "
                "it ran."
            )
        n = self.periods_per_year()
        assert n is not None
        days = f"{self.period_days} day" + ("s" if self.period_days != 1 else "")
        return (
            f"ε = {eps}, δ = {delta} per rolling {days}: a computation stops counting "
            f"{days} after it ran. This is weaker than a lifetime total of ε = {eps}: within "
            f"any year, computations may spend up to ε = {n * self.epsilon:.4g}, "
            f"δ = {n * self.delta:.3g} in total ({n} period{'s' if n != 1 else ''} of {days}), "
            f"so for a customer whose data is held for a year the guarantee is "
            f"ε = {n * self.epsilon:.4g}, not ε = {eps}, and it weakens further the longer "
            "they stay."
        )
