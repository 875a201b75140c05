"""``Recommender.fold_in_many``: many people folded in at once, exactly as one
``fold_in`` each (issue 20: the private choice gave every held-out person their history
back one ``fold_in`` at a time, each copying the whole history, so a fit grew with the
square of the people)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import persona
from persona.data import Interactions
from persona.errors import UnknownItemError, ValidationError
from persona.privacy import DP
from persona.testing import block_interactions

TEXT = {f"i{j}": f"{('kitchen', 'garden', 'office')[j // 8]} product {j}" for j in range(24)}


def _models() -> list[persona.models.Recommender]:
    return [
        persona.ALS(factors=4, iterations=3, random_state=0),
        persona.ALS(factors=4, iterations=2, random_state=0,
                    privacy=DP(epsilon=50.0, delta=1e-6, max_events_per_person=8)),
        persona.BPR(factors=4, iterations=5, random_state=0),
        persona.ItemKNN(neighbours=5),
        persona.Popularity(),
        persona.Popularity(privacy=DP(epsilon=5.0, delta=1e-6, max_events_per_person=8)),
        persona.ContentKNN(item_text=TEXT),
    ]


def _split() -> tuple[Interactions, Interactions]:
    """The training side (every other event of the first 24 people) and the whole data,
    six more people included (new to the model)."""
    X = block_interactions(users_per_group=10)
    M = sp.csr_matrix(X.matrix)
    keep = np.ones(M.nnz, dtype=bool)
    keep[::2] = False
    train = sp.csr_matrix((np.where(keep, M.data, 0.0), M.indices.copy(), M.indptr.copy()),
                          shape=M.shape)[:24]
    train.eliminate_zeros()
    return (Interactions.from_csr(train, X.users.tolist()[:24], X.items.tolist()),
            Interactions.from_csr(M, X.users.tolist(), X.items.tolist()))


@pytest.mark.parametrize("index", range(7))
def test_fold_in_many_is_one_fold_in_per_person(index: int) -> None:
    train, full = _split()
    one, many = _models()[index].fit(train), None
    import copy
    many = copy.deepcopy(one)
    for u in full.users.tolist():
        one.fold_in(u, full.history(u))
    assert many.fold_in_many(full) is many
    assert many.users_.tolist() == one.users_.tolist()
    assert (many.history_ != one.history_).nnz == 0
    assert many.history_.has_sorted_indices
    users = full.users.tolist()
    a = many.recommend_arrays(users, 5, exclude_seen=True)
    b = one.recommend_arrays(users, 5, exclude_seen=True)
    assert np.array_equal(a.items, b.items)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-9, atol=1e-12)
    for u in (users[0], users[-1]):
        np.testing.assert_allclose(many.score(u, list(TEXT)), one.score(u, list(TEXT)),
                                   rtol=1e-9, atol=1e-12)


def test_unknown_items_are_refused_before_anything_changes_or_ignored() -> None:
    train, _ = _split()
    model = persona.ALS(factors=4, iterations=2, random_state=0).fit(train)
    extra = Interactions.from_csr(sp.csr_matrix(np.ones((2, 2))), ["u0", "newcomer"],
                                  ["i0", "not-sold-here"])
    before = (model.users_.copy(), model.history_.copy(), model.score("u0", ["i1"]))
    with pytest.raises(UnknownItemError, match="not-sold-here"):
        model.fold_in_many(extra)
    assert model.users_.tolist() == before[0].tolist()
    assert (model.history_ != before[1]).nnz == 0
    assert model.score("u0", ["i1"]) == pytest.approx(before[2])
    model.fold_in_many(extra, unknown_items="ignore")
    assert model.history_[model.users_.tolist().index("newcomer")].indices.tolist() == [0]
    assert model.history_[model.users_.tolist().index("u0")].indices.tolist() == [0]


@pytest.mark.parametrize(("bad", "message"), [
    ({"u0": {"i0": 1.0}}, "fold_in_many takes Interactions, not dict"),
    ("u0", "fold_in_many takes Interactions, not str"),
])
def test_what_is_not_interactions_is_refused(bad: object, message: str) -> None:
    train, _ = _split()
    model = persona.Popularity().fit(train)
    with pytest.raises(ValidationError) as info:
        model.fold_in_many(bad)  # type: ignore[arg-type]
    assert str(info.value) == message
    with pytest.raises(ValidationError, match="unknown_items must be 'raise' or 'ignore'"):
        model.fold_in_many(train, unknown_items="skip")


def test_an_unfitted_model_refuses() -> None:
    _, full = _split()
    with pytest.raises(persona.errors.PersonaError, match="fit"):
        persona.ALS().fold_in_many(full)
