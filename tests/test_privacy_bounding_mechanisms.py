"""Contribution bounding and the private mechanisms (shapes, bounds, spend, utility)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from persona.errors import ValidationError
from persona.privacy import (
    DP,
    ALSTimings,
    SeededBits,
    bound_contributions,
    cap_events,
    clip_rows,
    clip_values,
    private_als_item_factors,
    private_cooccurrence,
    private_item_counts,
    solve_user_factors,
)


def test_cap_keeps_a_uniform_random_subset_not_the_first_k() -> None:
    X = sp.csr_matrix(np.arange(1, 6, dtype=float)[None, :])  # one person, 5 items
    kept = np.zeros(5)
    trials = 6000
    bits = SeededBits(1)
    for _ in range(trials):
        C = cap_events(X, 2, bits=bits)
        assert C.nnz == 2
        assert set(C.data) <= set(X.data)
        kept[C.indices] += 1
    # each item is kept with probability 2/5
    assert stats.chisquare(kept, np.full(5, trials * 2 / 5)).pvalue > 1e-4


def test_cap_leaves_small_rows_and_never_exceeds_the_cap() -> None:
    X = sp.random(300, 80, density=0.2, format="csr", random_state=3)
    C = cap_events(X, 7)
    counts = C.getnnz(axis=1)
    assert counts.max() <= 7
    small = X.getnnz(axis=1) <= 7
    assert np.array_equal(counts[small], X.getnnz(axis=1)[small])
    assert (abs(C - C.multiply(X.astype(bool)))).nnz == 0  # entries come from X


def test_clipping() -> None:
    X = sp.csr_matrix([[3.0, -2.0, 0.25]])
    assert clip_values(X, 1.0).toarray().tolist() == [[1.0, 0.0, 0.25]]
    rows = clip_rows(np.array([[30.0, 40.0], [0.0, 0.0], [0.1, 0.0]]), 5.0)
    assert np.all(np.linalg.norm(rows, axis=1) <= 5.0)
    assert np.allclose(rows[0], [3.0, 4.0])
    assert np.allclose(rows[2], [0.1, 0.0])
    with pytest.raises(ValidationError, match="scipy sparse"):
        bound_contributions(np.ones((2, 2)), 1, 1.0)
    with pytest.raises(ValidationError, match="finite"):
        bound_contributions(sp.csr_matrix([[np.nan]]), 1, 1.0)


def _two_groups(n_users: int = 600, seed: int = 0) -> sp.csr_matrix:
    """Half the people use items 0-9, the other half items 10-19."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for u in range(n_users):
        base = 0 if u < n_users // 2 else 10
        items = rng.choice(10, size=5, replace=False) + base
        rows += [u] * 5
        cols += items.tolist()
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, 20))


def test_private_item_counts_gaussian_and_laplace() -> None:
    X = _two_groups()
    cfg = DP(epsilon=2.0, delta=1e-6, max_events_per_person=5)
    counts, spent = private_item_counts(X, cfg, bits=SeededBits(2))
    assert counts.shape == (20,)
    assert spent.epsilon <= 2.0
    assert spent.delta == 1e-6
    assert spent.rho is not None
    assert spent.bounds["max_events_per_person"] == 5
    assert np.abs(counts - np.asarray(X.sum(axis=0)).ravel()).max() < 40
    lap_counts, lap = private_item_counts(X, DP(epsilon=2.0, delta=0.0), bits=SeededBits(3))
    assert lap.delta == 0.0
    assert lap.rho is None
    assert lap.epsilon <= 2.0
    assert lap_counts.shape == (20,)
    with pytest.raises(ValidationError, match="mechanism"):
        private_item_counts(X, cfg, mechanism="exponential")


def test_private_cooccurrence_is_symmetric_and_close_at_high_epsilon() -> None:
    X = _two_groups()
    C, spent = private_cooccurrence(X, DP(epsilon=50.0, max_events_per_person=5),
                                    bits=SeededBits(4))
    assert np.array_equal(C, C.T)
    exact = (X.T @ X).toarray()
    assert np.abs(C - exact).max() < 15
    assert C[:10, :10].mean() > C[:10, 10:].mean() + 20
    assert spent.mechanism == "dp-cooccurrence"


