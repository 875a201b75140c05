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
    bound_contributions,
    plan_item_counts,
    private_als_item_factors,
    private_cooccurrence,
    private_item_counts,
)
from persona.privacy._bounding import _random_order, cap_events, clip_rows, clip_values
from persona.privacy._mechanisms import solve_user_factors
from persona.privacy.sampler import SeededBits


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
    # bound_contributions clips to [0, v] unless asked for [-v, v]; either way a person
    # keeps at most max_events entries
    assert bound_contributions(X, 3, 1.0).toarray().tolist() == [[1.0, 0.0, 0.25]]
    assert bound_contributions(X, 3, 1.0, signed=True).toarray().tolist() == [
        [1.0, -1.0, 0.25]]
    assert clip_values(X, 1.0, signed=True).toarray().tolist() == [[1.0, -1.0, 0.25]]
    assert bound_contributions(X, 2, 1.0, signed=True).getnnz() == 2
    with pytest.raises(ValidationError, match="scipy sparse"):
        bound_contributions(np.ones((2, 2)), 1, 1.0)
    with pytest.raises(ValidationError, match="finite"):
        bound_contributions(sp.csr_matrix([[np.nan]]), 1, 1.0)


class ScriptedBits:
    """Hands out prepared byte strings in order (and fails when asked for more)."""

    def __init__(self, *draws: bytes) -> None:
        self.draws = list(draws)
        self.asked: list[int] = []

    def __call__(self, n: int) -> bytes:
        self.asked.append(n)
        draw = self.draws.pop(0)
        assert len(draw) == n
        return draw


def _words(*values: int) -> bytes:
    return np.array(values, dtype=np.uint64).tobytes()


def _no_bits(n: int) -> bytes:
    raise AssertionError("drew randomness for a matrix within the cap")


def test_cap_redraws_a_draw_with_a_tie_inside_a_row() -> None:
    X = sp.csr_matrix(np.ones((2, 3)))  # two people, 3 items each, cap 1
    # first draw: row 0 distinct, row 1 ties its first two entries (not the overall minimum)
    # second draw: row 0 keeps item 1, row 1 keeps item 2
    first = _words(3 << 24, 1 << 24, 2 << 24, 5 << 24, 5 << 24, 7 << 24)
    second = _words(3 << 24, 1 << 24, 2 << 24, 9 << 24, 8 << 24, 1 << 24)
    bits = ScriptedBits(first, second)
    C = cap_events(X, 1, bits=bits)
    assert bits.asked == [48, 48]
    assert C.indices.tolist() == [1, 2]
    assert C.indptr.tolist() == [0, 1, 2]


def test_cap_sort_keys_keep_40_random_bits() -> None:
    # keys that differ only in bit 24 of the random word (the lowest one kept) are no tie
    X = sp.csr_matrix(np.ones((1, 3)))
    bits = ScriptedBits(_words(1 << 24, 0, 2 << 24))
    assert cap_events(X, 1, bits=bits).indices.tolist() == [1]
    assert bits.asked == [24]


def test_both_sort_paths_choose_the_same_order_from_the_same_bytes() -> None:
    rng = np.random.default_rng(4)
    local = np.repeat(np.arange(60), rng.integers(2, 9, size=60)).astype(np.uint64)
    packed = _random_order(local, 60, SeededBits(5))
    two_keys = _random_order(local, 60, SeededBits(5), packed_rows=60)  # not below: two keys
    assert np.array_equal(packed, two_keys)
    assert sorted(packed.tolist()) == list(range(local.size))  # a permutation
    assert np.all(np.diff(local[packed].astype(np.int64)) >= 0)  # grouped by row
    assert not np.array_equal(packed, np.arange(local.size))  # shuffled within rows


def test_the_packed_key_is_used_only_below_packed_rows() -> None:
    local = np.array([0, 0, 1, 1], dtype=np.uint64)
    tied, fresh = _words(0, 0, 1 << 24, 2 << 24), _words(1 << 24, 0, 0, 1 << 24)
    packed = ScriptedBits(tied, fresh)  # the packed path redraws the tie
    assert _random_order(local, 2, packed, packed_rows=3).tolist() == [1, 0, 2, 3]
    assert len(packed.asked) == 2
    two_keys = ScriptedBits(tied)  # two keys: one draw, a stable sort
    assert _random_order(local, 2, two_keys, packed_rows=2).tolist() == [0, 1, 2, 3]


def test_a_matrix_within_the_cap_is_returned_without_drawing() -> None:
    X = sp.csr_matrix([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0], [0.0, 0.0, 0.0]])
    C = cap_events(X, 2, bits=_no_bits)  # the largest row is exactly at the cap
    assert (C != X).nnz == 0
    assert cap_events(sp.csr_matrix((2, 3)), 1, bits=_no_bits).nnz == 0


