"""Records of differential-privacy spending: what one private computation cost
(:class:`PrivacySpent`) and the ledger line that charges it to a budget (:class:`PrivacyCharge`).

The unit of privacy is always one person: all of their events. Both models are frozen and
round-trip through JSON, so a reviewer can read them in ``store.export``.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["UNIT_OF_PRIVACY", "PrivacyCharge", "PrivacySpent"]

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
    epsilon: float = Field(ge=0)
    """Total ε of the release, as accounted by OpenDP."""
    delta: float = Field(ge=0, lt=1)
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

    @field_validator("epsilon", "delta")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be finite")
        return v

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

    @field_validator("created_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")
        return v.astimezone(UTC)
