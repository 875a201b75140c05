"""Privacy accounting on OpenDP: the ``DP`` configuration, noise calibration and a zCDP
accountant.

Every per-release cost is asked of an OpenDP measurement built with the same scale, grid and
sensitivity as the release persona's own sampler makes (``make_gaussian(...).map(d_in)``,
``make_laplace(...).map(d_in)``); releases compose additively in zero-concentrated DP (the
rule OpenDP's ``make_composition`` applies), and the total is converted to (ε, δ) by OpenDP's
``make_zCDP_to_approxDP``. Nothing here looks at data: every bound is public and given by
the caller.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import opendp.prelude as dp
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from persona.errors import ValidationError
from persona.privacy._opendp import contrib
from persona.privacy._randomness import RandomnessSource, check_randomness

__all__ = [
    "DP",
    "GaussianPlan",
    "ZCDPAccountant",
    "gaussian_rho",
    "grid_for",
    "grid_sensitivity",
    "laplace_epsilon",
    "pld_epsilon",
    "rho_budget",
    "zcdp_to_epsilon",
]

_MIN_K = -1074  # float64's finest grid: OpenDP's default k, where rounding is exact


def _vector_space(size: int, norm: int) -> tuple[Any, Any]:
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False), size=size)
    metric = dp.l2_distance(T=float) if norm == 2 else dp.l1_distance(T=float)
    return domain, metric


@lru_cache(maxsize=4096)
def gaussian_rho(scale: float, sensitivity: float, size: int = 1, k: int = _MIN_K) -> float:
    """ρ (zCDP) of one discrete Gaussian release on the grid ``2^k``, from OpenDP's map.

    The release is a float vector of ``size`` values with L2 sensitivity ``sensitivity``;
    OpenDP adds the rounding to the grid (``(2^k - 2^-1074) · sqrt(size)``) to it.

    Examples
    --------
    >>> gaussian_rho(scale=2.0, sensitivity=1.0)
    0.125
    >>> round(gaussian_rho(1.0, 1.0, size=100, k=-10), 6)  # rounding counted
    0.509813
    """
    space = _vector_space(size, 2)
    with contrib():
        meas = dp.m.make_gaussian(*space, scale=float(scale), k=int(k))
    return float(meas.map(float(sensitivity)))


@lru_cache(maxsize=4096)
def laplace_epsilon(scale: float, sensitivity: float, size: int = 1, k: int = _MIN_K) -> float:
    """Pure ε of one discrete Laplace release on the grid ``2^k`` (L1 sensitivity), from
    OpenDP's ``make_laplace`` map.

    Examples
    --------
    >>> laplace_epsilon(scale=2.0, sensitivity=1.0)
    0.5
    """
    space = _vector_space(size, 1)
    with contrib():
        meas = dp.m.make_laplace(*space, scale=float(scale), k=int(k))
    return float(meas.map(float(sensitivity)))


def grid_sensitivity(sensitivity: float, size: int, k: int, norm: int = 2) -> float:
    """Sensitivity after rounding ``size`` values to the grid ``2^k``, as OpenDP counts it:
    ``sensitivity + (2^k - 2^-1074) · size^(1/norm)``.

    Examples
    --------
    >>> grid_sensitivity(1.0, size=4, k=-2)
    1.5
    """
    if k <= _MIN_K:
        return float(sensitivity)
    root = math.sqrt(size) if norm == 2 else float(size)
    return float(sensitivity) + (2.0**k - 2.0**_MIN_K) * root


def grid_for(sensitivity: float, size: int, slack: float = 1e-3) -> int:
    """The coarsest grid ``2^k`` whose rounding adds at most ``slack`` × sensitivity.

    Examples
    --------
    >>> grid_for(1.0, size=1)
    -10
    """
    if sensitivity <= 0:
        raise ValueError("sensitivity must be positive")
    return math.floor(math.log2(slack * sensitivity / math.sqrt(size)))


@lru_cache(maxsize=1024)
def _zcdp_profile_epsilon(rho: float, delta: float) -> float:
    # A Gaussian whose OpenDP map is at least ``rho``: d_in = 1, scale = 1/sqrt(2 rho).
    scale = 1.0 / math.sqrt(2.0 * rho)
    space = dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float)
    with contrib():
        while True:
            meas = dp.m.make_gaussian(*space, scale=scale)
            if meas.map(1.0) >= rho:
                break
            scale = math.nextafter(scale, 0.0)
        to_approx = dp.c.make_zCDP_to_approxDP(meas)
    try:
        return float(to_approx.map(1.0).epsilon(delta))
    except dp.OpenDPException:  # the conversion overflows: no finite ε at this δ
        return math.inf


def zcdp_to_epsilon(rho: float, delta: float) -> float:
    """ε at ``delta`` of a ρ-zCDP release, by OpenDP's ``make_zCDP_to_approxDP``.

    Examples
    --------
    >>> round(zcdp_to_epsilon(0.5, 1e-6), 4)
    5.2215
    """
    if rho == 0:
        return 0.0
    return _zcdp_profile_epsilon(float(rho), _conversion_delta(delta))


def _conversion_delta(delta: float) -> float:
    """``delta`` as a float, or persona's ValidationError when no (ε, δ) conversion of zCDP
    exists at it."""
    if not 0 < delta < 1:
        raise ValidationError(
            f"delta must be in (0, 1) to convert zCDP to (ε, δ), not {delta!r}; zCDP "
            "releases need delta > 0, for example 1e-6",
            errors=[{"row": None, "field": "delta", "message": "invalid"}])
    return float(delta)


@lru_cache(maxsize=1024)
def pld_epsilon(noise_multiplier: float, steps: int, delta: float) -> float | None:
    """ε at ``delta`` of ``steps`` Gaussian releases with the given noise multiplier
    (σ / L2 sensitivity), from Google's ``dp-accounting`` PLD accountant; ``None`` if that
    package is not installed.

    The PLD is the continuous Gaussian's; persona's discrete Gaussian on a fine grid is
    practically the same, so this figure is reported beside the OpenDP claim, never instead
    of it.

    Examples
    --------
    >>> eps = pld_epsilon(5.0, 10, 1e-6)
    >>> eps is None or 2.8 < eps < 3.0
    True
    """
    if noise_multiplier < 0.3:  # the PLD grid would need gigabytes; nothing to report
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import dp_accounting
    except ImportError:  # pragma: no cover - optional
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        acc = dp_accounting.pld.PLDAccountant(value_discretization_interval=1e-3)
        acc.compose(dp_accounting.GaussianDpEvent(float(noise_multiplier)), int(steps))
        return float(acc.get_epsilon(float(delta)))


@dataclass(frozen=True)
class GaussianPlan:
    """A calibrated Gaussian release: noise ``scale`` on the grid ``2^k`` for ``steps``
    releases of L2 ``sensitivity`` over ``size`` values each."""

    scale: float
    k: int
    sensitivity: float
    size: int
    steps: int
    rho_per_step: float
    rho: float
    epsilon: float
    delta: float

    @property
    def grid_scale(self) -> int:
        """The noise scale in grid units (an integer: ``scale / 2^k``)."""
        return int(math.ldexp(self.scale, -self.k))


def _invalid(exc: Any) -> ValidationError:
    """persona's error for a pydantic error about :class:`DP` settings."""
    first = exc.errors()[0]
    where = ".".join(map(str, first["loc"])) or "settings"
    return ValidationError(
        f"invalid DP setting {where}: {first['msg']} (got {first.get('input')!r}); fix the "
        "argument and retry, e.g. DP(epsilon=1.0, delta=1e-6)",
        errors=[{"row": None, "field": ".".join(map(str, e["loc"])), "message": e["msg"],
                 "input": repr(e.get("input"))[:80]} for e in exc.errors()],
    )


