"""ItemKNN serves what implicit's item-item recommenders serve; Popularity is global."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from persona.data import Interactions
from persona.models import BPR, ItemKNN, NoExactDecompositionError, Popularity


def _random(seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    m = sp.random(120, 50, density=0.1, random_state=rng, format="csr")
    m.data = 1 + np.round(m.data * 4)
    return Interactions.from_csr(m, [f"u{i}" for i in range(120)], [f"i{j}" for j in range(50)])


@pytest.mark.parametrize("measure", ["cosine", "bm25"])
def test_item_knn_scores_equal_implicit(measure: str) -> None:
    import warnings

    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
    from implicit.utils import ParameterWarning

    X = _random()
    model = ItemKNN(measure=measure, neighbours=10).fit(X)  # type: ignore[arg-type]
    cui = sp.csr_matrix(X.matrix, dtype=np.float32)
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ParameterWarning)
        raw = CosineRecommender(K=10) if measure == "cosine" else BM25Recommender(K=10)
        raw.fit(cui, show_progress=False)
    for r in range(0, 120, 13):
        ids, scores = raw.recommend(r, cui[r], N=5)
        recs = model.recommend(str(X.users[r]), n=5)
        np.testing.assert_allclose([x.score for x in recs], scores, rtol=1e-5)
        got = {x.item for x in recs}
        top = {f"i{j}" for j, s in zip(ids, scores, strict=True) if s > scores[-1] + 1e-6}
        assert top <= got


def test_item_knn_contributions_are_neighbour_terms() -> None:
    X = _random()
    model = ItemKNN(neighbours=10).fit(X)
    u = "u3"
    for rec in model.recommend(u, n=3):
        items, parts = model.contributions(u, rec.item)
        assert parts.sum() == pytest.approx(rec.score, rel=1e-12)
        assert (parts >= 0).all()
        assert set(items) == set(X.history(u))


def test_popularity_uses_no_personal_data_when_serving() -> None:
    X = _random()
    model = Popularity().fit(X)
    first = model.recommend("u1", n=5)
    assert first == model.recommend("u2", n=5) == model.recommend("never-seen", n=5)
    counts = np.bincount(X.matrix.indices, minlength=50)
    assert [r.score for r in first] == sorted(counts.tolist(), reverse=True)[:5]
    # opting in to exclude seen items uses the history, and needs a known person
    seen = set(X.history("u1"))
    assert not seen & {r.item for r in model.recommend("u1", n=50, exclude_seen=True)}
    with pytest.raises(NoExactDecompositionError):
        model.contributions("u1", "i1")


def test_bpr_has_no_exact_decomposition() -> None:
    model = BPR(factors=4, iterations=5, random_state=0).fit(_random())
    with pytest.raises(NoExactDecompositionError, match="ALS or ItemKNN"):
        model.contributions("u1", "i1")