@pytest.mark.parametrize("alpha", [0.0, 2.0])
def test_private_als_learns_the_groups_at_high_epsilon(alpha: float) -> None:
    X = _two_groups()
    tm = ALSTimings()
    Y, spent = private_als_item_factors(
        X, factors=4, iterations=4, regularization=0.1, alpha=alpha,
        dp_cfg=DP(epsilon=50.0, max_events_per_person=5), random_state=0,
        bits=SeededBits(5), timings=tm)
    assert Y.shape == (20, 4)
    assert spent.steps == 4
    assert spent.epsilon <= 50.0
    assert tm.total > 0
    U = solve_user_factors(X, Y, 0.1, alpha)
    scores = U @ Y.T
    top = np.argsort(-scores, axis=1)[:, :5]
    group = np.arange(600) < 300
    in_group = np.where(group[:, None], top < 10, top >= 10)
    assert in_group.mean() > 0.95


def test_private_als_spend_does_not_depend_on_the_data() -> None:
    cfg = DP(epsilon=1.0, max_events_per_person=5)
    X1 = _two_groups(seed=1)
    X2 = _two_groups(seed=2)[:, :]
    _, s1 = private_als_item_factors(X1, 3, 2, 0.1, 0.0, cfg, 0, bits=SeededBits(6))
    _, s2 = private_als_item_factors(X2, 3, 2, 0.1, 0.0, cfg, 0, bits=SeededBits(7))
    assert s1 == s2


def test_private_als_rejects_bad_settings() -> None:
    X = _two_groups()
    cfg = DP(epsilon=1.0)
    with pytest.raises(ValidationError, match="at least 1"):
        private_als_item_factors(X, 0, 1, 0.1, 0.0, cfg)
    with pytest.raises(ValidationError, match="non-negative"):
        private_als_item_factors(X, 2, 1, 0.1, -1.0, cfg)
    with pytest.raises(ValidationError, match="factor_norm"):
        private_als_item_factors(X, 2, 1, 0.1, 0.0, DP(epsilon=1.0, factor_norm=2.0))
    with pytest.raises(ValidationError, match="delta = 0"):
        private_als_item_factors(X, 2, 1, 0.1, 0.0, DP(epsilon=1.0, delta=0.0))
    with pytest.raises(ValidationError, match="not both 0"):
        private_als_item_factors(X, 2, 1, 0.0, 0.0, cfg, noise_regularization=0.0)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_private_als_without_user_regularization_still_solves(alpha: float) -> None:
    """Fewer items than factors and no ridge in the user step: the user systems are
    singular, solved by least squares instead of failing."""
    X = sp.random(30, 3, density=0.5, format="csr", random_state=0)
    Y, _ = private_als_item_factors(X, 5, 2, 0.0, alpha, DP(epsilon=2.0), 0,
                                    bits=SeededBits(11))
    assert np.all(np.isfinite(Y))
    assert np.all(np.isfinite(solve_user_factors(X, np.zeros((3, 4)), 0.0, alpha)))



def test_private_als_person_weights_lower_the_sensitivity() -> None:
    X = _two_groups()
    cfg = DP(epsilon=50.0, max_events_per_person=1000)
    Y, spent = private_als_item_factors(X, 4, 3, 0.1, 0.0, cfg, 0, weight_budget=2.0,
                                        bits=SeededBits(9))
    assert spent.noise["sensitivity"] == pytest.approx(np.sqrt(1 + 4))
    assert spent.bounds["weight_budget"] == 2.0
    U = solve_user_factors(X, Y, 0.1, 0.0)
    top = np.argsort(-(U @ Y.T), axis=1)[:, :5]
    group = np.arange(600) < 300
    assert np.where(group[:, None], top < 10, top >= 10).mean() > 0.95
    with pytest.raises(ValidationError, match="weight_budget"):
        private_als_item_factors(X, 2, 1, 0.1, 0.0, cfg, 0, weight_budget=0.0)
    # the same setting from the DP configuration
    cfg2 = DP(epsilon=50.0, max_events_per_person=1000, weight_budget=2.0)
    _, spent2 = private_als_item_factors(X, 4, 1, 0.1, 0.0, cfg2, 0, bits=SeededBits(10))
    assert spent2.noise["sensitivity"] == pytest.approx(np.sqrt(1 + 4))


