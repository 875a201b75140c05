"""Privacy cost from public inputs only, and no guard or exception that depends on the data
(issue 16, points 8 and "release on empty data").

* ``plan_x(public inputs) == private_x(X, ...)[1]`` for every shape and configuration;
* every mechanism releases on an empty matrix (no people, or people without entries) with
  the same spent as on data;
* sums are exact for any number of people: the chunked path (many chunks of people) gives
  bit-identical releases to the single-chunk path, and the old people-count guards are gone.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persona.errors import ValidationError
from persona.privacy import (
    DP,
    plan_als,
    plan_cooccurrence,
    plan_item_counts,
    private_als_item_factors,
    private_cooccurrence,
    private_item_counts,
)
from persona.privacy import _exact as exact
from persona.privacy.sampler import SeededBits

CONFIGS = st.builds(
    DP,
    epsilon=st.sampled_from([0.5, 1.0, 4.0]),
    delta=st.sampled_from([1e-6, 1e-5]),
    max_events_per_person=st.integers(1, 6),
    max_value=st.sampled_from([1.0, 2.5]),
)


@st.composite
def matrices(draw: st.DrawFn) -> sp.csr_matrix:
    n_users = draw(st.integers(0, 25))
    n_items = draw(st.integers(1, 7))
    density = draw(st.sampled_from([0.0, 0.3, 0.8]))
    seed = draw(st.integers(0, 2**16))
    X = sp.random(n_users, n_items, density=density, format="csr", random_state=seed)
    X.data = X.data * 3.0
    return X


SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(X=matrices(), cfg=CONFIGS, mechanism=st.sampled_from([None, "gaussian", "laplace"]))
def test_item_counts_spend_is_the_plan(X: sp.csr_matrix, cfg: DP, mechanism: str | None) -> None:
    _, spent = private_item_counts(X, cfg, mechanism=mechanism, bits=SeededBits(1))
    assert spent == plan_item_counts(X.shape[1], cfg, mechanism)


@SETTINGS
@given(X=matrices(), cfg=CONFIGS)
def test_cooccurrence_spend_is_the_plan(X: sp.csr_matrix, cfg: DP) -> None:
    _, spent = private_cooccurrence(X, cfg, bits=SeededBits(2))
    assert spent == plan_cooccurrence(X.shape[1], cfg)


@SETTINGS
@given(X=matrices(), cfg=CONFIGS, factors=st.integers(1, 3), iterations=st.integers(1, 2),
       alpha=st.sampled_from([0.0, 0.5]), weight_budget=st.sampled_from([None, 1.5]))
def test_als_spend_is_the_plan(X: sp.csr_matrix, cfg: DP, factors: int, iterations: int,
                               alpha: float, weight_budget: float | None) -> None:
    Y, spent = private_als_item_factors(X, factors, iterations, 0.1, alpha, cfg, 0,
                                        weight_budget=weight_budget, bits=SeededBits(3))
    assert Y.shape == (X.shape[1], factors)
    assert spent == plan_als(X.shape[1], factors, iterations, alpha, cfg, weight_budget)


def test_plans_refuse_bad_public_inputs_with_a_fix() -> None:
    cfg = DP(epsilon=1.0)
    with pytest.raises(ValidationError, match="declared item catalogue"):
        plan_item_counts(0, cfg)
    with pytest.raises(ValidationError, match="at least 1"):
        plan_als(5, 0, 1, 0.0, cfg)
    with pytest.raises(ValidationError, match="non-negative"):
        plan_als(5, 2, 1, -1.0, cfg)
    with pytest.raises(ValidationError, match="alpha \\* max_value <= 1024"):
        plan_als(5, 2, 1, 2000.0, cfg)
    with pytest.raises(ValidationError, match="mechanism"):
        plan_item_counts(5, cfg, "exponential")
    with pytest.raises(ValidationError, match="max_value"):
        plan_item_counts(5, DP(epsilon=1.0, max_value=2.0**41))
    with pytest.raises(ValidationError, match=r"persona\.DP"):
        plan_cooccurrence(5, {"epsilon": 1.0})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="whole numbers"):
        plan_als(5, None, 1, 0.0, cfg)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="alpha"):
        plan_als(5, 2, 1, "0", cfg)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="weight_budget"):
        plan_als(5, 2, 1, 0.0, cfg, weight_budget=float("inf"))


# --------------------------------------------------------------------------- empty data
CFG = DP(epsilon=2.0, delta=1e-6, max_events_per_person=3)
RELEASES = {
    "counts": lambda X, b: private_item_counts(X, CFG, bits=b),
    "laplace counts": lambda X, b: private_item_counts(X, DP(epsilon=2.0, delta=0.0),
                                                       bits=b),
    "cooccurrence": lambda X, b: private_cooccurrence(X, CFG, bits=b),
    "als": lambda X, b: private_als_item_factors(X, 3, 2, 0.1, 0.0, CFG, 0, bits=b),
    "als alpha": lambda X, b: private_als_item_factors(X, 3, 2, 0.1, 1.0, CFG, 0, bits=b),
}


@pytest.mark.parametrize("name", list(RELEASES))
def test_every_mechanism_releases_noise_alone_on_empty_data(name: str) -> None:
    release = RELEASES[name]
    data = sp.random(40, 6, density=0.4, format="csr", random_state=0)
    out, spent = release(data, SeededBits(4))
    for empty in (sp.csr_matrix((0, 6)), sp.csr_matrix((9, 6))):
        out_empty, spent_empty = release(empty, SeededBits(4))
        assert out_empty.shape == out.shape
        assert np.all(np.isfinite(out_empty))
        assert spent_empty == spent


def test_counts_on_empty_data_are_pure_noise_of_the_planned_scale() -> None:
    cfg = DP(epsilon=1.0, delta=1e-6, max_events_per_person=4)
    noise, spent = private_item_counts(sp.csr_matrix((0, 20_000)), cfg, bits=SeededBits(5))
    scale = spent.noise["scale"]
    assert abs(noise.mean()) < 5 * scale / math.sqrt(noise.size)
    assert noise.std() == pytest.approx(scale, rel=0.03)


# --------------------------------------------------------------------------- exact sums
def test_item_counts_work_where_the_old_people_guard_raised() -> None:
    """The old code raised "too many people for exact sums" once people × max_value reached
    2^32: an exception that depends on the number of people."""
    v = 2.0**22
    X = sp.csr_matrix(np.full((1100, 2), v))  # 1,100 people × 2^22 >= 2^32
    cfg = DP(epsilon=50.0, delta=1e-6, max_events_per_person=2, max_value=v)
    counts, _ = private_item_counts(X, cfg, bits=SeededBits(6))
    assert counts == pytest.approx(np.full(2, 1100 * v), rel=1e-3)


@pytest.mark.slow
def test_als_works_where_the_old_people_guard_raised() -> None:
    """The old DP-ALS raised for n_users · (alpha · max_value + 1) · 2^38 >= 2^62, i.e. from
    16,369 people at alpha · max_value = 1024; the weighted statistics now span two chunks
    of people, summed exactly."""
    n = 17_000
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((np.ones(2 * n), (np.repeat(np.arange(n), 2),
                                        rng.integers(0, 3, 2 * n))), shape=(n, 3))
    cfg = DP(epsilon=4.0, delta=1e-6, max_events_per_person=2)
    Y, spent = private_als_item_factors(X, 2, 1, 0.1, 1024.0, cfg, 0, bits=SeededBits(7))
    assert Y.shape == (3, 2)
    assert np.all(np.isfinite(Y))
    assert spent == plan_als(3, 2, 1, 1024.0, cfg)


@pytest.mark.parametrize("name", list(RELEASES))
def test_many_chunks_of_people_give_the_same_release(name: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    X = sp.random(50, 6, density=0.5, format="csr", random_state=1)
    X.data = X.data * 2
    one, spent = RELEASES[name](X, SeededBits(8))
    monkeypatch.setattr(exact, "MAX_CHUNK_PEOPLE", 3)  # 17 chunks of people
    many, spent_many = RELEASES[name](X, SeededBits(8))
    assert np.array_equal(one, many)
    assert spent_many == spent


def test_small_batches_give_the_same_dp_als(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each person's vector depends on their own row alone, and each item's solve on its
    own statistics: batching people and items differently changes no bit."""
    from persona.privacy import _als

    X = sp.random(80, 9, density=0.4, format="csr", random_state=2)
    X.data = X.data * 4
    cfg = DP(epsilon=4.0, delta=1e-6, max_events_per_person=5)

    def fit() -> np.ndarray:
        return private_als_item_factors(X, 3, 3, 0.1, 0.8, cfg, 0, bits=SeededBits(10))[0]

    whole = fit()
    monkeypatch.setattr(exact, "MAX_CHUNK_PEOPLE", 7)
    monkeypatch.setattr(_als, "_MEMORY_PEOPLE", 2)  # blocks inside each chunk
    monkeypatch.setattr(_als, "_BATCH_VALUES", 2 * 9)  # 2 people or items per solve
    monkeypatch.setattr(_als, "_PADDED_VALUES", 3 * 5 * 3)
    assert np.array_equal(fit(), whole)


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(st.lists(st.integers(-(2**62) + 1, 2**62 - 1), min_size=3, max_size=3),
                      min_size=1, max_size=40),
       e=st.integers(-70, 130))
