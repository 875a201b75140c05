"""The accountant at its edges: exact figures against OpenDP or closed forms, the boundaries
of each rule, and every refusal with its type and code."""

from __future__ import annotations

import math

import opendp.prelude as dp
import pytest
from scipy.stats import norm

from persona.errors import ValidationError
from persona.privacy import DP
from persona.privacy._accountant import _cks_delta
from persona.privacy.accounting import (
    GaussianPlan,
    ZCDPAccountant,
    gaussian_rho,
    grid_for,
    grid_sensitivity,
    laplace_epsilon,
    pld_epsilon,
    rho_budget,
    zcdp_to_epsilon,
)

dp.enable_features("contrib")

TINY = 2.0**-1074  # the smallest float: OpenDP's default grid


def _scalar() -> tuple[object, object]:
    return dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float)


def _vector(size: int, metric) -> tuple[object, object]:
    return dp.vector_domain(dp.atom_domain(T=float, nan=False), size=size), metric


# ------------------------------------------------------------------- per-release maps
@pytest.mark.parametrize(("scale", "sens", "size", "k"), [
    (3.0, 2.0, 50, -8), (0.75, 1.0, 7, -3), (1.5, 0.5, 1, -1074), (2.0, 1.0, 9, -1074),
])
def test_gaussian_rho_is_opendps_l2_map(scale: float, sens: float, size: int, k: int) -> None:
    theirs = dp.m.make_gaussian(*_vector(size, dp.l2_distance(T=float)), scale=scale, k=k)
    assert gaussian_rho(scale, sens, size, k) == theirs.map(sens)
    # the closed form: (sensitivity with the rounding, over the scale)^2 / 2
    assert gaussian_rho(scale, sens, size, k) == pytest.approx(
        (grid_sensitivity(sens, size, k) / scale) ** 2 / 2, rel=1e-12)


def test_gaussian_rho_defaults_are_one_value_on_the_finest_grid() -> None:
    theirs = dp.m.make_gaussian(*_scalar(), scale=0.8)
    assert gaussian_rho(0.8, 1.25) == theirs.map(1.25) == pytest.approx((1.25 / 0.8) ** 2 / 2)


def test_a_coarse_grid_costs_more_in_l2_than_without_rounding() -> None:
    # size 16, grid 2^-2: OpenDP adds (2^-2 - 2^-1074) * sqrt(16) = 1 to the sensitivity
    assert gaussian_rho(2.0, 1.0, 16, -2) == pytest.approx((2.0 / 2.0) ** 2 / 2, rel=1e-12)
    assert gaussian_rho(2.0, 1.0, 16, -1074) == pytest.approx((1.0 / 2.0) ** 2 / 2, rel=1e-12)


@pytest.mark.parametrize(("scale", "sens", "size", "k"), [
    (2.0, 1.0, 10, -10), (0.5, 3.0, 4, -2), (4.0, 2.0, 1, -1074),
])
def test_laplace_epsilon_is_opendps_l1_map(scale: float, sens: float, size: int, k: int) -> None:
    theirs = dp.m.make_laplace(*_vector(size, dp.l1_distance(T=float)), scale=scale, k=k)
    assert laplace_epsilon(scale, sens, size, k) == theirs.map(sens)
    assert laplace_epsilon(scale, sens, size, k) == pytest.approx(
        grid_sensitivity(sens, size, k, norm=1) / scale, rel=1e-12)


def test_laplace_defaults_are_one_value_on_the_finest_grid() -> None:
    assert laplace_epsilon(0.8, 2.0) == dp.m.make_laplace(*_scalar(), scale=0.8).map(2.0) == 2.5


