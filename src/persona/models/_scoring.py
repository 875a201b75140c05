"""How a fitted model turns people into top-n lists: the scoring hooks each model fills
in, id lookups, filters (exclude, include, blocked items, business rules) and the batched,
threaded selection behind ``recommend_arrays`` (the kernels are in ``_topk``, the threads
in ``_threads``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from persona.errors import UnknownItemError, UnknownUserError, ValidationError
from persona.models import _block
from persona.models._estimator import Estimator
from persona.models._tables import RecommendationArrays, _package
from persona.models._threads import _block_size, run_blocks
from persona.models._topk import select_block
from persona.schema import Recommendation, check_id, check_id_list, check_ids, check_top_n

__all__ = ["BusinessRule", "Scoring"]

#: A business-rule hook: ``rule(person_id, item_ids) -> keep_mask`` (boolean, one per item).
BusinessRule = Callable[[str, np.ndarray], np.ndarray]


def _user_list(users: Any) -> list[str]:
    """``users`` as a list of ids, refusing a single id (a str is not a list of people)."""
    return check_id_list(users, "users")


class Scoring(Estimator):
    """Base of :class:`~persona.models.Recommender`: scoring and top-n selection."""

    personalised: ClassVar[bool]
    users_: np.ndarray
    items_: np.ndarray
    history_: sp.csr_matrix
    _uidx: dict[str, int]
    _iidx: dict[str, int]

    def _rank_scores(self, rows: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Dense ``(len(rows), n_items)`` scores used to pick candidates."""
        raise NotImplementedError

    def _exact_scores(self, rows: np.ndarray, cand: np.ndarray, approx: np.ndarray) -> np.ndarray:
        """Served scores of candidate items ``cand`` (same shape); default: the rank scores."""
        return approx

    def _rank_margin(self, rows: np.ndarray) -> np.ndarray | None:
        """How far, per row, a rank score may lie from the served score: ``None`` when
        the rank scores are the served ones. Models that rank in lower precision return a
        proven bound (twice the rounding error), and every item within it of a row's
        ``n``-th best rank score is re-scored exactly (see :func:`_top_per_row`)."""
        return None

    def _similar_scores(self, item: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _row(self, user: str | int) -> int:
        try:
            return self._uidx[user]  # type: ignore[index]  # (an int is refused below)
        except (KeyError, TypeError):
            self._check_fitted()
            key = check_id(user, "user")  # refuses what no id can be; NFC as the model keeps
            if key in self._uidx:
                return self._uidx[key]
            raise UnknownUserError(
                f"{user!r} is not in the model; use fold_in({user!r}, history) for someone "
                "new, or a non-personalised model such as Popularity",
                user=user,
            ) from None

    def _rows(self, users: list[str]) -> np.ndarray:
        """:meth:`_row` of each of ``users`` (one dict lookup each, no call per person)."""
        try:
            return np.fromiter(map(self._uidx.__getitem__, users), dtype=np.int64,
                               count=len(users))
        except (KeyError, TypeError):
            # raises UnknownUserError for the first one not in the model; else ids found
            # under their NFC spelling
            return np.fromiter(map(self._row, users), dtype=np.int64, count=len(users))

    def _item(self, item: str) -> int:
        try:
            return self._iidx[item]
        except (KeyError, TypeError):
            self._check_fitted()
            key = check_id(item, "item")
            if key in self._iidx:
                return self._iidx[key]
            raise UnknownItemError(
                f"{item!r} is not in the model's catalogue; refit to include new items",
                item=item,
            ) from None

    def _item_rows(self, items: Iterable[str] | None, what: str) -> np.ndarray | None:
        if items is None:
            return None
        if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
            raise ValidationError(
                f"{what} must be a list of item ids, not a {type(items).__name__}; "
                f"e.g. {what}=['sku-1']"
            )
        return np.fromiter((self._item(i) for i in items), dtype=np.int64)

    def recommend_arrays(
        self,
        users: Sequence[str],
        n: int = 10,
        *,
        exclude_seen: bool | None = None,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
        rule: BusinessRule | None = None,
        block_size: int | None = None,
    ) -> RecommendationArrays:
        """:meth:`recommend_batch` as arrays: no per-item Python objects.

        Returns
        -------
        RecommendationArrays
            ``items`` (``(len(users), n)`` object array of item ids, ``None`` where a list is
            shorter than ``n``), ``scores`` (float64, ``nan`` there) and ``lengths``.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from persona.data import Interactions
        >>> from persona.models import Popularity
        >>> X = Interactions.from_csr(sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0]])),
        ...                          ["u1", "u2"], ["a", "b", "c"])
        >>> res = Popularity().fit(X).recommend_arrays(["u1", "u2"], n=2)
        >>> res.items.tolist(), res.lengths.tolist()
        ([['a', 'b'], ['a', 'b']], [2, 2])
        """
        self._check_fitted()
        users = _user_list(users)
        if self.personalised or exclude_seen:
            rows = self._rows(users)
        else:
            check_ids(users, "users")
            rows = np.zeros(len(users), dtype=np.int64)
        n = self._check_n(n, exclude_seen)
        filters = self._filters(exclude, include)
        self._prepare_rows(rows)
        threads = self._serving_threads()
        block_size = _block_size(block_size, self._first_pass_items(n, rule), len(users),
                                 threads)
        starts = list(range(0, len(users), block_size))

        def run(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            stop = start + block_size
            r, c, sc = self._select(rows[start:stop], users[start:stop], n,
                                    exclude_seen, filters, rule)
            return r + start, c, sc

        # a business rule is the caller's Python, called per person: not on the threads
        parts = run_blocks(starts, run, threads, pooled=rule is None)
        if parts:
            r = np.concatenate([p[0] for p in parts])
            c = np.concatenate([p[1] for p in parts])
            sc = np.concatenate([p[2] for p in parts])
        else:
            r = c = np.zeros(0, dtype=np.int64)
            sc = np.zeros(0)
        return RecommendationArrays.build(r, c, sc, len(users), n, self.items_, users)

    def _serving_threads(self) -> int:
        wanted = getattr(getattr(self, "config_", None), "num_threads", 1)
        return int(wanted or os.cpu_count() or 1)

    def _prepare_rows(self, rows: np.ndarray) -> None:
        """Make per-person state for ``rows`` ready before (threaded) scoring."""

    def _first_pass_items(self, n: int, rule: BusinessRule | None) -> int:
        """How many items each person of a batch is scored on first (sizes the blocks)."""
        return len(self.items_)

    def _check_n(self, n: int, exclude_seen: bool | None) -> int:
        return min(check_top_n(n), len(self.items_))

    def _filters(
        self, exclude: Iterable[str] | None, include: Iterable[str] | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        exc = _block.with_blocked(self, self._item_rows(exclude, "exclude"))
        inc = self._item_rows(include, "include")
        if inc is not None:
            keep = np.zeros(len(self.items_), dtype=bool)
            keep[inc] = True
            inc = np.flatnonzero(~keep)  # what 'include' leaves out
        return exc, inc

    def _recommend_rows(
        self,
        rows: np.ndarray,
        users: list[str],
        n: int,
        exclude_seen: bool | None,
        exclude: Iterable[str] | None,
        include: Iterable[str] | None,
        rule: BusinessRule | None,
    ) -> list[list[Recommendation]]:
        n = self._check_n(n, exclude_seen)
        filters = self._filters(exclude, include)
        self._prepare_rows(rows)
        r, c, sc = self._select(rows, users, n, exclude_seen, filters, rule)
        return _package(r, c, sc, len(rows), self.items_)

    def _select(
        self,
        rows: np.ndarray,
        users: list[str],
        n: int,
        exclude_seen: bool | None,
        filters: tuple[np.ndarray | None, np.ndarray | None],
        rule: BusinessRule | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top ``n`` of each row as flat ``(block_row, item, served_score)`` arrays
        (:func:`~persona.models._topk.select_block`)."""
        return select_block(self, rows, users, n, exclude_seen, filters, rule)
