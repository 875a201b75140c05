"""Several k, MRR, hit rate, AUC and per-person results of ``persona.evaluate``.

The reference for every metric implicit also defines is ``implicit.evaluation``
itself, run on the same recommended lists or on an implicit model holding the same factors.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from persona.data import Interactions, leave_k_out
from persona.errors import ValidationError
from persona.evaluate import EvaluationReport, EvaluationResult, evaluate, ranking_metrics
from persona.models import ALS, ItemKNN, Popularity
from persona.testing import block_interactions

IMPLICIT_METRICS = ("precision", "map", "ndcg", "auc")


class _FixedLists:
    """An implicit-style model whose ``recommend`` returns given lists (-1 pads a short list,
    as older implicit releases did; either way a padded place is a miss)."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids

    def recommend(
        self, userids: np.ndarray, user_items: sp.csr_matrix, N: int
    ) -> tuple[np.ndarray, np.ndarray]:
        ids = np.ascontiguousarray(self.ids[np.asarray(userids), :N], dtype=np.int32)
        return ids, np.zeros(ids.shape, dtype=np.float32)


def _persona_lists(model: Any, train: Interactions, test: Interactions, n: int) -> np.ndarray:
    """Each person's top ``n`` as catalogue columns (-1 past a short list's end)."""
    col = {str(i): j for j, i in enumerate(train.items)}
    ids = np.full((train.n_users, n), -1, dtype=np.int32)
    rows = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    res = model.recommend_arrays([str(u) for u in train.users[rows]], n=n, exclude_seen=True)
    for r, items, length in zip(rows, res.items, res.lengths, strict=True):
        ids[r, :length] = [col[i] for i in items[:length]]
    return ids


def _implicit(model: Any, train: Interactions, test: Interactions, k: int) -> dict[str, float]:
    from implicit.evaluation import ranking_metrics_at_k

    tr = sp.csr_matrix(train.matrix, dtype=np.float32)
    te = sp.csr_matrix(test.matrix, dtype=np.float32)
    with threadpool_limits(1, "blas"):
        return ranking_metrics_at_k(model, tr, te, K=k, show_progress=False)


def _check_equal(ours: EvaluationResult, ref: dict[str, float], rel: float = 1e-12) -> None:
    for name in IMPLICIT_METRICS:
        assert getattr(ours, name) == pytest.approx(ref[name], rel=rel), name


# ------------------------------------------------------------------ several k
def test_several_k_equal_one_k_at_a_time() -> None:
    X = block_interactions(groups=4, users_per_group=25, items_per_group=12, density=0.5)
    train, test = leave_k_out(X, k=3, random_state=2)
    model = ItemKNN(neighbours=20).fit(train)
    report = evaluate(model, train, test, k=[5, 10])
    assert isinstance(report, EvaluationReport)
    assert report.k == (5, 10)
    for k in (5, 10):
        single = evaluate(model, train, test, k=k)
        assert isinstance(single, EvaluationResult)
        assert report.at[k] == single
        assert report[k] == single
    assert evaluate(model, train, test, k=(10, 5)).k == (10, 5)


@pytest.mark.parametrize("bad", [True, "5", [5, 5], [0], [], [5, True], 5.0, [3, -1], ["5"],
                                 {5, 10}, None])
def test_bad_k_is_refused_with_the_fix(bad: object) -> None:
    X = block_interactions()
    train, test = leave_k_out(X, k=1, random_state=0)
    model = Popularity().fit(train)
    with pytest.raises(ValidationError, match="k must be a positive integer or a list") as err:
        evaluate(model, train, test, k=bad)  # type: ignore[arg-type]
    assert err.value.code == "validation_error"


def test_numpy_integers_are_taken() -> None:
    X = block_interactions()
    train, test = leave_k_out(X, k=1, random_state=0)
    model = Popularity().fit(train)
    assert evaluate(model, train, test, k=np.int64(3)) == evaluate(model, train, test, k=3)
    assert evaluate(model, train, test, k=[np.int32(3)]).k == (3,)