# --------------------------------------------------------------------------- fast DP-ALS
@pytest.mark.parametrize(("normalize", "shrinkage", "weight_budget"),
                         [(True, True, None), (False, False, None), (True, True, 1.5)])
def test_shared_solve_gives_the_general_paths_factors(
    normalize: bool, shrinkage: bool, weight_budget: float | None
) -> None:
    """At alpha = 0 the fast path (one factorisation per iteration for all people and one
    for all items) and the general path (a matrix per person and per item) release the same
    statistics with the same noise and post-process them the same way."""
    from persona.privacy import _mechanisms as mech

    X = _two_groups(120)
    cfg = DP(epsilon=8.0, max_events_per_person=4)
    out = []
    for shared in (True, False):
        Y, spent = mech._dp_als(
            X, 5, 4, 0.1, 0.0, cfg, 3, noise_regularization=1.0, normalize_users=normalize,
            shrinkage=shrinkage, weight_budget=weight_budget, bits=SeededBits(21),
            timings=None, shared=shared)
        out.append((Y, spent))
    assert out[0][1] == out[1][1]
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=0, atol=1e-8)
    public, _ = private_als_item_factors(X, 5, 4, 0.1, 0.0, cfg, 3, normalize_users=normalize,
                                         shrinkage=shrinkage, weight_budget=weight_budget,
                                         bits=SeededBits(21))
    assert np.array_equal(public, out[0][0])  # the public function takes the fast path


def test_private_als_at_alpha_zero_factorises_one_matrix_per_iteration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 16, point 10: at alpha = 0 every item's matrix is the same noisy Gram matrix and
    every person's the same YᵀY + λI; the old fit eigen-decomposed one matrix per item and
    solved one per person each iteration."""
    shapes: dict[str, list[tuple[int, ...]]] = {"eigh": [], "solve": []}
    real_eigh, real_solve = np.linalg.eigh, np.linalg.solve

    def eigh(a, *args, **kwargs):
        shapes["eigh"].append(np.shape(a))
        return real_eigh(a, *args, **kwargs)

    def solve(a, b, *args, **kwargs):
        shapes["solve"].append(np.shape(a))
        return real_solve(a, b, *args, **kwargs)

    monkeypatch.setattr(np.linalg, "eigh", eigh)
    monkeypatch.setattr(np.linalg, "solve", solve)
    X = _two_groups(200)
    private_als_item_factors(X, 4, 3, 0.1, 0.0, DP(epsilon=8.0, max_events_per_person=5), 0,
                             bits=SeededBits(22))
    assert shapes["eigh"] == [(4, 4)] * 3
    assert all(len(s) == 2 for s in shapes["solve"])


def test_user_step_batches_agree_with_one_solve_per_person() -> None:
    rng = np.random.default_rng(3)
    X = sp.random(700, 40, density=0.1, format="csr", random_state=4)
    X.data = X.data * 5
    Y = rng.standard_normal((40, 6))
    for alpha in (0.0, 0.7):
        U = solve_user_factors(X, Y, 0.2, alpha)
        for u in (0, 1, 350, 699):
            row = X[u]
            c = np.zeros(40)
            c[row.indices] = alpha * row.data
            A = Y.T @ (Y * (1.0 + c)[:, None]) + 0.2 * np.eye(6)
            p = np.zeros(40)
            p[row.indices] = 1.0 + alpha * row.data
            np.testing.assert_allclose(U[u], np.linalg.solve(A, Y.T @ p), rtol=1e-9,
                                       atol=1e-12)
