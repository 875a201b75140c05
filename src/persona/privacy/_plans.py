"""What a private release will cost, from public inputs only, before any data is read.

Each ``plan_*`` function returns the exact :class:`~persona.PrivacySpent` that the matching
mechanism reports: the mechanisms calibrate their noise by calling these same functions and
take the scale and grid from the plan, so ``plan_x(...) == private_x(...)[1]`` always. The
inputs are public: the privacy settings, the number of items of the declared catalogue and
the model's hyperparameters. Use a plan to reserve the budget in a ledger before reading.
"""

from __future__ import annotations

import math
import numbers
from functools import lru_cache

import opendp.prelude as dp

from persona.errors import ValidationError
from persona.privacy._accountant import DP, grid_sensitivity, pld_epsilon, rho_budget
from persona.privacy._opendp import contrib
from persona.schema import PrivacySpent

__all__ = ["plan_als", "plan_cooccurrence", "plan_item_counts", "plan_item_selection"]

QX = 15  # DP-ALS: user factors are truncated toward zero onto the grid 2^-15
QW = 8  # DP-ALS: confidence weights are truncated toward zero onto the grid 2^-8
QV = 20  # item counts: values are truncated toward zero onto the grid 2^-20
MAX_COUNT_VALUE = 2.0**40  # item counts: max_value bound for exact integer sums
MAX_ALPHA_VALUE = 2.0**10  # DP-ALS: alpha * max_value bound for exact integer sums


def _bounds(dp_cfg: DP, **extra: float) -> dict[str, float]:
    out: dict[str, float] = {
        "max_events_per_person": float(dp_cfg.max_events_per_person),
        "max_value": float(dp_cfg.max_value),
    }
    out.update(extra)
    return out


def _whole(value: object, minimum: int) -> int | None:
    """``value`` as an int if it is a whole number of at least ``minimum``, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if not math.isfinite(value):
        return None
    whole = math.trunc(value)
    if whole != value or value < minimum:
        return None
    return int(whole)


def _check(dp_cfg: object) -> DP:
    if not isinstance(dp_cfg, DP):
        raise ValidationError(
            f"dp_cfg must be a persona.DP, not {type(dp_cfg).__name__}; pass for example "
            "DP(epsilon=1.0, delta=1e-6, max_events_per_person=50)")
    return dp_cfg


def _items(n_items: int) -> int:
    n = _whole(n_items, 1)
    if n is None:
        raise ValidationError(
            f"n_items must be a whole number of at least 1 (the size of the declared "
            f"item catalogue), got {n_items!r}")
    return n


def _gaussian_spent(
    mechanism: str, dp_cfg: DP, sensitivity: float, steps: int, size: int,
    bounds: dict[str, float],
) -> PrivacySpent:
    plan = dp_cfg.gaussian_plan(sensitivity=sensitivity, steps=steps, size=size)
    eff = grid_sensitivity(sensitivity, size, plan.k)
    pld = pld_epsilon(plan.scale / eff, steps, plan.delta) if plan.epsilon <= 64 else None
    return PrivacySpent(
        mechanism=mechanism, epsilon=plan.epsilon, delta=plan.delta, rho=plan.rho,
        bounds=bounds, steps=steps,
        noise={"scale": plan.scale, "k": float(plan.k), "sensitivity": sensitivity,
               "sensitivity_with_rounding": eff, "size": float(size)},
        accounting="OpenDP make_gaussian map per step, zCDP composition, make_zCDP_to_approxDP",
        epsilon_pld=pld if pld is not None and pld < plan.epsilon else None,
    )


def count_mechanism(dp_cfg: DP, mechanism: str | None) -> str:
    """``"gaussian"`` or ``"laplace"``: the requested one, by default Gaussian when
    ``delta > 0``."""
    kind = mechanism or ("gaussian" if dp_cfg.delta > 0 else "laplace")
    if kind not in ("gaussian", "laplace"):
        raise ValidationError(f"mechanism must be 'gaussian' or 'laplace', got {mechanism!r}")
    return kind


def plan_item_counts(n_items: int, dp_cfg: DP, mechanism: str | None = None) -> PrivacySpent:
    """What :func:`~persona.privacy.private_item_counts` over ``n_items`` items will spend.

    Examples
    --------
    >>> spent = plan_item_counts(30, DP(epsilon=1.0, max_events_per_person=10))
    >>> spent.mechanism, spent.epsilon <= 1.0, spent.noise["size"]
    ('dp-item-counts', True, 30.0)
    """
    n = _items(n_items)
    kind = count_mechanism(_check(dp_cfg), mechanism)
    m, v = dp_cfg.max_events_per_person, dp_cfg.max_value
    if v > MAX_COUNT_VALUE:
        raise ValidationError(
            f"max_value must be at most 2**40 for exact sums, got {v:g}; rescale the values")
    if kind == "gaussian":
        return _gaussian_spent("dp-item-counts", dp_cfg, v * math.sqrt(m), 1, n,
                               _bounds(dp_cfg))
    sens = v * m
    scale, k, eps = dp_cfg.laplace_scale(sens, size=n)
    return PrivacySpent(
        mechanism="dp-item-counts", epsilon=eps, delta=0.0, rho=None, bounds=_bounds(dp_cfg),
        noise={"scale": scale, "k": float(k), "sensitivity": sens, "size": float(n)},
        accounting="OpenDP make_laplace map (pure DP)",
    )


def plan_cooccurrence(n_items: int, dp_cfg: DP) -> PrivacySpent:
    """What :func:`~persona.privacy.private_cooccurrence` over ``n_items`` items will spend.

    Examples
    --------
    >>> plan_cooccurrence(12, DP(epsilon=2.0, max_events_per_person=4)).noise["size"]
    78.0
    """
    n = _items(n_items)
    m = _check(dp_cfg).max_events_per_person
    return _gaussian_spent("dp-cooccurrence", dp_cfg, math.sqrt(m * (m + 1) / 2), 1,
                           n * (n + 1) // 2, _bounds(dp_cfg, max_value=1.0))


def als_budget(dp_cfg: DP, weight_budget: float | None) -> tuple[float | None, float]:
    """The weight budget in force (``None``: every kept event has weight 1) and the bound on
    the sum of one person's squared item weights."""
    if weight_budget is None:
        weight_budget = dp_cfg.weight_budget
    m = float(dp_cfg.max_events_per_person)
    if weight_budget is None:
        return None, m
    if isinstance(weight_budget, bool) or not isinstance(weight_budget, numbers.Real) \
            or not weight_budget > 0 or not math.isfinite(weight_budget):
        raise ValidationError("weight_budget must be positive and finite")
    return float(weight_budget), min(float(weight_budget) ** 2, m)


