"""What a model tells ``persona.explain``: its attribution, ranks and counterfactuals.

``persona.explain`` sees a model only through its public contract
(:meth:`~persona.models.Recommender.attribute`, :attr:`~persona.models.Recommender.
attribution_kind`, :meth:`~persona.models.Recommender.rank_of` and
:meth:`~persona.models.Recommender.counterfactual`); this module computes them from the
model's own state (its score decomposition, similarities, history and fold-in).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from persona.schema import Counterfactual

if TYPE_CHECKING:
    from persona.models._base import Recommender

__all__ = ["Attribution", "AttributionKind", "attribute", "counterfactual", "rank", "sandbox"]

AttributionKind = Literal["decomposition", "justification", "non_personalised"]
_SANDBOX_USER = "\x00persona-counterfactual"


@dataclass(frozen=True, slots=True, eq=False)
class Attribution:
    """How a model's scores of some items for one person come from their history
    (:meth:`Recommender.attribute`).

    ``kind="decomposition"``: ``parts[:, k]`` is the exact split of the served score of
    ``items[k]`` over the history items (the parts sum to the score up to float64
    rounding). ``"justification"`` (models with no exact split): ``parts[:, k]`` holds the
    similarity of each history item to ``items[k]``. ``"non_personalised"``: no history,
    no parts.
    """

    kind: AttributionKind
    items: list[str]
    """The explained items (ids as the model keeps them)."""
    history: list[str]
    """The person's history items that the parts are over, in the rows' order."""
    parts: np.ndarray
    """``(len(history), len(items))`` float64."""
    seen: list[bool]
    """Whether each item is in the person's own history."""


def kind(model: Recommender, exact: bool) -> AttributionKind:
    """The kind of attribution ``model`` gives (``exact``: it has a score decomposition)."""
    if not model.personalised:
        return "non_personalised"
    return "decomposition" if exact else "justification"


def _columns(model: Any, items: Sequence[str]) -> np.ndarray:
    iidx = model._iidx
    try:
        return np.fromiter(map(iidx.__getitem__, items), dtype=np.int64, count=len(items))
    except (KeyError, TypeError):  # refuses unknown items; ids found under their NFC spelling
        return np.fromiter(map(model._item, items), dtype=np.int64, count=len(items))


def attribute(model: Any, user: str, items: Sequence[str],
              how: AttributionKind) -> Attribution:
    """:meth:`Recommender.attribute` (``how``: the model's attribution kind)."""
    items = list(items)
    cols = _columns(model, items)
    n = len(items)
    if how == "non_personalised":
        return Attribution(how, items, [], np.zeros((0, n)), [False] * n)
    row = model._row(user)
    h = model.history_
    own = h.indices[h.indptr[row]:h.indptr[row + 1]]  # sorted (CSR with sorted indices)
    if how == "decomposition":
        hist, parts = model._contribution_matrix(row, cols)
    else:
        hist = own
        parts = np.empty((len(hist), n))
        for k, j in enumerate(cols.tolist()):
            parts[:, k] = np.asarray(model._similar_scores(int(j)), dtype=np.float64)[hist]
    if len(own):
        at = np.minimum(np.searchsorted(own, cols), len(own) - 1)
        seen = (own[at] == cols).tolist()
    else:
        seen = [False] * n
    names = model.items_[hist].tolist() if len(hist) else []
    return Attribution(how, items, names, parts, seen)


def _all_scores(model: Any, row: int | None) -> np.ndarray:
    """The served score of every catalogue item for one person (as ``model.score``)."""
    rows = np.array([0 if row is None else row], dtype=np.int64)
    model._prepare_rows(rows)
    vectors = getattr(model, "_user_vectors64", None)
    Y = getattr(model, "_Y64", None)
    if vectors is not None and Y is not None:  # factor models: one float64 product
        return np.asarray(Y @ vectors(rows)[0], dtype=np.float64)
    S = model._rank_scores(rows)
    m = S.shape[1]
    exact = model._exact_scores(np.repeat(rows, m), np.arange(m), S[0])
    return np.array(exact, dtype=np.float64)


def rank(model: Any, user: str, item: str, score: float | None = None) -> int | None:
    """:meth:`Recommender.rank_of`: the rank among the items ``recommend`` would consider
    (seen items are not ranked); ``score``: the item's served score, when known."""
    j = model._item(item)
    row = model._row(user) if model.personalised else None
    s = _all_scores(model, row)
    if score is not None:
        s[j] = score  # exactly as served
    if row is not None:
        h = model.history_
        seen = h.indices[h.indptr[row]:h.indptr[row + 1]]
        if np.any(seen == j):
            return None
        s[seen] = -np.inf
    value = s[j]
    ahead = np.count_nonzero(s > value) + np.count_nonzero(s[:j] == value)
    return int(ahead) + 1


def sandbox(model: Any) -> Any:
    """A shallow copy that ``fold_in`` of a new person can change without touching
    ``model`` (fold-in replaces, never mutates, the shared arrays when it adds a row)."""
    twin = copy.copy(model)
    twin.__dict__["_uidx"] = dict(model._uidx)
    return twin


def counterfactual(
    model: Any, user: str, item: str, candidates: Sequence[str], n: int,
    labels: Mapping[str, str], max_steps: int = 10,
) -> Counterfactual:
    """:meth:`Recommender.counterfactual`: greedy search (in the order of ``candidates``,
    largest contribution first) for history items whose removal takes ``item`` out of
    ``user``'s top ``n``; each step is re-scored through fold-in."""
    recs = model.recommend(user, n=n, explain=False)
    ranks = {r.item: r.rank for r in recs}
    before = ranks.get(item)
    if before is None:
        return Counterfactual(removed=[], removed_labels=[], verified=False, n=n,
                              rank_before=None, rank_after=None)
    row = model._row(user)
    h = model.history_
    a, b = h.indptr[row], h.indptr[row + 1]
    history = dict(zip(model.items_[h.indices[a:b]].tolist(), h.data[a:b].tolist(), strict=True))
    twin = sandbox(model)
    removed: list[str] = []
    after: int | None = before
    for it in list(candidates)[:max_steps]:
        removed.append(it)
        reduced = {k: v for k, v in history.items() if k not in removed}
        twin._fold_in(_SANDBOX_USER, reduced)  # an id no person can have (a control char)
        top = twin.recommend(_SANDBOX_USER, n=n, exclude=removed, explain=False)
        after = next((r.rank for r in top if r.item == item), None)
        if after is None:
            return Counterfactual(
                removed=removed, removed_labels=[labels.get(x, x) for x in removed],
                verified=True, n=n, rank_before=before, rank_after=None,
            )
    return Counterfactual(removed=[], removed_labels=[], verified=False, n=n,
                          rank_before=before, rank_after=after)
