"""persona.evaluate equals implicit.evaluation on the same split and recommendations."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

import persona
from persona.data import Interactions, leave_k_out
from persona.errors import ValidationError
from persona.evaluate import EvaluationResult, evaluate
from persona.models import ItemKNN, Popularity
from persona.testing import block_interactions


def _implicit_metrics(train: Interactions, test: Interactions, k: int) -> dict[str, float]:
    from implicit.evaluation import ranking_metrics_at_k
    from implicit.nearest_neighbours import CosineRecommender
    from implicit.utils import ParameterWarning

    tr = sp.csr_matrix(train.matrix, dtype=np.float32)
    te = sp.csr_matrix(test.matrix, dtype=np.float32)
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ParameterWarning)
        raw = CosineRecommender(K=20)
        raw.fit(tr, show_progress=False)
        return ranking_metrics_at_k(raw, tr, te, K=k, show_progress=False)


def test_equals_implicit_on_synthetic_split() -> None:
    X = block_interactions(groups=4, users_per_group=30, items_per_group=12, density=0.5)
    train, test = leave_k_out(X, k=2, random_state=1)
    ours = evaluate(ItemKNN(neighbours=20).fit(train), train, test, k=5)
    ref = _implicit_metrics(train, test, 5)
    assert isinstance(ours, EvaluationResult)
    assert ours.ndcg == pytest.approx(ref["ndcg"], rel=1e-9)
    assert ours.precision == pytest.approx(ref["precision"], rel=1e-9)
    assert ours.map == pytest.approx(ref["map"], rel=1e-9)


@pytest.mark.slow
def test_equals_implicit_on_movielens(shared_data: Path) -> None:
    df = pd.read_csv(shared_data / "ml-latest-small" / "ratings.csv")
    df = df[df["rating"] >= 3.5]
    X = Interactions.from_pandas(df, user="userId", item="movieId")
    train, test = leave_k_out(X, k=3, random_state=0)
    ours = evaluate(ItemKNN(neighbours=20).fit(train), train, test, k=10)
    ref = _implicit_metrics(train, test, 10)
    assert ours.ndcg == pytest.approx(ref["ndcg"], rel=1e-6)
    assert ours.precision == pytest.approx(ref["precision"], rel=1e-6)
    assert ours.ndcg > 0.05  # a real signal, not a degenerate split


def test_metrics_by_hand() -> None:
    from persona.evaluate import ranking_metrics

    test = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 0, 1]], dtype=float))
    res = ranking_metrics([[0, 2], [2, 1]], test, [0, 1], k=2, n_items=4)
    assert res.precision == pytest.approx(1 / 3)  # 1 hit of min(2,2)+min(2,1)=3
    assert res.recall == pytest.approx((1 / 2 + 0) / 2)
    assert res.ndcg == pytest.approx((1.0 / (1 + 1 / np.log2(3))) / 2)
    assert res.map == pytest.approx((1 / 2) / 2)
    assert res.coverage == pytest.approx(3 / 4)


def test_callable_package_and_errors() -> None:
    X = block_interactions()
    train, test = leave_k_out(X, k=1, random_state=0)
    model = Popularity().fit(train)
    assert persona.evaluate(model, train, test, k=3) == evaluate(model, train, test, k=3)
    with pytest.raises(ValidationError, match="share"):
        evaluate(model, train, Interactions.from_csr(sp.eye(2, format="csr"), ["a", "b"],
                                                     ["x", "y"]))
    with pytest.raises(ValidationError, match="k"):
        evaluate(model, train, test, k=0)