# ------------------------------------------------------------------- grids
def test_grid_sensitivity_adds_the_rounding_in_l2_or_l1() -> None:
    assert grid_sensitivity(1.0, size=4, k=-2) == 1.0 + 0.25 * 2  # sqrt(4) values
    assert grid_sensitivity(1.0, size=4, k=-2, norm=1) == 1.0 + 0.25 * 4
    assert grid_sensitivity(1.0, size=9, k=0, norm=2) == 1.0 + (1.0 - TINY) * 3
    # on the finest grid rounding is exact and adds nothing
    assert grid_sensitivity(3.5, size=100, k=-1074) == 3.5
    assert grid_sensitivity(0.0, size=1, k=-1074) == 0.0
    # one step coarser adds 2^-1073 - 2^-1074 = 2^-1074 per value
    assert grid_sensitivity(0.0, size=1, k=-1073) == TINY
    assert grid_sensitivity(0.0, size=4, k=-1073, norm=1) == 4 * TINY
    assert isinstance(grid_sensitivity(2, size=1, k=-1074), float)


def test_grid_sensitivity_is_what_opendp_adds() -> None:
    for size, k in [(16, -2), (3, -5), (1, 0)]:
        l2 = dp.m.make_gaussian(*_vector(size, dp.l2_distance(T=float)), scale=1.0, k=k)
        assert l2.map(1.0) == pytest.approx(grid_sensitivity(1.0, size, k) ** 2 / 2, rel=1e-12)
        l1 = dp.m.make_laplace(*_vector(size, dp.l1_distance(T=float)), scale=1.0, k=k)
        assert l1.map(1.0) == pytest.approx(grid_sensitivity(1.0, size, k, norm=1), rel=1e-12)


@pytest.mark.parametrize(("sens", "size", "slack"), [
    (1.0, 1, 1e-3), (1.0, 100, 1e-3), (3.0, 1000, 1e-3), (0.01, 5, 0.5), (250.0, 1, 1e-2),
])
def test_grid_for_is_the_coarsest_within_the_slack(sens: float, size: int, slack: float) -> None:
    k = grid_for(sens, size, slack)
    assert (2.0**k) * math.sqrt(size) <= slack * sens  # within the slack
    assert (2.0 ** (k + 1)) * math.sqrt(size) > slack * sens  # the next grid is not


def test_grid_for_default_slack_and_exact_powers() -> None:
    assert grid_for(1.0, 1) == -10  # 2^-10 <= 1e-3 < 2^-9
    assert grid_for(1.0, 4) == -11
    assert grid_for(1.0, 1, slack=0.5) == -1  # an exact power of two is within
    assert grid_for(1.0, 16, slack=1.0) == -2


@pytest.mark.parametrize("sens", [0.0, -1.0])
def test_grid_for_refuses_a_sensitivity_that_is_not_positive(sens: float) -> None:
    with pytest.raises(ValueError, match="sensitivity must be positive"):
        grid_for(sens, 1)


# ------------------------------------------------------------------- zCDP to (ε, δ)
def _largest_scale_costing(rho: float) -> float:
    """The largest scale whose OpenDP Gaussian map at d_in = 1 is at least ``rho``."""
    scale = 1.0 / math.sqrt(2.0 * rho)
    while dp.m.make_gaussian(*_scalar(), scale=scale).map(1.0) < rho:
        scale = math.nextafter(scale, 0.0)
    while dp.m.make_gaussian(*_scalar(), scale=math.nextafter(scale, math.inf)).map(1.0) >= rho:
        scale = math.nextafter(scale, math.inf)
    return scale


# 0.5 and 2.0: the first guess costs exactly rho; 0.1, 0.123, 3.7: it costs a little less
@pytest.mark.parametrize(("rho", "delta"), [(0.5, 1e-6), (2.0, 1e-6), (0.1, 1e-6),
                                            (0.123, 1e-6), (3.7, 1e-6), (0.7, 1e-6),
                                            (0.5, 0.3)])
def test_zcdp_to_epsilon_is_opendps_conversion_exactly(rho: float, delta: float) -> None:
    meas = dp.m.make_gaussian(*_scalar(), scale=_largest_scale_costing(rho))
    assert meas.map(1.0) >= rho
    theirs = dp.c.make_zCDP_to_approxDP(meas).map(1.0).epsilon(delta)
    assert zcdp_to_epsilon(rho, delta) == theirs


