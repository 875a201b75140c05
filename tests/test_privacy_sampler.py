"""The sampler draws exactly OpenDP's distributions: goodness of fit against the exact PMF,
the exact slow path on its own, agreement with OpenDP's own samples, and grid rounding."""

from __future__ import annotations

import inspect
import math
import os
from fractions import Fraction

import numpy as np
import opendp.prelude as dp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from persona.errors import ValidationError
from persona.privacy import _sampler
from persona.privacy.sampler import (
    SeededBits,
    discrete_gaussian,
    discrete_gaussian_pmf,
    discrete_laplace,
    discrete_laplace_pmf,
    gaussian_on_grid,
    laplace_on_grid,
    round_to_grid,
)

P_FLOOR = 1e-4  # fixed p-value floor; the seeds below are fixed, so the tests are reproducible


def _chi2_pvalue(x: np.ndarray, pmf) -> float:
    lo, hi = int(x.min()), int(x.max())
    support = np.arange(lo, hi + 1)
    observed = np.bincount(x - lo, minlength=support.size)
    expected = pmf(support) * x.size
    keep = expected >= 5
    obs = np.r_[observed[keep], observed[~keep].sum()]
    exp = np.r_[expected[keep], x.size - expected[keep].sum()]
    if exp[-1] < 5:  # fold a thin tail bin into the largest one
        obs, exp = obs[:-1].copy(), exp[:-1].copy()
        obs[np.argmax(exp)] += observed[~keep].sum()
        exp[np.argmax(exp)] += x.size - expected[keep].sum()
    return float(stats.chisquare(obs, exp).pvalue)


@pytest.mark.parametrize("scale", [0.3, 1, 2.5, Fraction(7, 3), 17, 1000.5])
def test_discrete_gaussian_matches_exact_pmf(scale) -> None:
    x = discrete_gaussian(scale, 300_000, bits=SeededBits(11))
    assert _chi2_pvalue(x, lambda s: discrete_gaussian_pmf(float(scale), s)) > P_FLOOR


@pytest.mark.parametrize("scale", [0.3, 1, 2.5, Fraction(7, 3), 17, 1000.5])
def test_discrete_laplace_matches_exact_pmf(scale) -> None:
    x = discrete_laplace(scale, 300_000, bits=SeededBits(12))
    assert _chi2_pvalue(x, lambda s: discrete_laplace_pmf(float(scale), s)) > P_FLOOR


def test_a_wrong_scale_is_rejected_by_the_same_test() -> None:
    """The goodness-of-fit test has power: scale 2.5 is not scale 2.6."""
    x = discrete_gaussian(2.5, 300_000, bits=SeededBits(13))
    assert _chi2_pvalue(x, lambda s: discrete_gaussian_pmf(2.6, s)) < P_FLOOR


def test_exact_slow_path_alone_has_the_right_distribution(monkeypatch) -> None:
    """Widen the fast path's margin so that a large share of decisions go to the exact
    rational fallback; the distribution must not change."""
    monkeypatch.setattr(_sampler, "_MARGIN", 2.0**-5)
    x = discrete_gaussian(2.5, 4_000, bits=SeededBits(14))
    y = discrete_laplace(1.5, 4_000, bits=SeededBits(15))
    assert _chi2_pvalue(x, lambda s: discrete_gaussian_pmf(2.5, s)) > P_FLOOR
    assert _chi2_pvalue(y, lambda s: discrete_laplace_pmf(1.5, s)) > P_FLOOR


@pytest.mark.parametrize("y", [Fraction(0), Fraction(1, 3), Fraction(1), Fraction(47, 7),
                               Fraction(40)])
def test_rational_exp_brackets_contain_exp(y: Fraction) -> None:
    lo, hi = _sampler._exp_neg_bounds(y, 100)
    assert lo <= hi
    assert float(lo) <= math.exp(-float(y)) * (1 + 1e-15)
    assert float(hi) >= math.exp(-float(y)) * (1 - 1e-15)
    assert (hi - lo) <= Fraction(1, 2**90) * max(hi, Fraction(1, 2**200))


def _opendp_int_samples(kind: str, scale: float, n: int) -> np.ndarray:
    dp.enable_features("contrib")
    space = dp.vector_domain(dp.atom_domain(T=int))
    if kind == "gaussian":
        meas = dp.m.make_gaussian(space, dp.l2_distance(T=int), scale=scale)
    else:
        meas = dp.m.make_laplace(space, dp.l1_distance(T=int), scale=scale)
    return np.asarray(meas([0] * n), dtype=np.int64)


@pytest.mark.parametrize(("kind", "scale"), [("gaussian", 3.0), ("gaussian", 0.7),
                                             ("laplace", 2.0)])
def test_same_distribution_as_opendp_samples(kind: str, scale: float) -> None:
    n = 8_000
    theirs = _opendp_int_samples(kind, scale, n)
    sampler = discrete_gaussian if kind == "gaussian" else discrete_laplace
    ours = sampler(scale, n, bits=SeededBits(16))
    lo = min(theirs.min(), ours.min())
    support = np.arange(lo, max(theirs.max(), ours.max()) + 1)
    table = np.vstack([np.bincount(ours - lo, minlength=support.size),
                       np.bincount(theirs - lo, minlength=support.size)])
    pooled = table.sum(axis=0)
    keep = pooled >= 10
    table = np.c_[table[:, keep], table[:, ~keep].sum(axis=1)]
    table = table[:, table.sum(axis=0) > 0]
    assert stats.chi2_contingency(table).pvalue > P_FLOOR
    assert stats.ks_2samp(ours, theirs, method="asymp").pvalue > P_FLOOR


