"""k-fold cross-validation by person: ``person_folds`` and ``cross_validate``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import persona
from persona.data import Interactions
from persona.errors import ValidationError
from persona.evaluate import cross_validate, evaluate, person_folds
from persona.models import ALS, ItemKNN
from persona.testing import block_interactions


def _dense(X: Interactions) -> np.ndarray:
    return X.matrix.toarray()


def test_folds_split_people_and_hold_out_within_each_person() -> None:
    X = block_interactions(groups=3, users_per_group=20, items_per_group=10, density=0.5)
    counts = np.diff(X.matrix.indptr)
    eligible = set(np.flatnonzero(counts > 2).tolist())
    seen: list[int] = []
    splits = list(person_folds(X, folds=4, holdout=2, random_state=0))
    assert len(splits) == 4
    for train, test in splits:
        assert train.shape == test.shape == X.shape
        assert list(train.users) == list(X.users) and list(train.items) == list(X.items)
        np.testing.assert_array_equal(_dense(train) + _dense(test), _dense(X))
        tested = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
        assert set(tested.tolist()) <= eligible
        assert (np.diff(test.matrix.indptr)[tested] == 2).all()  # 2 held out each
        # the tested people keep the rest of their items in training
        assert (np.diff(train.matrix.indptr)[tested] == counts[tested] - 2).all()
        seen.extend(tested.tolist())
    assert sorted(seen) == sorted(eligible)  # every eligible person tested exactly once
    sizes = [int((np.diff(t.matrix.indptr) > 0).sum()) for _, t in splits]
    assert max(sizes) - min(sizes) <= 1


def test_folds_are_reproducible_and_differ_by_seed() -> None:
    X = block_interactions()
    a = [(_dense(tr), _dense(te)) for tr, te in person_folds(X, folds=3, random_state=1)]
    b = [(_dense(tr), _dense(te)) for tr, te in person_folds(X, folds=3, random_state=1)]
    c = [(_dense(tr), _dense(te)) for tr, te in person_folds(X, folds=3, random_state=2)]
    assert all((x[1] == y[1]).all() for x, y in zip(a, b, strict=True))
    assert any((x[1] != y[1]).any() for x, y in zip(a, c, strict=True))


def test_time_holdout_takes_each_persons_latest() -> None:
    df = pd.DataFrame({
        "user": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
        "item": ["x", "y", "z"] * 3,
        "at": pd.to_datetime(["2026-01-01", "2026-01-03", "2026-01-02"] * 3),
    })
    X = Interactions.from_pandas(df, at="at", tz="UTC")
    for _, test in person_folds(X, folds=3, holdout=1, by="time", random_state=0):
        tested = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
        assert len(tested) == 1
        assert test.history(str(test.users[tested[0]])) == {"y": 1.0}


def test_cross_validate_matches_evaluate_on_each_fold() -> None:
    X = block_interactions(groups=3, users_per_group=20, items_per_group=10, density=0.5)
    model = ItemKNN(neighbours=10)
    cv = cross_validate(model, X, folds=3, k=[3, 5], holdout=2, random_state=0)
    assert not model.is_fitted  # the given model is a template: each fold fits a clone
    assert len(cv.results) == 3
    for result, (train, test) in zip(
        cv.results, person_folds(X, folds=3, holdout=2, random_state=0), strict=True
    ):
        assert result == evaluate(ItemKNN(neighbours=10).fit(train), train, test, k=[3, 5])
    ndcg = np.array([r.at[5].ndcg for r in cv.results])
    np.testing.assert_array_equal(cv.scores["ndcg@5"], ndcg)
    assert cv.mean["ndcg@5"] == pytest.approx(ndcg.mean())
    assert cv.sd["ndcg@5"] == pytest.approx(ndcg.std(ddof=1))
    frame = cv.to_pandas()
    assert list(frame.index) == [0, 1, 2] and frame.loc[1, "auc@3"] == cv.results[1].at[3].auc
    pp = cv.per_person
    assert len(pp) == sum(r.n_users for r in cv.results)
    assert sorted(set(pp["fold"].tolist())) == [0, 1, 2]
    assert "±" in repr(cv) and "ndcg@5" in repr(cv)


def test_cross_validate_takes_a_factory_and_an_int_k() -> None:
    X = block_interactions()
    cv = cross_validate(lambda: ALS(factors=4, iterations=2, num_threads=1, random_state=0),
                        X, folds=2, k=4, random_state=0)
    assert cv.k == 4 and set(cv.mean) >= {"ndcg@4", "auc@4", "mrr@4", "hit_rate@4"}
    assert persona.evaluate.cross_validate is cross_validate


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"folds": 1}, "folds must be an integer of at least 2"),
        ({"folds": True}, "folds must be an integer of at least 2"),
        ({"folds": "3"}, "folds must be an integer of at least 2"),
        ({"folds": 1000}, "only"),
        ({"holdout": 0}, "holdout must be a positive integer"),
        ({"holdout": True}, "holdout must be a positive integer"),
        ({"by": "sideways"}, "by must be"),
        ({"k": [5, 5]}, "k must be a positive integer or a list"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, match: str) -> None:
    X = block_interactions()
    with pytest.raises(ValidationError, match=match):
        cross_validate(ItemKNN(), X, **kwargs)


def test_a_model_that_is_not_one_is_refused() -> None:
    X = block_interactions()
    with pytest.raises(ValidationError, match="unfitted persona model or a function"):
        cross_validate("ALS", X)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="returned"):
        cross_validate(lambda: 3, X, folds=2)  # type: ignore[arg-type, return-value]


def test_the_folds_keep_the_items_the_model_blocks() -> None:
    """A model's blocked items (model.block) are never served, so every fold's fresh copy
    blocks them too: here the one item everyone tests on is blocked, so nothing hits."""
    rows = [{"user": f"u{u}", "item": f"i{i}",
             "at": pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=j)}
            for u in range(40)
            for j, i in enumerate([1 + (u % 7), 1 + ((u + 3) % 7), 0])]  # i0: everyone's latest
    X = Interactions.from_pandas(pd.DataFrame(rows), at="at")
    plain = cross_validate(persona.Popularity(), X, folds=4, k=1, by="time", random_state=0)
    model = persona.Popularity().block(["i0"])
    blocked = cross_validate(model, X, folds=4, k=1, by="time", random_state=0)
    assert plain.mean["hit_rate@1"] == 1.0 and blocked.mean["hit_rate@1"] == 0.0
    assert model.blocked_ == {"i0"} and not model.is_fitted
