"""The top-k selection behind every recommend call equals a full sort, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from persona.models._topk import _order_rows_scores_cols, _top_per_row


def _reference(S: np.ndarray, k: int) -> tuple[list[int], list[int], list[float]]:
    rows, cols, vals = [], [], []
    for r in range(S.shape[0]):
        finite = np.flatnonzero(np.isfinite(S[r]))
        order = sorted(finite.tolist(), key=lambda c: (-S[r, c], c))[:k]
        rows += [r] * len(order)
        cols += order
        vals += [float(S[r, c]) for c in order]
    return rows, cols, vals


@given(
    b=st.integers(1, 4),
    m=st.integers(1, 5000),
    k=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    ties=st.booleans(),
    masked=st.floats(0.0, 1.0),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_top_per_row_equals_full_sort(
    b: int, m: int, k: int, seed: int, ties: bool, masked: float, dtype: type
) -> None:
    rng = np.random.default_rng(seed)
    S = rng.integers(0, 5, (b, m)) if ties else rng.standard_normal((b, m))
    S = S.astype(dtype)
    S[rng.random((b, m)) < masked] = -np.inf
    r, c, v = _top_per_row(S, k)
    ref = _reference(S, k)
    assert r.tolist() == ref[0]
    assert c.tolist() == ref[1]
    assert v.tolist() == ref[2]
    # candidates: every finite entry within the margin of its row's k-th largest value
    margin = rng.random(b) * (0.5 if ties else 0.05) * rng.integers(0, 2, b)
    cr, cc, cv = _top_per_row(S, k, margin=margin)
    assert np.isfinite(cv).all()  # masked entries are never candidates
    assert cv.tolist() == S[cr, cc].tolist()
    got = set(zip(cr.tolist(), cc.tolist(), strict=True))
    assert len(got) == cr.size  # no entry twice
    assert set(zip(r.tolist(), c.tolist(), strict=True)) <= got
    for row in range(b):
        kth = ref[2][[i for i, x in enumerate(ref[0]) if x == row][-1]] if row in ref[0] else None
        if kth is None:
            continue
        need = set(np.flatnonzero(S[row].astype(np.float64) >= kth - margin[row]).tolist())
        have = {col for rr, col in got if rr == row}
        assert need <= have


def test_popular_items_clustered_in_id_order() -> None:
    """Scores that grow with the item index (popular items last) are still exact."""
    rng = np.random.default_rng(0)
    S = np.sort(rng.standard_normal((8, 20_000)), axis=1)
    r, c, _ = _top_per_row(S, 10)
    assert r.tolist() == np.repeat(np.arange(8), 10).tolist()
    assert c.reshape(8, 10).tolist() == [list(range(19_999, 19_989, -1))] * 8


# --------------------------------------------------- batches: the norm-ordered bound
def _plain_and_pruned(model, users, **kw):
    """recommend_arrays through the norm bound, and through the plain full-scoring path."""
    from persona.models import Recommender
    from persona.models._factor import _FactorModel

    pruned = model.recommend_arrays(users, **kw)
    saved = _FactorModel._select
    _FactorModel._select = Recommender._select
    try:
        plain = model.recommend_arrays(users, **kw)
    finally:
        _FactorModel._select = saved
    return pruned, plain


def _skewed_als(seed: int, n_users: int = 400, n_items: int = 1500):
    import scipy.sparse as sp

    from persona.data import Interactions
    from persona.models import ALS

    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, n_items + 1) ** 1.1
    nnz = 12 * n_users
    X = sp.csr_matrix(
        (np.ones(nnz), (rng.integers(0, n_users, nnz), rng.choice(n_items, nnz, p=w / w.sum()))),
        shape=(n_users, n_items),
    )
    X.sum_duplicates()
    X.data[:] = 1.0
    data = Interactions.from_csr(X, [f"u{k}" for k in range(n_users)],
                                 [f"i{k}" for k in range(n_items)])
    return ALS(factors=16, iterations=4, random_state=seed, num_threads=1).fit(data)


@given(seed=st.integers(0, 2**16), n=st.sampled_from([1, 5, 10, 40]))
def test_batches_through_the_norm_bound_equal_full_scoring(seed: int, n: int) -> None:
    model = _skewed_als(seed % 7)
    rng = np.random.default_rng(seed)
    users = [f"u{k}" for k in rng.choice(400, 130, replace=False)]
    exclude = [f"i{k}" for k in rng.choice(1500, 20, replace=False)]
    for kw in ({}, {"exclude": exclude}, {"include": [f"i{k}" for k in range(0, 1500, 3)]},
               {"exclude_seen": False}):
        pruned, plain = _plain_and_pruned(model, users, n=n, **kw)
        assert np.array_equal(pruned.items, plain.items)
        assert np.array_equal(pruned.scores, plain.scores, equal_nan=True)
        assert np.array_equal(pruned.lengths, plain.lengths)


def test_norm_bound_settles_people_early_and_lists_equal_single_calls() -> None:
    model = _skewed_als(0, n_users=600, n_items=4000)
    users = [f"u{k}" for k in range(600)]
    res = model.recommend_arrays(users, n=10)
    stats = model._pruning.stats
    assert sum(settled for _, settled in stats.values()) > 0  # the bound did skip items
    for u, items in zip(users[:100], res.to_lists(), strict=False):
        assert items == model.recommend(u, n=10, explain=False)


def test_norm_bound_keeps_an_item_that_ties_at_the_boundary() -> None:
    """An item outside the scored part whose score ties the k-th best (and whose lower
    column wins the tie) must not be cut by the bound: it only settles on strict <."""
    import scipy.sparse as sp

    from persona.data import Interactions
    from persona.models import ALS
    from persona.models._topk import _NormIndex

    m, f = 2048, 2
    model = ALS(factors=f, iterations=1, random_state=0, num_threads=1).fit(
        Interactions.from_csr(sp.csr_matrix(np.ones((3, m))), ["a", "b", "c"],
                              [f"i{k}" for k in range(m)]))
    Y = np.zeros((m, f), dtype=np.float32)
    Y[:, 0] = 1.0  # every item scores exactly 1.0 for u = e1
    cut = _NormIndex.cuts(m, 3)[0]
    Y[1:cut + 1, 1] = 0.5  # the first segment in norm order; item 0 leads the rest, whose
    # largest norm (1.0) times |u| equals the k-th best score found (1.0): a tie
    model.item_factors_ = Y
    model._prepare_items()
    model.history_ = sp.csr_matrix((3, m))
    model._served[:] = 0.0
    model._served[:, 0] = 1.0
    model._served32[:] = model._served
    model._solved[:] = True
    res = model.recommend_arrays(["a", "b", "c"], n=3)
    assert res.items[0].tolist() == ["i0", "i1", "i2"]
    assert model.recommend("a", n=3, explain=False)[0].item == "i0"


@given(
    n=st.integers(0, 1500),
    b=st.integers(1, 70),
    seed=st.integers(0, 2**32 - 1),
    scores=st.sampled_from(["normal", "ties", "zeros", "float32"]),
)
def test_fast_candidate_order_equals_lexsort(n: int, b: int, seed: int, scores: str) -> None:
    """Row, then score descending, then column: the fast path equals ``np.lexsort``,
    ties (equal scores, 0.0 and -0.0) included."""
    rng = np.random.default_rng(seed)
    r = rng.integers(0, b, n)
    c = rng.integers(0, 50, n)
    if scores == "normal":
        s = rng.standard_normal(n)
    elif scores == "ties":
        s = rng.integers(-2, 3, n).astype(np.float64)
    elif scores == "zeros":
        s = rng.choice([0.0, -0.0, 1.0], n)
    else:
        s = rng.standard_normal(n).astype(np.float32)
    assert _order_rows_scores_cols(r, c, s, b).tolist() == np.lexsort((c, -s, r)).tolist()


@given(seed=st.integers(0, 2**16), n=st.sampled_from([1, 3, 10]), tied=st.integers(2, 80))
def test_lists_are_the_float64_top_n_among_float32_near_ties(seed: int, n: int, tied: int) -> None:
    """Items whose scores differ by less than float32 can resolve: the served list is still
    the float64 top ``n`` of the whole catalogue (batch, pruned batch and single calls),
    because every item within the proven rounding margin is re-scored exactly."""
    model = _skewed_als(seed % 3, n_users=120, n_items=1200)
    rng = np.random.default_rng(seed)
    U = model._user_vectors64(np.arange(120))
    lead = U.mean(axis=0)
    lead = (3 * np.linalg.norm(model._Y64, axis=1).max() / np.linalg.norm(lead)) * lead
    Y = model.item_factors_.copy()
    group = rng.choice(1200, tied, replace=False)
    near = np.repeat(lead[None, :], tied, axis=0).astype(np.float32)
    steps = rng.integers(-3, 4, near.shape)  # a few ulps apart in every component
    Y[group] = near + steps * np.spacing(near)
    model.item_factors_ = Y
    model._prepare_items()
    model._pruning = None
    users = [f"u{k}" for k in range(120)]
    exact = np.einsum("uj,ij->ui", U, model._Y64)
    seen = model.history_.toarray() > 0
    expected = []
    for row in range(120):
        cols = np.flatnonzero(~seen[row])
        order = sorted(cols.tolist(), key=lambda c: (-exact[row, c], c))[:n]
        expected.append([f"i{c}" for c in order])
    pruned, plain = _plain_and_pruned(model, users, n=n)
    for res in (pruned, plain):
        assert [r[: k] for r, k in zip(res.items.tolist(), res.lengths.tolist(), strict=True)] \
            == expected
    for u in users[:10]:
        assert [r.item for r in model.recommend(u, n=n, explain=False)] == expected[int(u[1:])]


@given(
    b=st.integers(1, 5),
    m=st.integers(1, 3000),
    k=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
    masked=st.floats(0.0, 1.0),
)
def test_kth_lower_bound_never_exceeds_the_kth_largest(
    b: int, m: int, k: int, seed: int, masked: float
) -> None:
    """Over a row's columns taken in segments (as the norm bound scores them), the running
    bound never exceeds the k-th largest entry scored so far, and is -inf while fewer than
    k are finite."""
    from persona.models._topk import _kth_lower_bound

    rng = np.random.default_rng(seed)
    S = rng.standard_normal((b, m)).astype(np.float32)
    S[rng.random((b, m)) < masked] = -np.inf
    ends = sorted({int(e) for e in rng.integers(k, m + 1, 2) if e < m} | {m}) if m > k else [m]
    best, start = None, 0
    for stop in ends:
        bound, best, _ = _kth_lower_bound(S[:, start:stop], k, best)
        kth = -np.sort(-S[:, :stop], axis=1)[:, min(k, stop) - 1]
        assert np.all(bound <= kth)
        assert np.all(np.isneginf(bound[np.isneginf(kth)]))
        start = stop


def _explored(model, k: int, settle: dict[int, float] | None = None):
    """The model's norm index with its exploration for lists of ``k`` over: every cut
    tried by 1,000 people, settling the given shares (the measured ones when None)."""
    from persona.models._topk import _NormIndex

    m = len(model.items_)
    index = model._pruning = model._pruning or _NormIndex(model._Y32T, model._item_norms)
    if settle is not None:
        for p in index.cuts(m, k):
            index.stats[(k, p)] = [1000, int(1000 * settle.get(p, 0.0))]
    index.explored[k] = index.EXPLORE
    index._chosen.pop(k, None)  # chosen again from these counts
    return index


def test_the_plan_explores_every_cut_then_keeps_the_cheapest_one() -> None:
    from persona.models._topk import _NormIndex

    model = _skewed_als(1)
    m = len(model.items_)
    index = _NormIndex(model._Y32T, model._item_norms)
    cuts = index.cuts(m, 10)
    assert cuts[0] >= 40 and cuts[-1] < m and cuts == sorted(cuts)
    assert index.plan(m, 10) == [*cuts, m]  # exploring: every cut
    model._pruning = index
    # half of everyone settles at the second cut, everyone left at the fourth
    _explored(model, 10, {cuts[1]: 0.5, cuts[3]: 1.0})
    costs = {p: p + (0.5 if cuts[1] <= p < cuts[3] else 1.0 if p < cuts[1] else 0.0) * (m - p)
             for p in cuts}
    assert index.plan(m, 10) == [min(costs, key=costs.get), m]
    _explored(model, 10, {})  # nobody settles anywhere: score everything
    assert index.plan(m, 10) is None
    assert model._first_pass_items(10, None) == m
    # a plan is learnt per list length: lists of 5 are still exploring
    assert index.plan(m, 5) == [*index.cuts(m, 5), m]


@given(seed=st.integers(0, 2**16), n=st.sampled_from([1, 10, 40]))
def test_batches_through_a_learnt_cut_equal_full_scoring(seed: int, n: int) -> None:
    """After exploring, blocks go through one cut (everyone on the first part, the people
    not settled on the rest): the lists equal the plain path's, filters included."""
    model = _skewed_als(seed % 7)
    rng = np.random.default_rng(seed)
    m = len(model.items_)
    cuts = [p for p in _explored(model, n).cuts(m, n) if p < m // 2]
    cut = cuts[int(rng.integers(len(cuts)))]
    _explored(model, n, {cut: 0.95})  # the cheapest plan is this cut
    assert model._pruning.plan(m, n) == [cut, m]
    assert model._first_pass_items(n, None) == cut  # blocks are sized on it
    users = [f"u{k}" for k in rng.choice(400, 130, replace=False)]
    exclude = [f"i{k}" for k in rng.choice(1500, 20, replace=False)]
    for kw in ({}, {"exclude": exclude}, {"include": [f"i{k}" for k in range(0, 1500, 3)]},
               {"exclude_seen": False}, {"block_size": 17}):
        pruned, plain = _plain_and_pruned(model, users, n=n, **kw)
        assert np.array_equal(pruned.items, plain.items)
        assert np.array_equal(pruned.scores, plain.scores, equal_nan=True)
        assert np.array_equal(pruned.lengths, plain.lengths)


def test_an_unknown_or_unhashable_person_in_a_batch_is_named() -> None:
    from persona.errors import UnknownUserError, ValidationError

    model = _skewed_als(0)
    with pytest.raises(UnknownUserError, match="'nobody'"):
        model.recommend_arrays(["u1", "nobody", "u2"])
    with pytest.raises(ValidationError, match=r"\['u1'\] is not a valid id: it is a list"):
        model.recommend_arrays(["u1", ["u1"]])