def test_zcdp_to_epsilon_edges() -> None:
    assert zcdp_to_epsilon(0.0, 1e-6) == 0.0
    assert zcdp_to_epsilon(0, 0.0) == 0.0  # nothing spent: no δ needed
    # within the classic bound ρ + 2 sqrt(ρ log(1/δ)) (Bun & Steinke 2016), and above ρ
    assert 1.0 < zcdp_to_epsilon(1.0, 1e-6) <= 1.0 + 2 * math.sqrt(math.log(1e6))
    assert zcdp_to_epsilon(1, 1e-6) == zcdp_to_epsilon(1.0, 1e-6) > 0
    # the conversion overflows in OpenDP: no finite ε
    assert zcdp_to_epsilon(5e199, 1e-6) == math.inf


@pytest.mark.parametrize("delta", [0.0, 1.0, -1e-6, 1.5])
def test_zcdp_to_epsilon_needs_a_delta_strictly_between_0_and_1(delta: float) -> None:
    with pytest.raises(ValueError, match=r"delta must be in \(0, 1\)"):
        zcdp_to_epsilon(0.5, delta)


# the optimum α lies near (ε + ρ) / 2ρ when ε is large; near 1 + sqrt(1 / 2ρ) when ε and ρ
# are both small (1e-6, 1e-4: α ≈ 733); below 2 when ρ is large (2, 3: α ≈ 1.4)
@pytest.mark.parametrize(("rho", "eps"), [(0.5, 5.0), (0.01, 0.5), (10.0, 40.0), (0.1, 0.2),
                                          (1e-6, 1e-4), (1e-4, 1e-3), (2.0, 3.0), (1.0, 1.0),
                                          (1e-8, 1e-3), (1e-4, 0.2), (0.01, 4.0)])
def test_cks_delta_is_opendps_delta(rho: float, eps: float) -> None:
    meas = dp.m.make_gaussian(*_scalar(), scale=1.0 / math.sqrt(2 * rho))
    theirs = dp.c.make_zCDP_to_approxDP(meas).map(1.0).delta(eps)
    assert _cks_delta(rho, eps) == pytest.approx(theirs, rel=1e-9, abs=0)


def test_cks_delta_of_nothing_is_zero_and_never_above_one() -> None:
    assert _cks_delta(0.0, 1.0) == 0.0
    assert _cks_delta(-1.0, 1.0) == 0.0
    assert 0.999 < _cks_delta(50.0, 0.1) <= 1.0
    assert _cks_delta(50.0, 0.1) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(("eps", "delta"), [(1.0, 1e-6), (0.1, 1e-5), (5.0, 1e-9),
                                            (1e-3, 1e-6), (30.0, 1e-6), (2.0, 0.4)])
def test_rho_budget_is_the_largest_rho_within_epsilon(eps: float, delta: float) -> None:
    rho = rho_budget(eps, delta)
    assert zcdp_to_epsilon(rho, delta) <= eps
    assert zcdp_to_epsilon(rho * (1 + 1e-5), delta) > eps  # tight within 1e-5


def test_rho_budget_of_a_huge_epsilon_is_found_by_opendp_alone() -> None:
    # at ε = 10^4 the float search is loose; the bisection on OpenDP's conversion decides
    rho = rho_budget(1e4, 1e-6)
    assert zcdp_to_epsilon(rho, 1e-6) <= 1e4 < zcdp_to_epsilon(rho * (1 + 1e-5), 1e-6)


# ------------------------------------------------------------------- PLD figure
def _gaussian_epsilon(mu: float, delta: float) -> float:
    """Exact ε at δ of a Gaussian mechanism with μ = sensitivity / σ (Balle & Wang 2018):
    δ(ε) = Φ(-ε/μ + μ/2) - e^ε Φ(-ε/μ - μ/2), solved for ε by bisection."""
    def delta_of(e: float) -> float:
        return norm.cdf(-e / mu + mu / 2) - math.exp(e) * norm.cdf(-e / mu - mu / 2)

    lo, hi = 0.0, 100.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if delta_of(mid) > delta else (lo, mid)
    return hi


@pytest.mark.parametrize(("sigma", "steps", "delta"), [(5.0, 10, 1e-6), (2.0, 1, 1e-5),
                                                       (0.3, 1, 1e-3)])