def plan_als(
    n_items: int, factors: int, iterations: int, alpha: float, dp_cfg: DP,
    weight_budget: float | None = None,
) -> PrivacySpent:
    """What :func:`~persona.privacy.private_als_item_factors` will spend.

    ``weight_budget`` overrides ``dp_cfg.weight_budget`` as in the mechanism. The
    regularization is post-processing and does not enter.

    Examples
    --------
    >>> spent = plan_als(20, factors=4, iterations=3, alpha=0.0, dp_cfg=DP(epsilon=8.0))
    >>> spent.steps, spent.noise["size"]  # G (10 values) and b_j (4 per item) per step
    (3, 90.0)
    """
    n = _items(n_items)
    _check(dp_cfg)
    d, steps = _whole(factors, 1), _whole(iterations, 1)
    if d is None or steps is None:
        raise ValidationError(f"factors and iterations must be whole numbers of at least 1, "
                              f"got {factors!r} and {iterations!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not alpha >= 0 \
            or not math.isfinite(alpha):
        raise ValidationError(f"alpha must be a non-negative finite number, got {alpha!r}")
    v, bn = dp_cfg.max_value, dp_cfg.factor_norm
    aw = alpha * v  # bounds the (truncated) weights, with or without person weights
    if aw > MAX_ALPHA_VALUE or bn > 1.0:
        raise ValidationError("need alpha * max_value <= 1024 and factor_norm <= 1 "
                              "(exact integer statistics); rescale the data")
    wb, budget = als_budget(dp_cfg, weight_budget)
    tri = d * (d + 1) // 2
    size = tri * (1 + (n if aw > 0 else 0)) + d * n
    sens = math.sqrt(bn**4 + budget * (aw * bn * bn) ** 2 + budget * ((1 + aw) * bn) ** 2)
    bounds = _bounds(dp_cfg, factor_norm=bn, alpha=float(alpha))
    if wb is not None:
        bounds["weight_budget"] = wb
    return _gaussian_spent("dp-als", dp_cfg, sens, steps, size, bounds)


# ---------------------------------------------------------------------------------------------
# DP partition selection (OpenDP make_gaussian_threshold)

_SCALE_GRID = -10  # the selection's noise scale is a multiple of 2^-10


def _threshold_measurement(scale: float, threshold: int) -> dp.Measurement:
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T="i64"))
    metric = dp.l02inf_distance(dp.absolute_distance(T="i64"))
    with contrib():
        return dp.m.make_gaussian_threshold(domain, metric, scale=float(scale),
                                            threshold=int(threshold))


