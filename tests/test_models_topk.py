"""The top-k selection behind every recommend call equals a full sort, ties included."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from persona.models._base import _top_per_row


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
    # the candidate superset holds the top k of every row
    cr, cc, _ = _top_per_row(S, k, candidates=True)
    assert set(zip(r.tolist(), c.tolist(), strict=True)) <= set(
        zip(cr.tolist(), cc.tolist(), strict=True)
    )


def test_popular_items_clustered_in_id_order() -> None:
    """Scores that grow with the item index (popular items last) are still exact."""
    rng = np.random.default_rng(0)
    S = np.sort(rng.standard_normal((8, 20_000)), axis=1)
    r, c, _ = _top_per_row(S, 10)
    assert r.tolist() == np.repeat(np.arange(8), 10).tolist()
    assert c.reshape(8, 10).tolist() == [list(range(19_999, 19_989, -1))] * 8