def test_pld_epsilon_matches_the_exact_gaussian_curve(sigma: float, steps: int,
                                                      delta: float) -> None:
    # composing Gaussians is a Gaussian with μ = sqrt(steps) / σ: the PLD is near exact
    exact = _gaussian_epsilon(math.sqrt(steps) / sigma, delta)
    pld = pld_epsilon(sigma, steps, delta)
    assert pld is not None
    assert exact <= pld <= exact * 1.002 + 2e-3


def test_pld_epsilon_has_no_figure_below_a_noise_multiplier_of_0_3() -> None:
    assert pld_epsilon(0.2999, 1, 1e-5) is None
    assert pld_epsilon(0.3, 1, 1e-3) is not None


# ------------------------------------------------------------------- DP settings
def test_dp_defaults() -> None:
    cfg = DP(epsilon=2.0)
    assert cfg.model_dump() == {
        "epsilon": 2.0, "delta": 1e-6, "max_events_per_person": 64, "max_value": 1.0,
        "factor_norm": 1.0, "weight_budget": None, "items": "declared",
        "selection_share": 0.1, "grid_slack": 1e-3, "randomness": "os-csprng"}


@pytest.mark.parametrize("kwargs", [
    {"delta": 0.0}, {"delta": 0.999}, {"selection_share": 1e-9}, {"selection_share": 0.999},
    {"grid_slack": 0.5}, {"grid_slack": 1e-12}, {"items": "select"}, {"weight_budget": 4.0},
    {"randomness": "os-csprng"}, {"max_value": 1e-9}, {"factor_norm": 3.0},
    {"max_events_per_person": 1},
])
def test_dp_accepts_the_edges_of_each_range(kwargs: dict[str, object]) -> None:
    cfg = DP(epsilon=1.0, **kwargs)
    for name, value in kwargs.items():
        assert getattr(cfg, name) == value


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"epsilon": 0.0}, "epsilon"), ({"epsilon": -1}, "epsilon"),
    ({"delta": 1.0}, "delta"), ({"delta": -1e-9}, "delta"),
    ({"selection_share": 0.0}, "selection_share"), ({"selection_share": 1.0}, "selection_share"),
    ({"grid_slack": 0.0}, "grid_slack"), ({"grid_slack": 0.5000001}, "grid_slack"),
    ({"items": "all"}, "items"), ({"max_events_per_person": 0}, "max_events_per_person"),
    ({"max_value": 0.0}, "max_value"), ({"factor_norm": -1.0}, "factor_norm"),
    ({"weight_budget": 0.0}, "weight_budget"), ({"randomness": "dev-urandom"}, "randomness"),
    ({"unknown": 3}, "unknown"),
])
def test_dp_refuses_each_setting_out_of_range_naming_it(kwargs: dict[str, object],
                                                        field: str) -> None:
    base = {"epsilon": 1.0}
    with pytest.raises(ValidationError) as info:
        DP(**{**base, **kwargs})
    assert info.value.code == "validation_error"
    assert str(info.value).startswith(f"invalid DP setting {field}: ")
    assert str(info.value).endswith(
        "; fix the argument and retry, e.g. DP(epsilon=1.0, delta=1e-6)")
    (error,) = info.value.errors
    assert error["row"] is None
    assert error["field"] == field
    assert error["input"] == repr(kwargs[field])
    assert f"(got {kwargs[field]!r})" in str(info.value)
    assert error["message"] and error["message"] in str(info.value)


def test_dp_refuses_an_infinite_epsilon_as_a_setting_of_the_whole() -> None:
    with pytest.raises(ValidationError) as info:
        DP(epsilon=math.inf)
    assert info.value.code == "validation_error"
    assert str(info.value).startswith("invalid DP setting settings: ")
    assert "epsilon must be finite" in str(info.value)
    (error,) = info.value.errors
    assert (error["row"], error["field"]) == (None, "")


def test_dp_lists_every_bad_setting_and_cuts_long_inputs() -> None:
    with pytest.raises(ValidationError) as info:
        DP(epsilon=-1.0, delta=2.0, items="x" * 200)
    assert [e["field"] for e in info.value.errors] == ["epsilon", "delta", "items"]
    assert info.value.errors[2]["input"] == repr("x" * 200)[:80]
    assert len(info.value.errors[2]["input"]) == 80