def selection_distance(dp_cfg: DP) -> tuple[int, int, int]:
    """OpenDP's ``L02InfDistance`` between the per-item distinct-people counts of two
    neighbouring data sets: one person changes at most ``max_events_per_person`` items
    (l0), each by 1 (l∞); l2 is then at most ``sqrt(l0)``, which OpenDP's map derives from
    l0 and l∞ (the l2 given here, l0 itself, is looser and is tightened by the map)."""
    m = int(dp_cfg.max_events_per_person)
    if m >= 2**32:
        raise ValidationError("max_events_per_person must be below 2**32 for item selection")
    return m, m, 1


@lru_cache(maxsize=256)
def _selection_plan(dp_cfg: DP) -> tuple[float, int, float, float, float, float]:
    delta = dp_cfg.require_delta()
    d_in = selection_distance(dp_cfg)
    half = delta / 2  # half of δ for the threshold, half for the zCDP conversion
    rho_target = rho_budget(dp_cfg.epsilon, half)
    l2 = math.sqrt(d_in[0])
    units = max(1, math.ceil(math.ldexp(l2 / math.sqrt(2 * rho_target), -_SCALE_GRID)))
    while True:
        scale = math.ldexp(units, _SCALE_GRID)
        if _threshold_measurement(scale, 1).map(d_in)[0] <= rho_target:
            break
        units += 1
    hi = 2  # smallest threshold whose instability δ is at most half of δ
    while _threshold_measurement(scale, hi).map(d_in)[1] > half:
        hi *= 2
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _threshold_measurement(scale, mid).map(d_in)[1] > half:
            lo = mid
        else:
            hi = mid
    meas = _threshold_measurement(scale, hi)
    rho, delta_threshold = meas.map(d_in)
    with contrib():
        fixed = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(meas), delta)
    epsilon, delta_total = fixed.map(d_in)
    return scale, hi, float(rho), float(delta_threshold), float(epsilon), float(delta_total)


def plan_item_selection(dp_cfg: DP) -> PrivacySpent:
    """What :func:`~persona.privacy.private_item_selection` will spend: it depends only on
    the privacy settings (the candidate items may come from the data; only the items whose
    noisy count of distinct people passes the threshold are released).

    The noise scale is calibrated so that the Gaussian part, converted at half of δ, costs
    at most ε; the threshold ``T`` is the smallest whose chance of releasing any item that
    one person alone holds (OpenDP's ``make_gaussian_threshold`` map, over the
    ``max_events_per_person`` items that person may hold) is at most the other half. Items
    are selected when their noisy count is strictly above ``T`` (``noise["threshold"]``),
    the event OpenDP's map bounds (see :mod:`persona.privacy._selection`).

    Examples
    --------
    >>> spent = plan_item_selection(DP(epsilon=1.0, delta=1e-6, max_events_per_person=10))
    >>> spent.epsilon <= 1.0, spent.delta == 1e-6, spent.noise["threshold"] > 1
    (True, True, True)
    """
    scale, threshold, rho, delta_threshold, epsilon, delta_total = _selection_plan(
        _check(dp_cfg))
    l0, _, li = selection_distance(dp_cfg)
    return PrivacySpent(
        mechanism="dp-item-selection", epsilon=epsilon, delta=delta_total, rho=None,
        bounds=_bounds(dp_cfg, max_value=1.0),
        noise={"scale": scale, "threshold": float(threshold), "rho": rho,
               "threshold_delta": delta_threshold, "sensitivity": math.sqrt(l0),
               "l0": float(l0), "linf": float(li)},
        accounting="OpenDP make_gaussian_threshold map (approximate zCDP, L02Inf distance: "
                   "l0 = max_events_per_person, l-inf = 1), make_zCDP_to_approxDP, "
                   "make_fix_delta",
    )
