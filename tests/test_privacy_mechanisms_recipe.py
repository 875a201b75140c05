"""Each private release is exactly its documented recipe, given the same random bytes.

The statistical tests (test_privacy_bounding_mechanisms.py) and the audits show a release is
close and private; these pin it down draw for draw: bound the data, sum it exactly, release
it through the named mechanism with the planned scale and grid, and pass the documented
settings to every step of DP-ALS. A mechanism swapped, a scale or grid off, a setting
dropped on the way changes the output and fails here.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse as sp

from persona.errors import ValidationError
from persona.privacy import (
    DP,
    ALSTimings,
    bound_contributions,
    plan_cooccurrence,
    plan_item_counts,
    private_als_item_factors,
    private_cooccurrence,
    private_item_counts,
)
from persona.privacy import _mechanisms as mech
from persona.privacy._exact import ExactSum
from persona.privacy.sampler import (
    SeededBits,
    discrete_gaussian,
    discrete_laplace,
    gaussian_on_grid,
    laplace_on_grid,
)

# one person over the cap of 3 (so sampling draws bits first), values above the bound of 2
# (clipped) and off the 2^-20 grid (truncated)
X = sp.csr_matrix(np.array([
    [0.3, 2.5, 0.0, 1.0, 0.7, 0.2],
    [0.0, 1.1, 0.0, 0.0, 0.0, 3.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [1.9, 0.0, 0.6, 0.0, 0.0, 0.0],
]))


def _refused(excinfo: pytest.ExceptionInfo[ValidationError]) -> None:
    assert excinfo.value.code == "validation_error"
    assert isinstance(excinfo.value.message, str) and excinfo.value.message


@pytest.mark.parametrize(("delta", "mechanism", "kind"), [
    (1e-6, None, "gaussian"), (0.0, None, "laplace"), (1e-6, "laplace", "laplace"),
])
def test_item_counts_are_the_named_mechanism_on_the_exact_bounded_totals(
    delta: float, mechanism: str | None, kind: str,
) -> None:
    cfg = DP(epsilon=1.0, delta=delta, max_events_per_person=3, max_value=2.0)
    counts, spent = private_item_counts(X, cfg, mechanism=mechanism, bits=SeededBits(7))
    assert spent == plan_item_counts(X.shape[1], cfg, mechanism)
    bits = SeededBits(7)
    B = bound_contributions(X, 3, 2.0, bits=bits)
    totals = np.zeros(X.shape[1], dtype=np.int64)
    np.add.at(totals, B.indices, np.floor(np.ldexp(B.data, 20)).astype(np.int64))
    release = laplace_on_grid if kind == "laplace" else gaussian_on_grid
    expected = release(np.ldexp(totals.astype(np.float64), -20), spent.noise["scale"],
                       int(spent.noise["k"]), bits=bits)
    assert np.array_equal(counts, expected)


def test_cooccurrence_is_gaussian_noise_on_the_exact_upper_triangle() -> None:
    cfg = DP(epsilon=2.0, delta=1e-6, max_events_per_person=3)
    C, spent = private_cooccurrence(X, cfg, bits=SeededBits(3))
    assert spent == plan_cooccurrence(X.shape[1], cfg)
    bits = SeededBits(3)
    B = bound_contributions(X, 3, 1.0, bits=bits)
    B.data[:] = 1.0
    iu = np.triu_indices(X.shape[1])
    upper = gaussian_on_grid((B.T @ B).toarray()[iu], spent.noise["scale"],
                             int(spent.noise["k"]), bits=bits)
    expected = np.zeros((6, 6))
    expected[iu] = upper
    expected[np.tril_indices(6, -1)] = expected.T[np.tril_indices(6, -1)]
    assert np.array_equal(C, expected)


@pytest.mark.parametrize("laplace", [False, True])
def test_release_of_sums_beyond_float64_rounds_and_adds_the_same_noise(laplace: bool) -> None:
    sums = ExactSum()
    sums.add(np.array([2**60 + 3, 5 * 2**38 + 2**37, -(2**45)], dtype=np.int64))
    assert sums.as_float(2, 36) is None  # beyond float64: released in integers
    scale, k = 3.5 * 2.0**36, 36
    out = mech._release(sums, 2, scale, k, SeededBits(5), laplace=laplace)
    # index on the grid 2^(2 + 36), nearest with ties up
    idx = np.array([2**22, 6, -(2**7)], dtype=object)
    if laplace:
        z = discrete_laplace(Fraction(scale) / Fraction(2) ** k, 3, bits=SeededBits(5))
    else:
        z = discrete_gaussian(math.ldexp(scale, -k), 3, bits=SeededBits(5))
    assert out.tolist() == [math.ldexp(float(i + int(n)), k) for i, n in zip(idx, z, strict=True)]


def test_release_within_float64_goes_through_the_grid_mechanisms() -> None:
    sums = ExactSum()
    sums.add(np.array([7 * 2**20, 3 * 2**19, 0], dtype=np.int64))
    out = mech._release(sums, 20, 1.5, -4, SeededBits(9))  # Gaussian unless asked
    assert np.array_equal(out, gaussian_on_grid([7.0, 1.5, 0.0], 1.5, -4, bits=SeededBits(9)))
    out = mech._release(sums, 20, 1.5, -4, SeededBits(9), laplace=True)
    assert np.array_equal(out, laplace_on_grid([7.0, 1.5, 0.0], 1.5, -4, bits=SeededBits(9)))


def test_a_dense_matrix_is_refused_with_a_message() -> None:
    for call in (lambda: private_item_counts(np.ones((2, 2)), DP(epsilon=1.0)),
                 lambda: private_cooccurrence(np.ones((2, 2)), DP(epsilon=1.0))):
        with pytest.raises(ValidationError) as excinfo:
            call()
        _refused(excinfo)


# ---------------------------------------------------------------------------------------------
# DP-ALS: the documented settings reach each step


class Spy:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.real = getattr(mech, name)
        self.calls: list[tuple[tuple, dict]] = []
        monkeypatch.setattr(mech, name, self)

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.real(*args, **kwargs)


def _groups(n: int = 60) -> sp.csr_matrix:
    rng = np.random.default_rng(1)
    dense = (rng.random((n, 8)) < 0.4) * rng.uniform(0.5, 3.0, size=(n, 8))
    dense[0] = 0.0  # someone with no events
    dense[1, 1:] = 0.0  # and someone with one
    dense[1, 0] = 1.0
    return sp.csr_matrix(dense)


@pytest.mark.parametrize(("alpha", "defaults", "budget"), [(0.0, True, 0.7), (0.5, False, 1.5)])
def test_dp_als_hands_each_step_the_documented_settings(
    monkeypatch: pytest.MonkeyPatch, alpha: float, defaults: bool, budget: float,
) -> None:
    spies = {name: Spy(monkeypatch, name)
             for name in ("_als_inputs", "_user_vectors", "_item_statistics", "_item_solve")}
    X = _groups()
    cfg = DP(epsilon=4.0, max_events_per_person=4, max_value=2.0)
    flags = {} if defaults else {"normalize_users": False, "shrinkage": False}
    Y, spent = private_als_item_factors(X, 3, 2, 0.2, alpha, cfg, random_state=4,
                                        noise_regularization=0.5, weight_budget=budget,
                                        bits=SeededBits(0), **flags)
    scale = spent.noise["scale"]
    # person weights min(1, s / sqrt(n_u)), n_u the kept events (0 counts as 1)
    (R, a, weights), _ = spies["_als_inputs"].calls[0]
    kept = R.getnnz(axis=1)
    assert a == alpha and kept[0] == 0 and kept[1] == 1
    assert np.allclose(weights, np.minimum(1.0, budget / np.sqrt(np.maximum(kept, 1))))
    # data-independent start: N(0, 1/d) from random_state
    users = spies["_user_vectors"].calls
    assert len(users) == 2
    start = np.random.default_rng(4).standard_normal((8, 3)) / math.sqrt(3)
    assert np.array_equal(users[0][0][1], start)
    assert users[0][0][2:5] == (0.2, cfg.factor_norm, defaults)
    # the A_j blocks are released (with weights bounded by alpha * max_value) iff alpha > 0
    for args, kwargs in spies["_item_statistics"].calls:
        assert args[4] is (alpha > 0) and kwargs["alpha_value"] == alpha * 2.0
    # every item solve gets ridge = regularization + noise_regularization * σ * sqrt(d)
    for args, _ in spies["_item_solve"].calls:
        n_items, d, with_a, ridge, sigma, shrink, shared = args[1:]
        assert (n_items, d, with_a, sigma, shrink, shared) == (
            8, 3, alpha > 0, scale, defaults, alpha == 0)
        assert ridge == pytest.approx(0.2 + 0.5 * scale * math.sqrt(3), rel=1e-12)
    assert Y.shape == (8, 3)


def test_an_explicit_weight_budget_is_the_one_in_the_settings() -> None:
    X = _groups()
    cfg = DP(epsilon=4.0, max_events_per_person=4)
    args = (X, 3, 2, 0.1, 0.0)
    a, _ = private_als_item_factors(*args, cfg, 0, weight_budget=0.5, bits=SeededBits(2))
    b, _ = private_als_item_factors(*args, DP(epsilon=4.0, max_events_per_person=4,
                                              weight_budget=0.5), 0, bits=SeededBits(2))
    c, _ = private_als_item_factors(*args, cfg, 0, bits=SeededBits(2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_timings_add_up_across_fits() -> None:
    stages = ("bounding", "user_step", "statistics", "sampling", "solves", "accounting")
    tm = ALSTimings(**dict.fromkeys(stages, 1000.0))
    private_als_item_factors(_groups(), 2, 3, 0.1, 0.0, DP(epsilon=2.0), 0,
                             bits=SeededBits(1), timings=tm)
    # every stage added its time (never negative, never a clock reading) to what was there
    for stage in stages:
        assert 1000.0 <= getattr(tm, stage) < 1000.0 + 600.0, stage
    assert tm.total == pytest.approx(sum(getattr(tm, s) for s in stages))


def test_the_shared_solve_is_refused_off_alpha_zero() -> None:
    with pytest.raises(ValidationError) as excinfo:
        mech._dp_als(_groups(), 2, 1, 0.1, 0.5, DP(epsilon=1.0), 0, noise_regularization=1.0,
                     normalize_users=True, shrinkage=True, weight_budget=None,
                     bits=SeededBits(0), timings=None, shared=True)
    _refused(excinfo)


@pytest.mark.parametrize("bad", [math.inf, -0.5, True, math.nan, "0.1"])
@pytest.mark.parametrize("which", ["regularization", "noise_regularization"])
def test_dp_als_refuses_bad_regularization(bad: object, which: str) -> None:
    settings = {"regularization": 0.1, "noise_regularization": 1.0, which: bad}
    with pytest.raises(ValidationError) as excinfo:
        private_als_item_factors(_groups(), 2, 1, settings["regularization"], 0.0,
                                 DP(epsilon=1.0), 0,
                                 noise_regularization=settings["noise_regularization"])
    _refused(excinfo)
