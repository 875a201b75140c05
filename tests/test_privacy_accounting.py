"""Accounting agrees with OpenDP: per-release maps, composition, conversion, calibration."""

from __future__ import annotations

import math

import opendp.prelude as dp
import pytest

from persona.errors import ValidationError
from persona.privacy import DP
from persona.privacy.accounting import (
    ZCDPAccountant,
    gaussian_rho,
    grid_sensitivity,
    laplace_epsilon,
    pld_epsilon,
    rho_budget,
    zcdp_to_epsilon,
)

dp.enable_features("contrib")


def test_gaussian_rho_is_opendps_map_with_rounding_counted() -> None:
    size, k, scale, sens = 50, -8, 3.0, 2.0
    expected = (grid_sensitivity(sens, size, k) / scale) ** 2 / 2
    assert gaussian_rho(scale, sens, size, k) == pytest.approx(expected, rel=1e-12)
    space = (dp.vector_domain(dp.atom_domain(T=float, nan=False), size=size),
             dp.l2_distance(T=float))
    assert gaussian_rho(scale, sens, size, k) == dp.m.make_gaussian(
        *space, scale=scale, k=k).map(sens)


def test_rounding_grid_costs_privacy() -> None:
    assert gaussian_rho(1.0, 1.0, size=100, k=-4) > gaussian_rho(1.0, 1.0, size=100, k=-20)
    assert gaussian_rho(1.0, 1.0) == 0.5


def test_laplace_epsilon_is_opendps_map() -> None:
    assert laplace_epsilon(2.0, 1.0) == 0.5
    space = (dp.vector_domain(dp.atom_domain(T=float, nan=False), size=10),
             dp.l1_distance(T=float))
    meas = dp.m.make_laplace(*space, scale=2.0, k=-10)
    assert laplace_epsilon(2.0, 1.0, 10, -10) == meas.map(1.0)


def test_composition_and_conversion_match_opendp() -> None:
    space = dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float)
    meas = dp.m.make_gaussian(*space, scale=5.0)
    composed = dp.c.make_composition([meas] * 10)
    acc = ZCDPAccountant()
    acc.gaussian("step", scale=5.0, sensitivity=1.0, times=10)
    assert acc.rho == pytest.approx(composed.map(1.0), rel=1e-12)
    theirs = dp.c.make_zCDP_to_approxDP(composed).map(1.0).epsilon(1e-6)
    assert acc.epsilon(1e-6) == pytest.approx(theirs, rel=1e-9)
    assert zcdp_to_epsilon(0.0, 1e-6) == 0.0


def test_pure_dp_parts_sum_or_convert() -> None:
    acc = ZCDPAccountant()
    acc.laplace("counts", scale=2.0, sensitivity=1.0, times=2)
    assert acc.pure_epsilon == 1.0
    assert acc.epsilon(0.0) == 1.0
    assert acc.rho == pytest.approx(2 * 0.5**2 / 2)
    acc.gaussian("als", scale=4.0, sensitivity=1.0)
    assert acc.pure_epsilon is None
    assert acc.epsilon(1e-6) == pytest.approx(zcdp_to_epsilon(acc.rho, 1e-6))


@pytest.mark.parametrize(("eps", "steps", "size"), [(0.5, 1, 1), (2.0, 10, 1000),
                                                    (8.0, 5, 200_000)])
def test_calibration_is_tight_and_never_over(eps: float, steps: int, size: int) -> None:
    cfg = DP(epsilon=eps, delta=1e-6)
    plan = cfg.gaussian_plan(sensitivity=3.0, steps=steps, size=size)
    assert plan.epsilon <= eps
    assert plan.rho == pytest.approx(steps * gaussian_rho(plan.scale, 3.0, size, plan.k))
    # one grid step less noise would overspend the rho that (ε, δ) allows: the scale is
    # the smallest that fits
    smaller = math.ldexp(plan.grid_scale - 1, plan.k)
    assert steps * gaussian_rho(smaller, 3.0, size, plan.k) > rho_budget(eps, 1e-6)
    assert zcdp_to_epsilon(rho_budget(eps, 1e-6) * 1.0001, 1e-6) > eps
    # rounding adds at most grid_slack of the sensitivity
    assert grid_sensitivity(3.0, size, plan.k) <= 3.0 * (1 + cfg.grid_slack)


@pytest.mark.parametrize("eps", [1e-3, 30.0, 1e4])
def test_rho_budget_is_tight_at_extreme_epsilons(eps: float) -> None:
    rho = rho_budget(eps, 1e-6)
    assert zcdp_to_epsilon(rho, 1e-6) <= eps
    assert zcdp_to_epsilon(rho * 1.001, 1e-6) > eps


def test_laplace_calibration() -> None:
    scale, k, eps = DP(epsilon=1.0, delta=0.0).laplace_scale(5.0, size=100)
    assert eps <= 1.0
    assert laplace_epsilon(scale, 5.0, 100, k) == eps


def test_dp_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        DP(epsilon=0.0)
    with pytest.raises(ValueError, match="less than 1"):
        DP(epsilon=1.0, delta=1.0)
    with pytest.raises(ValueError, match="greater than 0"):
        DP(epsilon=1.0, max_events_per_person=0)
    with pytest.raises(ValueError, match="Extra inputs"):
        DP(epsilon=1.0, unknown=3)
    with pytest.raises(ValidationError, match="epsilon"):
        DP.validated(epsilon=-1)
    with pytest.raises(ValidationError, match="delta = 0"):
        DP(epsilon=1.0, delta=0.0).gaussian_plan(sensitivity=1.0)
    cfg = DP(epsilon=1.0)
    with pytest.raises(ValueError, match="frozen"):
        cfg.epsilon = 2.0  # type: ignore[misc]


def test_pld_figure_is_reported_and_tighter_for_many_steps() -> None:
    pld = pld_epsilon(5.0, 10, 1e-6)
    assert pld is not None
    assert pld < zcdp_to_epsilon(10 / (2 * 25.0), 1e-6)
    assert pld_epsilon(0.01, 3, 1e-6) is None  # too little noise to report


def test_dp_is_exported_lazily_from_persona() -> None:
    import persona

    assert persona.DP is DP
    assert "DP" in dir(persona)