def test_cap_with_rows_below_at_and_above_it() -> None:
    X = sp.csr_matrix(np.array([
        [1.0, 2.0, 0.0, 0.0, 0.0],   # below the cap of 3
        [1.0, 2.0, 3.0, 0.0, 0.0],   # at it
        [1.0, 2.0, 3.0, 4.0, 0.0],   # above: keeps 3 of 4
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [5.0, 6.0, 7.0, 8.0, 0.0],   # above; the last column stays empty
    ]))
    C = cap_events(X, 3, bits=SeededBits(2))
    assert C.shape == X.shape
    assert C.getnnz(axis=1).tolist() == [2, 3, 3, 0, 3]
    assert (C[:2] != X[:2]).nnz == 0  # rows within the cap are unchanged
    for r in (2, 4):
        assert set(zip(C[r].indices, C[r].data, strict=True)) <= set(
            zip(X[r].indices, X[r].data, strict=True))
    assert C.has_sorted_indices and np.all(np.diff(C.indices[C.indptr[2]:C.indptr[3]]) > 0)


def test_a_cap_of_one_is_allowed_and_zero_is_refused() -> None:
    C = cap_events(sp.csr_matrix(np.ones((3, 4))), 1, bits=SeededBits(0))
    assert C.getnnz(axis=1).tolist() == [1, 1, 1]
    with pytest.raises(ValidationError) as refused:
        cap_events(sp.csr_matrix(np.ones((1, 2))), 0)
    assert refused.value.code == "validation_error"
    assert "max_events" in str(refused.value)


def test_bounding_leaves_its_input_alone_and_works_in_floats() -> None:
    X = sp.csr_matrix(np.array([[3.0, 0.5, 2.0]]))
    before = X.copy()
    B = bound_contributions(X, 5, 1.0)
    assert (before != X).nnz == 0 and B.data.tolist() == [1.0, 0.5, 1.0]
    counts = sp.csr_matrix(np.array([[3, 0, 1]], dtype=np.int64))  # integer counts
    B = bound_contributions(counts, 5, 0.5)
    assert B.dtype == np.float64 and B.data.tolist() == [0.5, 0.5]
    assert counts.data.tolist() == [3, 1]


def test_clip_rows_is_exact_where_it_can_be_and_never_over_the_bound() -> None:
    # rows within the bound, and a row exactly at it, come back bit for bit
    M = np.array([[0.6, 0.8], [0.3, 0.4], [0.0, 0.9]])
    assert np.array_equal(clip_rows(M, 1.0), M)
    # small rows scale to a small bound exactly as to a large one
    assert np.allclose(clip_rows(np.array([[0.3, 0.4]]), 0.1), [[0.06, 0.08]])
    # scaling to the bound can land a hair above it in floating point: the guard pulls it back
    rng = np.random.default_rng(0)
    M = rng.normal(size=(2000, 8)) * rng.uniform(0.1, 100, size=(2000, 1))
    for bound in (0.3, 1.0, 2.5):
        out = clip_rows(M, bound)
        norms = np.linalg.norm(out, axis=1)
        assert np.all(norms <= bound)
        assert np.allclose(norms[np.linalg.norm(M, axis=1) > bound], bound)


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


def test_signed_item_counts_sum_values_in_both_directions() -> None:
    """``signed=True``: each value is clipped to ``[-max_value, max_value]`` (not ``[0,
    max_value]``) and summed exactly; the spend is the unsigned plan's (one person still
    moves each total by at most ``max_value``)."""
    X = sp.csr_matrix(np.array([[1.0, -1.0, 0.0], [-1.0, -1.0, 3.0], [1.0, -5.0, -0.5]]))
    cfg = DP(epsilon=5000.0, delta=1e-6, max_events_per_person=3, max_value=1.0)
    counts, spent = private_item_counts(X, cfg, signed=True, bits=SeededBits(7))
    assert np.allclose(counts, [1.0, -3.0, 0.5], atol=0.05)
    assert spent == plan_item_counts(3, cfg)
    unsigned, _ = private_item_counts(X, cfg, bits=SeededBits(7))
    assert np.allclose(unsigned, [2.0, 0.0, 1.0], atol=0.05)  # negatives clipped to 0
    lap, lap_spent = private_item_counts(X, cfg.model_copy(update={"delta": 0.0}),
                                         signed=True, bits=SeededBits(8))
    assert np.allclose(lap, [1.0, -3.0, 0.5], atol=0.05) and lap_spent.delta == 0.0
    for bad in (1, "yes", None):
        with pytest.raises(ValidationError, match="signed must be True or False"):
            private_item_counts(X, cfg, signed=bad)  # type: ignore[arg-type]


def test_signed_item_counts_cap_each_person_with_the_given_bits() -> None:
    """A person over the cap keeps ``max_events_per_person`` entries, drawn with the bits
    given (the same bits, the same release; a cap that ignored them would differ)."""
    X = sp.csr_matrix(np.array([[1.0, -1.0, 1.0, -1.0, 1.0, -1.0]]))
    cfg = DP(epsilon=5000.0, delta=1e-6, max_events_per_person=2, max_value=1.0)
    runs = [private_item_counts(X, cfg, signed=True, bits=SeededBits(11))[0] for _ in range(2)]
    assert np.array_equal(runs[0], runs[1])
    kept = np.round(runs[0])
    assert np.abs(kept).sum() == 2 and set(np.flatnonzero(kept)) <= set(range(6))
    assert all(kept[j] in (0.0, X[0, j]) for j in range(6))
    seen = {tuple(np.flatnonzero(np.round(private_item_counts(
        X, cfg, signed=True, bits=SeededBits(s))[0]))) for s in range(12)}
    assert len(seen) > 3  # the kept pair follows the bits