def test_dp_validated_and_model_validate_raise_persona_errors() -> None:
    assert DP.validated(epsilon=2.0, delta=1e-5) == DP(epsilon=2.0, delta=1e-5)
    assert DP.model_validate({"epsilon": 2.0}) == DP(epsilon=2.0)
    with pytest.raises(ValidationError) as info:
        DP.validated(epsilon=-1)
    assert info.value.errors[0]["field"] == "epsilon"
    with pytest.raises(ValidationError) as info:
        DP.model_validate({"epsilon": "abc"})
    assert info.value.code == "validation_error"
    assert info.value.errors[0]["field"] == "epsilon"
    assert str(info.value).startswith("invalid DP setting epsilon: ")
    assert str(info.value).count("invalid DP setting") == 1
    with pytest.raises(ValidationError) as info:
        DP.model_validate({"epsilon": math.inf})
    assert str(info.value).startswith("invalid DP setting settings: ")
    assert str(info.value).count("invalid DP setting") == 1
    with pytest.raises(ValidationError) as info:
        DP.model_validate(3)
    assert info.value.code == "validation_error"
    assert str(info.value).startswith("invalid DP setting settings: ")


def test_dp_model_validate_passes_pydantics_options_on() -> None:
    from types import SimpleNamespace

    settings = SimpleNamespace(epsilon=2.0, delta=1e-5)
    assert DP.model_validate(settings, from_attributes=True) == DP(epsilon=2.0, delta=1e-5)
    with pytest.raises(ValidationError, match="valid dictionary or instance of DP"):
        DP.model_validate(settings)
    # an error pydantic gives no context to
    with pytest.raises(ValidationError, match="invalid DP setting settings: ") as info:
        DP.model_validate(3, from_attributes=True)
    assert info.value.code == "validation_error"


def test_dp_is_frozen() -> None:
    cfg = DP(epsilon=1.0)
    with pytest.raises(ValueError, match="frozen"):
        cfg.epsilon = 2.0  # type: ignore[misc]


@pytest.mark.parametrize("share", [0.25, 0.5, 0.1])
def test_split_shares_epsilon_and_delta_and_keeps_the_bounds(share: float) -> None:
    cfg = DP(epsilon=2.0, delta=1e-5, max_events_per_person=7, grid_slack=0.01)
    first, rest = cfg.split(share)
    assert (first.epsilon, first.delta) == (2.0 * share, 1e-5 * share)
    assert (rest.epsilon, rest.delta) == (2.0 * (1 - share), 1e-5 * (1 - share))
    for part in (first, rest):
        assert (part.max_events_per_person, part.grid_slack) == (7, 0.01)


def test_require_delta() -> None:
    assert DP(epsilon=1.0, delta=1e-7).require_delta() == 1e-7
    assert DP(epsilon=1.0, delta=5e-324).require_delta() == 5e-324
    with pytest.raises(ValidationError, match="delta = 0") as info:
        DP(epsilon=1.0, delta=0.0).require_delta()
    assert info.value.code == "validation_error"


# ------------------------------------------------------------------- Gaussian plans
def _check_plan(plan: GaussianPlan, cfg: DP, sens: float, steps: int, size: int,
                rho_target: float) -> None:
    k = grid_for(sens, size, cfg.grid_slack)
    assert (plan.k, plan.sensitivity, plan.size, plan.steps) == (k, sens, size, steps)
    assert plan.delta == cfg.delta
    assert plan.scale == math.ldexp(plan.grid_scale, k)
    assert plan.grid_scale == plan.scale / 2.0**k
    assert plan.rho_per_step == gaussian_rho(plan.scale, sens, size, k)
    assert plan.rho == steps * plan.rho_per_step
    assert plan.epsilon == zcdp_to_epsilon(plan.rho, cfg.delta)
    assert plan.rho <= rho_target
    # the smallest scale that fits: one grid step less noise would not
    if plan.grid_scale > 1:
        less = math.ldexp(plan.grid_scale - 1, k)
        assert steps * gaussian_rho(less, sens, size, k) > rho_target


