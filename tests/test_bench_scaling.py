"""The scaling study's synthetic data (benchmarks/bench_scaling.py, issue 20) has what its
docstring promises: binary, long-tailed in items and in people, seeded, and a planted
structure that a low-rank model finds and popularity does not."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_scaling  # noqa: E402

N = 2_000


@pytest.fixture(scope="module")
def X() -> sp.csr_matrix:
    return bench_scaling.planted(N, seed=0)


def test_shape_and_binary_values(X: sp.csr_matrix) -> None:
    assert X.shape == (N, bench_scaling.N_ITEMS)
    assert X.nnz > 0
    assert set(np.unique(X.data).tolist()) == {1.0}
    X2 = X.copy()
    X2.sum_duplicates()
    assert X2.nnz == X.nnz  # no duplicate entries left uncollapsed


def test_item_popularity_is_long_tailed(X: sp.csr_matrix) -> None:
    counts = np.sort(np.asarray(X.sum(axis=0)).ravel())[::-1]
    top = counts[: len(counts) // 10].sum() / counts.sum()
    assert top > 0.4, f"top 10% of items hold only {top:.2f} of the events"
    assert counts[-1] < counts[0] / 20


def test_history_lengths_vary(X: sp.csr_matrix) -> None:
    lengths = np.diff(X.indptr)
    assert lengths.min() >= 1
    assert lengths.max() > 5 * np.median(lengths)
    assert lengths.max() <= bench_scaling.MAX_HISTORY


def test_seeded(X: sp.csr_matrix) -> None:
    again = bench_scaling.planted(N, seed=0)
    assert (again != X).nnz == 0
    other = bench_scaling.planted(N, seed=1)
    assert (other != X).nnz > X.nnz // 2


def test_planted_structure_beats_popularity(X: sp.csr_matrix) -> None:
    from threadpoolctl import threadpool_limits

    import bench_privacy
    import persona

    train, test = bench_privacy.split(X, 0)
    with threadpool_limits(1):
        als = persona.ALS(**bench_privacy.ALS, random_state=0, num_threads=1).fit(train)
        als_ndcg = bench_privacy.evaluate(als, train, test)["ndcg@10"]
        pop_ndcg = bench_privacy.evaluate(persona.Popularity().fit(train), train,
                                          test)["ndcg@10"]
    assert als_ndcg > 1.3 * pop_ndcg, (als_ndcg, pop_ndcg)