# ------------------------------------------------------------------ definitions by hand
def test_new_metrics_by_hand() -> None:
    # 6 items; person 0 likes {0, 1}, person 1 likes {5}, person 2 likes {2, 3, 4}
    test = sp.csr_matrix(np.array([[1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1],
                                   [0, 0, 1, 1, 1, 0]], dtype=float))
    lists = [[3, 0, 1], [0, 1, 2], [2]]  # person 2's list is short: places 2, 3 are misses
    res = ranking_metrics(lists, test, [0, 1, 2], k=3, n_items=6)
    # MRR: first hit at place 2, none, place 1
    assert res.mrr == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert res.hit_rate == pytest.approx(2 / 3)
    # implicit's AUC at k: misses in the list count the hits above them; the N - misses
    # negatives past the list get (hits + P) / 2 each; divided by P * N
    auc0 = (0 + (2 + 2) / 2 * (4 - 1)) / (2 * 4)
    auc1 = (0 + 0 + 0 + (0 + 1) / 2 * (5 - 3)) / (1 * 5)
    auc2 = (1 + 1 + (1 + 3) / 2 * (3 - 2)) / (3 * 3)
    assert res.auc == pytest.approx((auc0 + auc1 + auc2) / 3)
    assert res.precision == pytest.approx(3 / (2 + 1 + 3))
    pp = res.per_person
    assert list(pp["mrr@3"]) == pytest.approx([0.5, 0.0, 1.0])
    assert list(pp["auc@3"]) == pytest.approx([auc0, auc1, auc2])
    assert list(pp["hits@3"]) == [2, 0, 1]
    assert list(pp["n_test"]) == [2, 1, 3]


def test_same_lists_as_implicit_on_synthetic_cases() -> None:
    rng = np.random.default_rng(7)
    for trial in range(20):
        n_users, n_items = int(rng.integers(3, 30)), int(rng.integers(8, 40))
        test = sp.random(n_users, n_items, density=0.2, format="csr", random_state=trial)
        test.data[:] = 1.0
        k = int(rng.integers(1, 8))
        ids = np.full((n_users, k), -1, dtype=np.int32)
        for u in range(n_users):
            length = int(rng.integers(0, k + 1))  # some lists are short, some empty
            ids[u, :length] = rng.choice(n_items, size=length, replace=False)
        rows = np.flatnonzero(np.diff(test.indptr) > 0)
        if rows.size == 0:
            continue
        lists = [[int(i) for i in ids[r] if i >= 0] for r in rows]
        ours = ranking_metrics(lists, test, rows.tolist(), k=k, n_items=n_items)
        from implicit.evaluation import ranking_metrics_at_k

        ref = ranking_metrics_at_k(_FixedLists(ids), sp.csr_matrix((n_users, n_items)),
                                   test, K=k, show_progress=False)
        _check_equal(ours, ref)


def test_same_lists_as_implicit_on_a_split() -> None:
    X = block_interactions(groups=4, users_per_group=30, items_per_group=12, density=0.5)
    train, test = leave_k_out(X, k=2, random_state=1)
    model = ItemKNN(neighbours=20).fit(train)
    report = evaluate(model, train, test, k=[1, 5, 10])
    for k in (1, 5, 10):
        _check_equal(report.at[k], _implicit(_FixedLists(_persona_lists(model, train, test, k)),
                                             train, test, k))