@pytest.mark.parametrize(("eps", "steps", "size", "sens"), [
    (1.0, 1, 1, 1.0), (2.0, 7, 30, 0.5), (0.3, 3, 1, 4.0), (50.0, 1, 1, 1.0),
])
def test_gaussian_plan_fields(eps: float, steps: int, size: int, sens: float) -> None:
    cfg = DP(epsilon=eps, delta=1e-6)
    plan = cfg.gaussian_plan(sensitivity=sens, steps=steps, size=size)
    _check_plan(plan, cfg, sens, steps, size, rho_budget(eps, 1e-6))
    assert plan.epsilon <= eps


def test_gaussian_plan_for_a_share_of_epsilon_or_of_rho() -> None:
    cfg = DP(epsilon=4.0, delta=1e-6)
    by_eps = cfg.gaussian_plan(sensitivity=1.0, steps=2, epsilon=1.0)
    _check_plan(by_eps, cfg, 1.0, 2, 1, rho_budget(1.0, 1e-6))
    assert by_eps == DP(epsilon=1.0, delta=1e-6).gaussian_plan(sensitivity=1.0, steps=2)
    by_rho = cfg.gaussian_plan(sensitivity=1.0, steps=2, rho=0.01)
    _check_plan(by_rho, cfg, 1.0, 2, 1, 0.01)
    assert by_rho.rho > 0.0099  # tight: the grid is fine
    # rho wins over epsilon when both are given
    assert cfg.gaussian_plan(sensitivity=1.0, steps=2, epsilon=1.0, rho=0.01) == by_rho


def test_gaussian_plan_of_almost_no_noise_is_one_grid_step() -> None:
    cfg = DP(epsilon=1.0, delta=1e-6, grid_slack=0.5)  # grid 2^-1 for sensitivity 1
    plan = cfg.gaussian_plan(sensitivity=1.0, rho=1e6)
    assert (plan.k, plan.grid_scale, plan.scale) == (-1, 1, 0.5)
    assert plan.rho_per_step == gaussian_rho(0.5, 1.0, 1, -1)
    # exactly what one grid step costs: one step, not two
    exact = gaussian_rho(0.5, 1.0, 1, -1)
    assert cfg.gaussian_plan(sensitivity=1.0, rho=exact).grid_scale == 1
    assert cfg.gaussian_plan(sensitivity=1.0, rho=math.nextafter(exact, 0)).grid_scale == 2


# the u where the search's float first guess lands one step above (89, 178; 25, 50, 100)
# or below (2, 3, 6; 2, 5, 8) the answer, and a few where it is right
@pytest.mark.parametrize(("sens", "size", "steps", "slack", "units"), [
    (1.0, 1, 1, 1e-3, (2, 3, 5, 6, 10, 89, 178)),
    (0.7, 5, 3, 0.1, (2, 5, 7, 8, 25, 50, 100)),
    (0.7, 7, 1, 0.5, (1,)),  # the first guess is 2 where 1 grid step is the answer
])
def test_gaussian_plan_lands_on_the_grid_step_that_costs_exactly_the_budget(
    sens: float, size: int, steps: int, slack: float, units: tuple[int, ...],
) -> None:
    """A budget equal to what ``u`` grid steps cost gets ``u`` steps; one ulp less gets
    ``u + 1``: the search starts from a float estimate and steps to the exact answer, on
    either side of it."""
    cfg = DP(epsilon=1.0, delta=1e-6, grid_slack=slack)
    k = grid_for(sens, size, slack)
    for u in units:
        exact = steps * gaussian_rho(math.ldexp(u, k), sens, size, k)
        assert cfg.gaussian_plan(sens, steps, size, rho=exact).grid_scale == u
        below = math.nextafter(exact, 0.0)
        assert cfg.gaussian_plan(sens, steps, size, rho=below).grid_scale == u + 1


def test_gaussian_plan_defaults_to_one_release_of_one_value() -> None:
    cfg = DP(epsilon=1.0, delta=1e-6)
    plan = cfg.gaussian_plan(sensitivity=2.0)
    assert (plan.steps, plan.size) == (1, 1)
    assert plan == cfg.gaussian_plan(2.0, 1, 1)


