"""zCDP composition of several releases on the same data (``compose_zcdp``) and settings
made from shares of one zCDP budget (``DP.for_rho``): the shares' releases compose to at
most the whole (ε, δ), and a part that is not zCDP is refused rather than miscounted."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persona.errors import ValidationError
from persona.privacy import DP, PrivacySpent, plan_als, plan_item_counts
from persona.privacy.accounting import compose_zcdp, rho_budget, zcdp_to_epsilon


def test_for_rho_keeps_delta_and_bounds_and_plans_within_the_share() -> None:
    whole = DP(epsilon=4.0, delta=1e-6, max_events_per_person=9, weight_budget=3.0)
    rho = rho_budget(4.0, 1e-6)
    part = whole.for_rho(0.25 * rho)
    assert part.delta == whole.delta and part.max_events_per_person == 9
    assert part.weight_budget == 3.0 and part.epsilon < whole.epsilon
    assert zcdp_to_epsilon(0.25 * rho, 1e-6) == pytest.approx(part.epsilon, rel=1e-5)
    spent = plan_item_counts(50, part)
    assert spent.rho <= 0.25 * rho
    assert spent.rho == pytest.approx(0.25 * rho, rel=1e-3)  # the share is used, not wasted


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan, True, "0.1", None])
def test_for_rho_refuses_what_is_no_budget(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        DP(epsilon=1.0, delta=1e-6).for_rho(bad)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"rho must be a positive finite number (a zCDP budget), not {bad!r}")
    assert info.value.errors == [{"row": None, "field": "rho", "message": "invalid"}]


def test_for_rho_refuses_a_budget_with_no_finite_epsilon() -> None:
    with pytest.raises(ValidationError) as info:
        DP(epsilon=1.0, delta=1e-6).for_rho(1e300)
    assert str(info.value) == ("rho = 1e+300 has no finite ε at delta = 1e-06; give a "
                               "smaller rho")
    assert info.value.errors == [{"row": None, "field": "rho", "message": "too large"}]


def test_for_rho_needs_a_delta() -> None:
    with pytest.raises(ValidationError, match="delta"):
        DP(epsilon=1.0, delta=0.0).for_rho(0.01)


@settings(max_examples=40, deadline=None)
@given(eps=st.floats(0.05, 30.0), delta=st.sampled_from([1e-9, 1e-6, 1e-4]),
       shares=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=4))
def test_shares_of_one_budget_compose_to_at_most_the_whole(
        eps: float, delta: float, shares: list[float]) -> None:
    whole = DP(epsilon=eps, delta=delta, max_events_per_person=5)
    rho = rho_budget(eps, delta)
    total = sum(shares)
    parts = [plan_item_counts(20, whole.for_rho(s / total * rho)) for s in shares]
    for s, p in zip(shares, parts, strict=True):
        assert p.rho <= s / total * rho
    spent = compose_zcdp(parts, delta)
    assert spent.rho == pytest.approx(sum(p.rho for p in parts))
    assert spent.epsilon <= eps and spent.delta == delta
    assert spent.epsilon == pytest.approx(zcdp_to_epsilon(spent.rho, delta))


def test_composition_is_tighter_than_adding_epsilons() -> None:
    """Two halves of ρ cost the whole ε together; the same two releases added up by
    basic composition claim more."""
    whole = DP(epsilon=8.0, delta=1e-6, max_events_per_person=8)
    rho = rho_budget(8.0, 1e-6)
    a = plan_item_counts(30, whole.for_rho(rho / 2))
    b = plan_als(30, 4, 2, 0.0, whole.for_rho(rho / 2))
    zcdp = compose_zcdp([a, b], 1e-6)
    basic = PrivacySpent.composed([a, b])
    assert zcdp.epsilon == pytest.approx(8.0, rel=1e-3)
    assert basic.epsilon > 1.3 * zcdp.epsilon and basic.delta == pytest.approx(2e-6)
    assert zcdp.mechanism == "dp-item-counts + dp-als" and zcdp.steps == a.steps + b.steps
    assert zcdp.accounting == ("zCDP composition (ρ added, OpenDP make_zCDP_to_approxDP) of: "
                               f"dp-item-counts: {a.accounting}; dp-als: {b.accounting}")
    assert zcdp.noise["dp-item-counts.scale"] == a.noise["scale"]
    assert zcdp.bounds["dp-als.max_events_per_person"] == 8.0
    assert "zCDP" in zcdp.accounting


def test_pure_and_free_parts_count_as_opendp_converts_them() -> None:
    pure = PrivacySpent(mechanism="dp-laplace", epsilon=0.5, delta=0.0)
    free = PrivacySpent(mechanism="public-features", epsilon=0.0, delta=0.0, rho=0.0)
    gauss = PrivacySpent(mechanism="dp-item-counts", epsilon=1.0, delta=1e-6, rho=0.02)
    spent = compose_zcdp([pure, free, gauss], 1e-6, mechanism="a choice")
    assert spent.rho == pytest.approx(0.5**2 / 2 + 0.02)
    assert spent.mechanism == "a choice"
    nothing = compose_zcdp([free], 1e-6)
    assert nothing.epsilon == 0.0 and nothing.delta == 0.0 and nothing.rho == 0.0


def test_repeated_mechanisms_keep_each_part_s_noise() -> None:
    a = PrivacySpent(mechanism="dp-item-counts", epsilon=1.0, delta=1e-6, rho=0.02,
                     noise={"scale": 3.0})
    b = PrivacySpent(mechanism="dp-item-counts", epsilon=1.0, delta=1e-6, rho=0.02,
                     noise={"scale": 5.0})
    spent = compose_zcdp([a, b], 1e-6)
    assert spent.noise == {"dp-item-counts.scale": 3.0, "dp-item-counts#2.scale": 5.0}


def test_an_approximate_dp_part_is_refused_not_miscounted() -> None:
    """A release with δ > 0 and no ρ (a thresholded selection, or a basic composition) is
    no zCDP release: counting it as ε²/2 would understate it."""
    selection = PrivacySpent(mechanism="dp-item-selection", epsilon=0.1, delta=1e-7)
    with pytest.raises(ValidationError) as info:
        compose_zcdp([selection], 1e-6)
    message = ("dp-item-selection is an (ε, δ) release with no ρ (a thresholded selection or "
               "a basic composition), which zCDP composition cannot count; add it with "
               "PrivacySpent.composed (basic composition) instead")
    assert str(info.value) == message
    assert info.value.errors == [{"row": None, "field": "parts", "message": message}]


@pytest.mark.parametrize("delta", [0.0, 1.0, -1e-6, True, "1e-6"])
def test_compose_needs_a_delta_in_the_open_interval(delta: object) -> None:
    gauss = PrivacySpent(mechanism="dp-item-counts", epsilon=1.0, delta=1e-6, rho=0.02)
    with pytest.raises(ValidationError) as info:
        compose_zcdp([gauss], delta)  # type: ignore[arg-type]
    message = (f"delta must be a number strictly between 0 and 1 (the δ of the composed "
               f"(ε, δ) claim), not {delta!r}")
    assert str(info.value) == message
    assert info.value.errors == [{"row": None, "field": "delta", "message": message}]


def test_compose_refuses_what_is_no_list_of_spends() -> None:
    gauss = PrivacySpent(mechanism="dp-item-counts", epsilon=1.0, delta=1e-6, rho=0.02)
    message = "parts must be a non-empty list of PrivacySpent values, one per release"
    for bad in (["dp-als"], [], "dp-als", iter([gauss]), gauss):
        with pytest.raises(ValidationError) as info:
            compose_zcdp(bad, 1e-6)  # type: ignore[arg-type]
        assert str(info.value) == message
        assert info.value.errors == [{"row": None, "field": "parts", "message": message}]


def test_basic_composition_keeps_the_zcdp_total_when_every_part_has_one() -> None:
    """ε and δ add up (basic composition), and when every part is a zCDP release their ρ
    add up too, so the whole can itself be composed in zCDP (a private item-kNN's head
    counts and co-occurrences, inside a private model choice)."""
    a = PrivacySpent(mechanism="dp-head-counts", epsilon=0.1, delta=1e-7, rho=0.0002)
    b = PrivacySpent(mechanism="dp-cooccurrence", epsilon=0.9, delta=9e-7, rho=0.015)
    both = PrivacySpent.composed([a, b])
    assert both.rho == pytest.approx(0.0152)
    assert both.epsilon == pytest.approx(1.0) and both.delta == pytest.approx(1e-6)
    assert compose_zcdp([both], 1e-6).rho == pytest.approx(0.0152)
    pure = PrivacySpent(mechanism="dp-item-selection", epsilon=0.1, delta=1e-7)
    assert PrivacySpent.composed([pure, b]).rho is None


@pytest.mark.parametrize("delta", [0.0, 1.0, -1e-6])
def test_the_public_conversions_refuse_a_delta_outside_the_open_interval(delta: float) -> None:
    """rho_budget and zcdp_to_epsilon are public (for reviewers): a δ they cannot convert
    at is a caller's error, a PersonaError naming the fix."""
    for call in (lambda: rho_budget(1.0, delta), lambda: zcdp_to_epsilon(0.1, delta)):
        with pytest.raises(ValidationError) as info:
            call()
        assert str(info.value) == (
            f"delta must be in (0, 1) to convert zCDP to (ε, δ), not {delta!r}; zCDP "
            "releases need delta > 0, for example 1e-6")
        assert info.value.errors == [{"row": None, "field": "delta", "message": "invalid"}]
