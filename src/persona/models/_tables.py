"""Batch results: :class:`RecommendationArrays` (a batch's lists as arrays, no per-item
Python object), the lists of :class:`~persona.schema.Recommendation` built from them, and
the batch as a tidy table (:meth:`RecommendationArrays.to_pandas` and ``to_arrow``).

The table has one row per person and recommended item, in batch order then rank (lists
shorter than ``n`` leave no padding rows):

==========  =============  ==========================================================
column      dtype          value
==========  =============  ==========================================================
``user``    ids as given   the person
``rank``    ``int64``      the item's position in their list, from 1
``item``    ids as given   the item id
``score``   ``float64``    the served score
==========  =============  ==========================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from persona import _frames
from persona.errors import ValidationError
from persona.explain import Recommendations
from persona.schema import Recommendation, check_id_list

__all__ = ["RecommendationArrays", "arrays_columns"]


def arrays_columns(
    items: np.ndarray, scores: np.ndarray, lengths: np.ndarray,
    known: np.ndarray | None, users: Sequence[Any] | None,
) -> dict[str, _frames.Column]:
    """The columns of a batch (``users``: ids given by the caller; else ``known``, the ids
    the batch was scored for)."""
    b = len(lengths)
    if users is not None:
        who: list[Any] = check_id_list(users, "users")
    elif known is not None:
        who = list(known)
    else:
        raise ValidationError(
            "these arrays do not say whom they are for; pass users=, the people of the "
            "batch in order",
            errors=[{"row": None, "field": "users", "message": "missing"}],
        )
    if len(who) != b:
        raise ValidationError(
            f"{len(who)} users for {b} people's lists: pass one id per person, in order",
            errors=[{"row": None, "field": "users", "message": "length differs"}],
        )
    lengths = np.asarray(lengths, dtype=np.int64)
    n = items.shape[1] if items.ndim == 2 else 0
    keep = np.arange(n)[None, :] < lengths[:, None]  # (b, n): the filled positions
    person = np.repeat(np.arange(b), lengths)
    ranks = np.nonzero(keep)[1] + 1
    Column = _frames.Column
    return {
        "user": Column("ids", _objects(who)[person]),
        "rank": Column("int", ranks.astype(np.int64)),
        "item": Column("ids", items[keep]),
        "score": Column("float", np.asarray(scores, dtype=np.float64)[keep]),
    }


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


_recommendation = Recommendation.trusted


def _package(
    r_idx: np.ndarray, c_idx: np.ndarray, scores: np.ndarray, b: int, items: np.ndarray
) -> list[list[Recommendation]]:
    out: list[list[Recommendation]] = [[] for _ in range(b)]
    names = items[c_idx].tolist()
    prev, rank = -1, 0
    for r, name, s in zip(r_idx.tolist(), names, scores.tolist(), strict=True):
        rank = rank + 1 if r == prev else 1
        prev = r
        out[r].append(_recommendation(name, s, rank))
    return out


@dataclass(frozen=True, eq=False)
class RecommendationArrays:
    """Batch results as arrays (see :meth:`Recommender.recommend_arrays`)."""

    items: np.ndarray
    """``(people, n)`` object array of item ids; ``None`` past a shorter list's end."""
    scores: np.ndarray
    """``(people, n)`` float64 served scores; ``nan`` past a shorter list's end."""
    lengths: np.ndarray
    """How many items each person's list has."""
    users: np.ndarray | None = None
    """The people the lists are for, in order (``None``: not known)."""

    @classmethod
    def build(
        cls, r: np.ndarray, c: np.ndarray, sc: np.ndarray, b: int, n: int, items: np.ndarray,
        users: Sequence[str] | None = None,
    ) -> RecommendationArrays:
        who = None if users is None else np.asarray(users, dtype=object)
        if r.size == b * n:  # every list is full (``r`` is sorted, at most n per person)
            return cls(items[c].reshape(b, n), np.asarray(sc, dtype=np.float64).reshape(b, n),
                       np.full(b, n, dtype=np.int64), who)
        lengths = np.bincount(r, minlength=b)
        pos = np.arange(r.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        ids = np.full((b, n), None, dtype=object)
        scores = np.full((b, n), np.nan)
        ids[r, pos] = items[c]
        scores[r, pos] = sc
        return cls(ids, scores, lengths, who)

    def to_pandas(self, users: Sequence[Any] | None = None) -> Any:
        """The batch as a tidy ``pandas.DataFrame``: one row per person and item, columns
        ``user``, ``rank`` (``int64``, from 1), ``item`` and ``score`` (``float64``); no
        padding rows. ``users`` replaces the ids the batch was scored for. Needs pandas
        (``pip install 'persona[pandas]'``).

        >>> import numpy as np, scipy.sparse as sp
        >>> from persona.data import Interactions
        >>> from persona.models import Popularity
        >>> X = Interactions.from_csr(sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0]])),
        ...                          ["u1", "u2"], ["a", "b", "c"])
        >>> Popularity().fit(X).recommend_arrays(["u1", "u2"], n=2).to_pandas()
          user  rank item  score
        0   u1     1    a    2.0
        1   u1     2    b    1.0
        2   u2     1    a    2.0
        3   u2     2    b    1.0
        """
        return _frames.to_pandas(self._columns(users))

    def to_arrow(self, users: Sequence[Any] | None = None) -> Any:
        """:meth:`to_pandas` as a ``pyarrow.Table``. Needs pyarrow
        (``pip install 'persona[arrow]'``)."""
        return _frames.to_arrow(self._columns(users))

    def _columns(self, users: Sequence[Any] | None) -> dict[str, _frames.Column]:
        return arrays_columns(self.items, self.scores, self.lengths, self.users, users)

    def to_lists(
        self, explained_by: Callable[[int, list[str], list[float]], list[Any]] | None = None
    ) -> list[list[Recommendation]]:
        """The same results as lists of :class:`~persona.schema.Recommendation` (each a
        :class:`~persona.explain.Recommendations`).

        ``explained_by(person, items, scores)``, given a person's position in the batch and
        their list (ranked 1, 2, ...), returns the explanation of each item; the
        recommendations are built with them in the same pass."""
        out: list[list[Recommendation]] = []
        for p, (ids, scores, k) in enumerate(zip(
            self.items.tolist(), self.scores.tolist(), self.lengths.tolist(), strict=True
        )):
            if explained_by is None or not k:
                out.append(Recommendations([_recommendation(ids[j], scores[j], j + 1)
                                            for j in range(k)]))
                continue
            ids, scores = ids[:k], scores[:k]
            explanations = explained_by(p, ids, scores)
            out.append(Recommendations([_recommendation(ids[j], scores[j], j + 1,
                                                        explanations[j]) for j in range(k)]))
        return out