def test_gaussian_plan_takes_numbers_of_any_type() -> None:
    cfg = DP(epsilon=1.0, delta=1e-6)
    assert cfg.gaussian_plan(sensitivity=1, steps=2.0, size=3.0) == cfg.gaussian_plan(  # type: ignore[arg-type]
        sensitivity=1.0, steps=2, size=3)


def _rho_for_units(units: float, sens: float = 1.0, slack: float = 0.5) -> float:
    """The ρ whose first guess in the calibration is ``units`` grid steps (size 1, 1 step)."""
    k = grid_for(sens, 1, slack)
    eff = grid_sensitivity(sens, 1, k)
    return (eff / math.ldexp(units, k)) ** 2 / 2


def test_gaussian_plan_refuses_more_than_2_to_the_40_grid_steps() -> None:
    cfg = DP(epsilon=1.0, delta=1e-6, grid_slack=0.5)
    plan = cfg.gaussian_plan(sensitivity=1.0, rho=_rho_for_units(2**40 - 0.5))
    assert plan.grid_scale == 2**40
    with pytest.raises(ValidationError, match="no noise scale") as info:
        cfg.gaussian_plan(sensitivity=1.0, rho=_rho_for_units(2**40 + 0.5))
    assert info.value.code == "validation_error"
    # ten million releases within ε = 10^-6 would each need more noise than that
    with pytest.raises(ValidationError, match="raise epsilon"):
        DP(epsilon=1e-6, delta=1e-6).gaussian_plan(sensitivity=1.0, steps=10**7)


def test_gaussian_plan_needs_delta() -> None:
    with pytest.raises(ValidationError, match="delta = 0") as info:
        DP(epsilon=1.0, delta=0.0).gaussian_plan(sensitivity=1.0)
    assert info.value.code == "validation_error"


# ------------------------------------------------------------------- Laplace calibration
@pytest.mark.parametrize(("eps", "sens", "size", "slack"), [
    (1.0, 5.0, 100, 1e-3), (0.5, 1.0, 1, 1e-3), (3.0, 2.0, 10, 0.25), (1e-3, 1.0, 1, 1e-3),
    (100.0, 1.0, 1, 0.5), (2.0, 1e6, 1, 1e-3),  # a coarse grid: 2^9
])
def test_laplace_scale_is_the_smallest_grid_multiple_within_epsilon(
    eps: float, sens: float, size: int, slack: float,
) -> None:
    cfg = DP(epsilon=eps, delta=0.0, grid_slack=slack)
    scale, k, spent = cfg.laplace_scale(sens, size=size)
    assert k == grid_for(sens, size * size, slack)
    assert spent == laplace_epsilon(scale, sens, size, k) <= eps
    units = math.ldexp(scale, -k)
    assert units == int(units) >= 1
    if units > 1:
        assert laplace_epsilon(math.ldexp(units - 1, k), sens, size, k) > eps
    assert cfg.laplace_scale(float(sens), size=size) == cfg.laplace_scale(int(sens) or sens,
                                                                          size=float(size))


def test_laplace_scale_defaults_to_one_value() -> None:
    cfg = DP(epsilon=1.0, delta=0.0)
    assert cfg.laplace_scale(3.0) == cfg.laplace_scale(3.0, size=1)
    assert cfg.laplace_scale(3.0) != cfg.laplace_scale(3.0, size=2)


@pytest.mark.parametrize(("sens", "size", "slack"), [(1.0, 1, 1e-3), (2.0, 3, 0.1)])
def test_laplace_scale_lands_on_the_grid_step_that_costs_exactly_epsilon(
    sens: float, size: int, slack: float,
) -> None:
    k = grid_for(sens, size * size, slack)
    for u in (1, 2, 3, 7, 100, 1001):
        exact = laplace_epsilon(math.ldexp(u, k), sens, size, k)
        cfg = DP(epsilon=exact, delta=0.0, grid_slack=slack)
        assert cfg.laplace_scale(sens, size) == (math.ldexp(u, k), k, exact)
        over = DP(epsilon=math.nextafter(exact, 0.0), delta=0.0, grid_slack=slack)
        assert over.laplace_scale(sens, size)[0] == math.ldexp(u + 1, k)