class DP(BaseModel):
    """Differential-privacy settings for one private fit. Every bound is public, chosen by
    the caller, and never derived from the data.

    Examples
    --------
    >>> cfg = DP(epsilon=4.0, delta=1e-6, max_events_per_person=50)
    >>> plan = cfg.gaussian_plan(sensitivity=1.0, steps=10)
    >>> plan.epsilon <= 4.0
    True
    >>> DP(epsilon=1.0, delta=0.0).delta
    0.0
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    epsilon: PositiveFloat
    """Total ε of the fit (all noisy releases together)."""
    delta: float = Field(default=1e-6, ge=0.0, lt=1.0)
    """Total δ. ``0`` is allowed only for pure-DP (Laplace) mechanisms."""
    max_events_per_person: PositiveInt = 64
    """Each person's events are capped to this many, sampled uniformly (not the first k)."""
    max_value: PositiveFloat = 1.0
    """Each event's value is clipped to ``[0, max_value]``."""
    factor_norm: PositiveFloat = 1.0
    """L2 clip norm of each person's factor vector (DP-ALS)."""
    weight_budget: PositiveFloat | None = None
    """DP-ALS: weight each person's items by ``min(1, weight_budget / sqrt(n))`` instead of
    relying on the cap alone (``4.0`` worked best in the benchmarks, with a high cap)."""
    items: Literal["declared", "select"] = "declared"
    """Where a private fit's items come from. ``"declared"``: the declared catalogue
    (``store.define_items``, ``Interactions.from_pandas(items=...)``); a fit without one is
    refused. ``"select"``: when no catalogue is declared, differentially private partition
    selection (:func:`persona.privacy.private_item_selection`) names the items held by many
    people, spending ``selection_share`` of ε and δ; a declared catalogue is still used when
    there is one."""
    selection_share: float = Field(default=0.1, gt=0.0, lt=1.0)
    """With ``items="select"`` and no declared catalogue: the share of ε and δ spent on
    choosing the items (the rest goes to the model)."""
    grid_slack: float = Field(default=1e-3, gt=0.0, le=0.5)
    """Rounding to OpenDP's noise grid may add this fraction of the sensitivity."""
    randomness: RandomnessSource = "os-csprng"
    """Where the noise comes from, from a fixed vocabulary
    (:data:`persona.privacy.RANDOMNESS`): ``"os-csprng"``, persona's exact samplers of
    OpenDP's noise fed by the operating system's CSPRNG, the only source persona uses. Free
    text is refused: reports print the vocabulary's words, never a caller's claim."""

    @field_validator("randomness", mode="before")
    @classmethod
    def _randomness(cls, value: Any) -> Any:
        return check_randomness(value)

    @model_validator(mode="after")
    def _check(self) -> DP:
        if not math.isfinite(self.epsilon):
            raise ValueError("epsilon must be finite")
        return self

    def __init__(self, **data: Any) -> None:
        """Build the settings; bad ones raise persona's :class:`~persona.ValidationError`
        (``code`` ``"validation_error"``, naming the field), not a bare pydantic error."""
        from pydantic import ValidationError as PydanticError

        try:
            super().__init__(**data)
        except PydanticError as exc:
            raise _invalid(exc) from None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> DP:
        """:meth:`pydantic.BaseModel.model_validate`, raising persona's
        :class:`~persona.ValidationError` on bad settings."""
        from pydantic import ValidationError as PydanticError

        try:
            return super().model_validate(obj, *args, **kwargs)
        except PydanticError as exc:
            # a mapping is validated by ``__init__``, whose error pydantic wraps: raise it
            inner = exc.errors()[0].get("ctx", {}).get("error")
            if isinstance(inner, ValidationError):
                raise inner from None
            raise _invalid(exc) from None

    @classmethod
    def validated(cls, **kwargs: Any) -> DP:
        """Build a ``DP``, raising persona's :class:`~persona.ValidationError` on bad input
        (as ``DP(...)`` itself does)."""
        return cls(**kwargs)

    def split(self, share: float) -> tuple[DP, DP]:
        """``(share, 1 - share)`` of ε and δ as two settings with the same bounds.

        >>> a, b = DP(epsilon=1.0, delta=1e-6).split(0.25)
        >>> a.epsilon, b.epsilon
        (0.25, 0.75)
        """
        first = self.model_copy(update={"epsilon": self.epsilon * share,
                                        "delta": self.delta * share})
        rest = self.model_copy(update={"epsilon": self.epsilon * (1 - share),
                                       "delta": self.delta * (1 - share)})
        return first, rest

    def for_rho(self, rho: float) -> DP:
        """These settings (δ and the bounds kept) with ε set so that what is planned from
        them costs at most ``rho`` in zero-concentrated DP: settings made this way from
        shares of one budget ``rho_budget(ε, δ)`` compose, by
        :func:`persona.privacy.accounting.compose_zcdp`, to at most (ε, δ), where splitting
        ε itself (:meth:`split`, basic composition) leaves much of it unused.

        >>> whole = DP(epsilon=8.0, delta=1e-6)
        >>> half = whole.for_rho(rho_budget(8.0, 1e-6) / 2)
        >>> round(half.epsilon, 2), half.delta  # two of them cost ε = 8 together
        (5.37, 1e-06)
        """
        if isinstance(rho, bool) or not isinstance(rho, int | float) \
                or not math.isfinite(rho) or rho <= 0:
            raise ValidationError(
                f"rho must be a positive finite number (a zCDP budget), not {rho!r}",
                errors=[{"row": None, "field": "rho", "message": "invalid"}])
        # a hair under the share: the plan's own search must land within it
        epsilon = zcdp_to_epsilon(float(rho) * (1 - 1e-6), self.require_delta())
        if not math.isfinite(epsilon):
            raise ValidationError(
                f"rho = {rho!r} has no finite ε at delta = {self.delta}; give a smaller rho",
                errors=[{"row": None, "field": "rho", "message": "too large"}])
        return self.model_copy(update={"epsilon": epsilon})

    def require_delta(self) -> float:
        """δ for a Gaussian (zCDP) mechanism; raises if δ = 0."""
        if self.delta <= 0:
            raise ValidationError(
                "delta = 0 allows only pure-DP mechanisms (Laplace); give delta > 0, "
                "for example 1e-6, to use the Gaussian mechanism"
            )
        return self.delta

    def gaussian_plan(
        self, sensitivity: float, steps: int = 1, size: int = 1, epsilon: float | None = None,
        rho: float | None = None,
    ) -> GaussianPlan:
        """Calibrate the Gaussian noise so that ``steps`` releases, each of L2 sensitivity
        ``sensitivity`` over ``size`` values, together cost at most (ε, δ) — or at most
        ``rho`` (zCDP) when given, for a share of a larger budget.

        The grid ``2^k`` is chosen from the public sensitivity and size; the scale is the
        smallest multiple of ``2^k`` whose OpenDP map, composed over the steps and converted
        by ``make_zCDP_to_approxDP``, stays within ε (binary search).
        """
        return _gaussian_plan(self, float(sensitivity), int(steps), int(size), epsilon, rho)

    def _gaussian_plan(
        self, sensitivity: float, steps: int = 1, size: int = 1, epsilon: float | None = None,
        rho: float | None = None,
    ) -> GaussianPlan:
        delta = self.require_delta()
        target = self.epsilon if epsilon is None else epsilon
        rho_target = rho if rho is not None else rho_budget(target, delta)
        k = grid_for(sensitivity, size, self.grid_slack)
        eff = grid_sensitivity(sensitivity, size, k)

        def cost(units: int) -> float:  # total rho from OpenDP's map
            return steps * gaussian_rho(math.ldexp(units, k), sensitivity, size, k)

        # OpenDP's map is (eff / scale)^2 / 2: start there, then step to the smallest fit
        units = max(1, math.ceil(math.ldexp(eff * math.sqrt(steps / (2 * rho_target)), -k)))
        if units > 2**40:
            raise ValidationError("no noise scale reaches this epsilon; raise epsilon")
        while units > 1 and cost(units - 1) <= rho_target:
            units -= 1
        while cost(units) > rho_target:
            units += 1
        scale = math.ldexp(units, k)
        rho1 = gaussian_rho(scale, sensitivity, size, k)
        return GaussianPlan(
            scale=scale, k=k, sensitivity=sensitivity, size=size, steps=steps,
            rho_per_step=rho1, rho=steps * rho1, epsilon=zcdp_to_epsilon(steps * rho1, delta),
            delta=delta,
        )

    def laplace_scale(self, sensitivity: float, size: int = 1) -> tuple[float, int, float]:
        """``(scale, k, ε)`` of a discrete Laplace release of L1 ``sensitivity`` costing at
        most ε (pure DP), from OpenDP's ``make_laplace`` map."""
        return _laplace_scale(self, float(sensitivity), int(size))

    def _laplace_scale(self, sensitivity: float, size: int = 1) -> tuple[float, int, float]:
        k = grid_for(sensitivity, size * size, self.grid_slack)  # L1 rounding grows with size

        def eps_of(units: int) -> float:
            return laplace_epsilon(math.ldexp(units, k), sensitivity, size, k)

        hi = max(1, int(math.ldexp(sensitivity / self.epsilon, -k)) // 2)
        while eps_of(hi) > self.epsilon:
            hi *= 2
        lo = hi // 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if eps_of(mid) > self.epsilon:
                lo = mid
            else:
                hi = mid
        return math.ldexp(hi, k), k, eps_of(hi)


@lru_cache(maxsize=256)
def _gaussian_plan(
    cfg: DP, sensitivity: float, steps: int, size: int, epsilon: float | None,
    rho: float | None,
) -> GaussianPlan:
    return cfg._gaussian_plan(sensitivity, steps, size, epsilon, rho)


@lru_cache(maxsize=256)
def rho_budget(epsilon: float, delta: float) -> float:
    """The largest ρ whose OpenDP conversion to (ε, δ) stays within ``epsilon`` at ``delta``.

    Examples
    --------
    >>> rho = rho_budget(1.0, 1e-6)
    >>> zcdp_to_epsilon(rho, 1e-6) <= 1.0 < zcdp_to_epsilon(rho * 1.001, 1e-6)
    True
    """
    # Fast search with the zCDP -> (ε, δ) conversion of Canonne, Kamath & Steinke (2020),
    # the one OpenDP implements, evaluated in float; OpenDP itself has the last word below.
    delta = _conversion_delta(delta)
    lo, hi = 0.0, max(1.0, epsilon)
    while _cks_delta(hi, epsilon) <= delta:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        if _cks_delta(mid, epsilon) <= delta:
            lo = mid
        else:
            hi = mid
    rho = lo * (1 - 1e-9)
    for _ in range(50):  # OpenDP's conversion decides; step down until it agrees
        eps = zcdp_to_epsilon(rho, delta)
        if eps <= epsilon:
            if eps >= epsilon * (1 - 1e-6):
                return rho
            break  # valid but loose (large ε): refine on OpenDP alone
        rho *= 1 - 1e-6
    # bisect on OpenDP's conversion alone (slower, always right)
    lo, hi = 0.0, max(rho, 1e-12)
    while zcdp_to_epsilon(hi, delta) <= epsilon:
        lo, hi = hi, 2 * hi
    for _ in range(30):
        mid = (lo + hi) / 2
        if zcdp_to_epsilon(mid, delta) <= epsilon:
            lo = mid
        else:
            hi = mid
    return lo


def _cks_delta(rho: float, epsilon: float) -> float:
    """δ of ρ-zCDP at ε: ``inf over α > 1 of exp((α-1)(αρ-ε)) / (α-1) · (1-1/α)^α``
    (Canonne, Kamath & Steinke 2020, Proposition 12), computed in logs."""
    if rho <= 0:
        return 0.0

    def log_delta(a: float) -> float:
        return ((a - 1) * (a * rho - epsilon) - math.log(a - 1)
                + a * math.log1p(-1 / a))

    # The exponent is convex in α, with slope 2αρ - ρ - ε + log(1 - 1/α): the optimum lies
    # where 2αρ - ρ - ε ≈ 1/α, below 1 + 4 (ε + ρ) / ρ + 4 / sqrt(ρ). Golden-section search
    # on log(α - 1), from α - 1 = 1e-9 up to that bound.
    lo = math.log(1e-9)
    hi = math.log(4 * (epsilon + rho) / rho + 4 / math.sqrt(rho) + 4)
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = log_delta(1 + math.exp(a)), log_delta(1 + math.exp(b))
    for _ in range(120):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = log_delta(1 + math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = log_delta(1 + math.exp(b))
    return math.exp(min(fa, fb, 0.0))


@lru_cache(maxsize=256)
def _laplace_scale(cfg: DP, sensitivity: float, size: int) -> tuple[float, int, float]:
    return cfg._laplace_scale(sensitivity, size)


@dataclass
class ZCDPAccountant:
    """Adds up the cost of noisy releases in zCDP (pure-DP parts converted with
    ``ρ = ε²/2``, OpenDP's ``make_pureDP_to_zCDP``) and converts the total to (ε, δ).

    Examples
    --------
    >>> acc = ZCDPAccountant()
    >>> acc.gaussian("item stats", scale=4.0, sensitivity=1.0, times=3)
    0.09375
    >>> round(acc.epsilon(1e-6), 4) == round(zcdp_to_epsilon(0.09375, 1e-6), 4)
    True
    """

    releases: list[dict[str, Any]] = field(default_factory=list)

    def gaussian(
        self, name: str, scale: float, sensitivity: float, *, size: int = 1,
        k: int = _MIN_K, times: int = 1,
    ) -> float:
        """Record ``times`` discrete Gaussian releases; returns their total ρ."""
        rho = gaussian_rho(scale, sensitivity, size, k) * times
        self.releases.append({"name": name, "kind": "gaussian", "scale": scale, "k": k,
                              "sensitivity": sensitivity, "size": size, "times": times,
                              "rho": rho})
        return rho

    def laplace(
        self, name: str, scale: float, sensitivity: float, *, size: int = 1,
        k: int = _MIN_K, times: int = 1,
    ) -> float:
        """Record ``times`` discrete Laplace releases; returns their total pure ε."""
        eps = laplace_epsilon(scale, sensitivity, size, k) * times
        self.releases.append({"name": name, "kind": "laplace", "scale": scale, "k": k,
                              "sensitivity": sensitivity, "size": size, "times": times,
                              "epsilon": eps})
        return eps

    @property
    def pure_epsilon(self) -> float | None:
        """Total ε if every release is pure DP (Laplace), else ``None``."""
        if any(r["kind"] != "laplace" for r in self.releases):
            return None
        return float(sum(r["epsilon"] for r in self.releases))

    @property
    def rho(self) -> float:
        """Total ρ (zCDP) of every release."""
        total = 0.0
        for r in self.releases:
            if r["kind"] == "gaussian":
                total += r["rho"]
            else:
                per = r["epsilon"] / r["times"]
                total += r["times"] * per * per / 2.0
        return total

    def epsilon(self, delta: float) -> float:
        """Total ε at ``delta`` (pure ε when every release is Laplace and ``delta`` is 0)."""
        pure = self.pure_epsilon
        if pure is not None and delta == 0:
            return pure
        eps = zcdp_to_epsilon(self.rho, delta)
        return min(eps, pure) if pure is not None else eps