def _implicit_als_with_served_factors(model: ALS, train: Interactions) -> Any:
    """implicit's own ALS holding persona's item factors and the person vectors persona
    serves (recovered from the public scores), in float64 as persona ranks."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.utils import ParameterWarning

    Y = np.asarray(model.item_factors_, dtype=np.float64)
    items = [str(i) for i in train.items]
    S = np.vstack([model.score(str(u), items) for u in train.users])
    U = np.linalg.lstsq(Y, S.T, rcond=None)[0].T
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ParameterWarning)
        raw = AlternatingLeastSquares(factors=Y.shape[1], dtype=np.float64, num_threads=1)
    raw.item_factors, raw.user_factors = Y, np.ascontiguousarray(U)
    return raw


def test_same_factors_as_implicit_als_on_synthetic_split() -> None:
    X = block_interactions(groups=3, users_per_group=20, items_per_group=10, density=0.5)
    train, test = leave_k_out(X, k=2, random_state=3)
    model = ALS(factors=6, iterations=4, num_threads=1, random_state=0).fit(train)
    raw = _implicit_als_with_served_factors(model, train)
    report = evaluate(model, train, test, k=[3, 5])
    for k in (3, 5):
        _check_equal(report.at[k], _implicit(raw, train, test, k), rel=1e-9)


@pytest.mark.slow
def test_same_factors_as_implicit_als_on_movielens(shared_data: Path) -> None:
    df = pd.read_csv(shared_data / "ml-latest-small" / "ratings.csv")
    df = df[df["rating"] >= 4.0]
    X = Interactions.from_pandas(df, user="userId", item="movieId")
    train, test = leave_k_out(X, k=5, random_state=0)
    model = ALS(factors=16, iterations=4, num_threads=1, random_state=0).fit(train)
    raw = _implicit_als_with_served_factors(model, train)
    report = evaluate(model, train, test, k=[5, 10, 20])
    for k in (5, 10, 20):
        ref = _implicit(raw, train, test, k)
        _check_equal(report.at[k], ref, rel=1e-9)
    assert report.at[10].ndcg > 0.05 and report.at[10].auc > 0.5  # a real signal
    assert report.at[5].hit_rate <= report.at[10].hit_rate <= report.at[20].hit_rate
    assert report.n_users == len(report.per_person) == int((np.diff(test.matrix.indptr) > 0).sum())


# ------------------------------------------------------------------ per person
def test_per_person_rows_add_up_to_the_totals() -> None:
    X = block_interactions(groups=3, users_per_group=20, items_per_group=10, density=0.5)
    train, test = leave_k_out(X, k=2, random_state=0)
    report = evaluate(ItemKNN().fit(train), train, test, k=[2, 4])
    pp = report.per_person
    tested = train.users[np.diff(test.matrix.indptr) > 0]
    assert list(pp["user"]) == [str(u) for u in tested]
    assert len(pp) == report.n_users == len(tested)
    for k in (2, 4):
        res = report.at[k]
        for name in ("recall", "ndcg", "map", "mrr", "hit_rate", "auc"):
            assert float(np.mean(pp[f"{name}@{k}"])) == pytest.approx(getattr(res, name)), name
        attainable = np.minimum(k, pp["n_test"])
        assert pp[f"hits@{k}"].sum() / attainable.sum() == pytest.approx(res.precision)
        assert pp[f"precision@{k}"] == pytest.approx(pp[f"hits@{k}"] / attainable)
    records = pp.to_records()
    assert len(records) == len(pp) and records[0]["user"] == pp["user"][0]
    assert set(records[0]) == set(pp.columns)
    frame = pp.to_pandas()
    assert list(frame.columns) == list(pp.columns)
    assert frame["ndcg@4"].mean() == pytest.approx(report.at[4].ndcg)
    with pytest.raises(ValidationError, match="ndcg@3"):
        pp["ndcg@3"]


def test_tables_as_pandas() -> None:
    X = block_interactions()
    train, test = leave_k_out(X, k=1, random_state=0)
    model = ItemKNN().fit(train)
    report = evaluate(model, train, test, k=[3, 6])
    frame = report.to_pandas()
    assert list(frame.index) == [3, 6]
    assert frame.loc[6, "ndcg"] == report.at[6].ndcg
    assert {"precision", "recall", "ndcg", "map", "mrr", "hit_rate", "auc", "coverage"} <= set(
        frame.columns)
    single = evaluate(model, train, test, k=3)
    assert single.to_pandas().loc[3, "auc"] == single.auc
    assert report.as_dict()["mrr@6"] == report.at[6].mrr
    assert single.as_dict()["mrr@3"] == single.mrr
    # today's flat fields are still in a single-k result's dump
    assert {"k", "precision", "recall", "ndcg", "map", "coverage", "n_users"} <= set(
        single.model_dump())