def test_exact_sum_is_python_integer_arithmetic(parts: list[list[int]], e: int) -> None:
    s = exact.ExactSum()
    for p in parts:
        s.add(np.array(p, dtype=np.int64))
    truth = [sum(col) for col in zip(*parts, strict=True)]
    assert [int(v) for v in s.values()] == truth
    # nearest multiple of 2^e, ties up: floor(x / 2^e + 1/2)
    expected = [(t + (1 << (e - 1))) >> e if e >= 1 else t << -e for t in truth]
    assert [int(v) for v in s.rounded(e)] == expected


def test_exact_release_of_huge_sums_matches_the_float_path() -> None:
    """Sums too large for float64 go through integer rounding with the same noise."""
    from persona.privacy import _mechanisms as mech

    big = exact.ExactSum()
    small = exact.ExactSum()
    for _ in range(4):
        big.add(np.array([2**61, 3 * 2**58, 5], dtype=np.int64))
    small.add(np.array([2**40, 3, -7], dtype=np.int64))
    assert big.as_float(0, -3) is None
    assert small.as_float(0, -3) is not None
    out_big = mech._release(big, 0, 2.0, -3, SeededBits(9))
    out_small = mech._release(small, 0, 2.0, -3, SeededBits(9))
    noise = out_small - np.array([2.0**40, 3, -7])
    assert np.array_equal(out_big, np.array([2.0**63, 3.0 * 2**60, 20.0]) + noise)