def test_zero_scale_is_no_noise() -> None:
    assert not discrete_gaussian(0, 10).any()
    assert not discrete_laplace(0.0, 10).any()


def test_bad_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        discrete_gaussian(-1.0, 3)
    with pytest.raises(ValueError, match="finite"):
        discrete_laplace(float("nan"), 3)


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.integers(-30, 5))
def test_round_to_grid_is_nearest_multiple_ties_up(x: float, k: int) -> None:
    idx = int(round_to_grid([x], k)[0])
    exact = Fraction(x) / Fraction(2) ** k
    assert abs(exact - idx) <= Fraction(1, 2)
    if abs(exact - idx) == Fraction(1, 2):
        assert idx > exact  # ties go up, as OpenDP's find_nearest_multiple_of_2k


def test_grid_release_lands_on_the_grid_and_is_centred() -> None:
    x = np.full(200_000, 0.3)
    out = gaussian_on_grid(x, scale=0.5, k=-6, bits=SeededBits(17))
    steps = np.ldexp(out, 6)
    assert np.array_equal(steps, np.round(steps))
    assert abs(out.mean() - 0.296875) < 0.01  # 0.3 rounds to 19/64 = 0.296875
    assert abs(out.std() - 0.5) < 0.01
    lap = laplace_on_grid(np.zeros(5), scale=1.0, k=-3, bits=SeededBits(18))
    assert np.array_equal(np.ldexp(lap, 3), np.round(np.ldexp(lap, 3)))


def test_noise_comes_from_the_os_by_default(monkeypatch) -> None:
    calls: list[int] = []

    def spy(n: int) -> bytes:
        calls.append(n)
        return os.urandom(n)

    monkeypatch.setattr(_sampler, "OS_BITS", spy)
    discrete_gaussian(2.0, 10, bits=_sampler.OS_BITS)
    assert calls
    # through the signature, so a wrapper (a decorator, mutmut's trampoline) keeps it readable
    assert inspect.signature(discrete_gaussian).parameters["bits"].default is os.urandom


def _no_bits(n: int) -> bytes:
    raise AssertionError("a refused call must not draw randomness")


@pytest.mark.parametrize("sampler", [discrete_gaussian, discrete_laplace])
@pytest.mark.parametrize("scale", [-1.0, -Fraction(1, 3), -(2.0**-1074), float("nan"),
                                   float("inf"), float("-inf"), 2**40 + 1, 2.0**40 * (1 + 2**-52),
                                   Fraction(2**80 + 1, 2**40), True, False, "2.5", None, 1j])
def test_a_bad_scale_is_refused_with_the_validation_code(sampler, scale) -> None:
    with pytest.raises(ValidationError) as info:
        sampler(scale, 3, bits=_no_bits)
    assert info.value.code == "validation_error"
    assert str(info.value).startswith("scale must be ")  # names the argument and the rule


@pytest.mark.parametrize("sampler", [discrete_gaussian, discrete_laplace])
@pytest.mark.parametrize("size", [-1, 2.5, True, "3", None, np.float64(3.0)])
def test_a_bad_size_is_refused_with_the_validation_code(sampler, size) -> None:
    for scale in (0, 2.0):
        with pytest.raises(ValidationError) as info:
            sampler(scale, size, bits=_no_bits)
        assert info.value.code == "validation_error"
        assert str(info.value).startswith("size must be ")


@pytest.mark.parametrize("sampler", [discrete_gaussian, discrete_laplace])
def test_the_largest_scale_and_the_smallest_sizes_are_accepted(sampler) -> None:
    for scale in (2**40, 2.0**40, Fraction(2**40), np.float64(2.5), np.int64(3), 2.0**-1074,
                  Fraction(1, 10**400)):
        out = sampler(scale, 5, bits=SeededBits(3))
        assert out.shape == (5,)
        assert out.dtype == np.int64
    for scale in (0, 0.0, -0.0, Fraction(0), 2.5):
        for size in (0, np.int64(2), 1):
            out = sampler(scale, size, bits=SeededBits(4) if scale else _no_bits)
            assert out.shape == (int(size),)
            assert out.dtype == np.int64
            if not scale:
                assert not out.any()


@pytest.mark.parametrize("x", [[np.nan], [np.inf], [-np.inf], [2.0**62], [-(2.0**62)],
                               [0.0, 2.0**70], [2**70], [[1.0], [-(2**80)]]])
def test_round_to_grid_refuses_values_off_its_range_with_the_validation_code(x) -> None:
    with pytest.raises(ValidationError) as info:
        round_to_grid(x, 0)
    assert info.value.code == "validation_error"
    assert "2**62 grid steps" in str(info.value)  # the message says what is allowed
    with pytest.raises(ValidationError):
        gaussian_on_grid(x, 1.0, 0, bits=_no_bits)
    with pytest.raises(ValidationError):
        laplace_on_grid(x, 1.0, 0, bits=_no_bits)


def test_round_to_grid_at_the_edges_of_its_range() -> None:
    below = np.nextafter(2.0**62, 0)
    got = round_to_grid([below, -below, 2.0**61 * 3 / 2, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5], 0)
    assert got.dtype == np.int64
    assert got.tolist() == [int(below), -int(below), 3 * 2**60, 1, 0, 2, -1, 3, -2]
    # k shifts the grid: 2^3 = 8 and 2^-2 = 0.25
    assert round_to_grid([12.0, 11.9, -12.0, 100.0], 3).tolist() == [2, 1, -1, 13]
    assert round_to_grid([0.125, 0.124, -0.125, 0.3], -2).tolist() == [1, 0, 0, 1]