# ------------------------------------------------------------------- the accountant
def test_accountant_records_each_release_in_full() -> None:
    acc = ZCDPAccountant()
    rho = acc.gaussian("als", scale=2.0, sensitivity=1.5, size=9, k=-3, times=4)
    assert rho == 4 * gaussian_rho(2.0, 1.5, 9, -3)
    eps = acc.laplace("counts", scale=3.0, sensitivity=2.0, size=5, k=-2, times=3)
    assert eps == 3 * laplace_epsilon(3.0, 2.0, 5, -2)
    assert acc.releases == [
        {"name": "als", "kind": "gaussian", "scale": 2.0, "k": -3, "sensitivity": 1.5,
         "size": 9, "times": 4, "rho": rho},
        {"name": "counts", "kind": "laplace", "scale": 3.0, "k": -2, "sensitivity": 2.0,
         "size": 5, "times": 3, "epsilon": eps},
    ]


def test_accountant_defaults_are_one_value_once_on_the_finest_grid() -> None:
    acc = ZCDPAccountant()
    assert acc.gaussian("g", scale=2.0, sensitivity=1.0) == 0.125
    assert acc.laplace("l", scale=4.0, sensitivity=1.0) == 0.25
    assert [(r["size"], r["k"], r["times"]) for r in acc.releases] == [(1, -1074, 1)] * 2


def test_an_empty_accountant_spent_nothing() -> None:
    acc = ZCDPAccountant()
    assert acc.pure_epsilon == 0
    assert acc.rho == 0.0
    assert acc.epsilon(0.0) == 0
    assert acc.epsilon(1e-6) == 0.0


def test_laplace_releases_convert_to_zcdp_per_release() -> None:
    acc = ZCDPAccountant()
    acc.laplace("a", scale=2.0, sensitivity=1.0, times=4)  # ε = 0.5 each
    acc.laplace("b", scale=1.0, sensitivity=1.0)  # ε = 1
    assert acc.pure_epsilon == 3.0
    # ρ = ε²/2 per release (OpenDP's make_pureDP_to_zCDP), summed: 4 · 0.125 + 0.5
    assert acc.rho == 4 * 0.5**2 / 2 + 1.0**2 / 2 == 1.0
    theirs = dp.c.make_pureDP_to_zCDP(dp.m.make_laplace(*_scalar(), scale=2.0)).map(1.0)
    assert theirs == 0.5**2 / 2


def test_epsilon_of_pure_releases_is_the_smaller_of_the_sum_and_the_conversion() -> None:
    few = ZCDPAccountant()
    few.laplace("a", scale=10.0, sensitivity=1.0)  # ε = 0.1: the sum is tighter
    assert few.epsilon(0.0) == 0.1
    assert few.epsilon(1e-6) == 0.1 < zcdp_to_epsilon(few.rho, 1e-6)
    many = ZCDPAccountant()
    many.laplace("a", scale=10.0, sensitivity=1.0, times=1000)  # the conversion is tighter
    assert many.pure_epsilon == pytest.approx(100.0)
    assert many.epsilon(1e-6) == zcdp_to_epsilon(many.rho, 1e-6) < 100.0


def test_epsilon_of_mixed_releases_is_the_conversion_and_needs_delta() -> None:
    acc = ZCDPAccountant()
    acc.laplace("a", scale=10.0, sensitivity=1.0)
    acc.gaussian("g", scale=4.0, sensitivity=1.0, times=2)
    assert acc.pure_epsilon is None
    assert acc.rho == 0.1**2 / 2 + 2 * (1 / 4.0) ** 2 / 2
    assert acc.epsilon(1e-6) == zcdp_to_epsilon(acc.rho, 1e-6)
    with pytest.raises(ValueError, match="delta must be in"):
        acc.epsilon(0.0)
    gaussian_only = ZCDPAccountant()
    gaussian_only.gaussian("g", scale=4.0, sensitivity=1.0)
    assert gaussian_only.pure_epsilon is None
    assert gaussian_only.epsilon(1e-6) == zcdp_to_epsilon(1 / 32, 1e-6)
