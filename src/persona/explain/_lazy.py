"""Served explanations, built on first read.

Serving a list computes nothing of its explanations but what identifies them: the person,
the items, the scores, and a snapshot of the model that served them (a shallow copy:
the models replace their arrays when they change, never write into them, so the snapshot
keeps the very state that served the scores). The model's attribution (its public
:meth:`~persona.models.Recommender.attribute`: the score decomposition), the
:class:`~persona.explain.Reason` objects, the totals (:class:`Evidence`, :class:`Rest`) and
the text are computed when someone reads them, once per person and call.

``detail="summary"`` lists only the reasons the text names (at least the largest one for
the item, when there is one), the others totalled in ``rest``; rendered from those, the text
is the full form's, word for word (a property test checks it on real data).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from persona.schema import Reason

if TYPE_CHECKING:
    from persona.explain._protocol import Attributed, Attribution

__all__ = [
    "TOP",
    "Namer",
    "Reasons",
    "Said",
    "Split",
    "snapshot",
    "split_reasons",
]

#: Positive reasons the text may name (it names at most three).
TOP = 3
#: Reasons of a justification (most similar history items): the most listed in full.
JUSTIFICATION_LIMIT = 20

make_reason = Reason.trusted  # (the served reasons' fast constructor)


def snapshot(model: Attributed) -> Attributed:
    """The serving state of ``model`` for explanations read later (see the module doc)."""
    return copy.copy(model)


class Said(NamedTuple):
    """The fields of a :class:`Reason` that the text reads (what a summary's text is
    rendered from before its reasons are built)."""

    item: str
    label: str
    contribution: float | None
    similarity: float | None
    feature: str | None


class Namer:
    """Which reasons a summary lists: called with the top reasons (and the reasons of the
    items in ``wanted``), it returns the ids the full form's text names, plus ``wanted``."""

    __slots__ = ("fn", "key", "text", "wanted")

    def __init__(self, fn: Callable[[list[Said]], tuple[list[str], str]],
                 wanted: frozenset[str] = frozenset(), key: tuple[Any, ...] = ()) -> None:
        self.fn, self.wanted, self.key = fn, wanted, key
        self.text: str | None = None

    def __call__(self, reasons: list[Said]) -> set[str]:
        named, self.text = self.fn(reasons)
        return set(named) | self.wanted


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Equal values, compared by identity first (the fields are shared, not copied)."""
    return len(a) == len(b) and all(x is y or x == y for x, y in zip(a, b, strict=True))


class Split:
    """One person's reasons for the items of one call: the model's decomposition
    (``kind="decomposition"``) or the similarity of each history item to each item
    (``"justification"``), from one :meth:`~persona.models.Recommender.attribute` call for
    all the items, made on first read (``attribution``: one made already)."""

    __slots__ = ("_att", "_head", "_keep", "_orders", "_positive", "_ranked", "_values",
                 "_whence", "feature", "items", "kind", "labels", "meta", "model", "shown",
                 "user")

    def __init__(self, model: Attributed, kind: str, user: str, items: list[str],
                 labels: Mapping[str, str], feature: str | None,
                 meta: Mapping[str, tuple[str, datetime]] | None,
                 attribution: Attribution | None = None) -> None:
        self.model, self.kind, self.user, self.items = model, kind, user, items
        self.labels, self.feature, self.meta = labels, feature, meta
        self._att = attribution
        # sorted on first need, for every item at once; each item's lists made on demand
        self._ranked: np.ndarray | None = None
        self._values: np.ndarray | None = None
        self._keep: np.ndarray | None = None  # None: every listed value is kept
        self._orders: list[list[int] | None] = []
        self._head: list[tuple[list[int], list[float]]] = []
        self._positive: list[int] = []
        self.shown: list[str] = []
        self._whence: list[tuple[str | None, datetime | None]] = []

    def attribution(self) -> Attribution:
        """The model's attribution of the items (made on first need)."""
        if self._att is None:
            self._att = self.model.attribute(self.user, self.items)
        return self._att

    def parts(self) -> np.ndarray:
        return self.attribution().parts

    def order(self, k: int) -> list[int]:
        """Every reason's position for item ``k``, largest first (decompositions: the
        non-zero parts; justifications: the positive ones of the largest
        :data:`JUSTIFICATION_LIMIT`), sorted for all the items at once."""
        if self._ranked is None:
            self._rank()
        order = self._orders[k]
        if order is None:
            ranked = self._ranked[:, k]  # type: ignore[index]
            order = self._orders[k] = (ranked if self._keep is None
                                       else ranked[self._keep[:, k]]).tolist()
        return order

    def _rank(self) -> None:
        parts = self.parts()
        ranked = np.argsort(-parts, axis=0, kind="stable")  # column by column
        if self.kind != "decomposition":
            ranked = ranked[:JUSTIFICATION_LIMIT]
        values = np.take_along_axis(parts, ranked, axis=0)
        keep = values != 0 if self.kind == "decomposition" else values > 0
        n = parts.shape[1]
        self._ranked, self._values = ranked, values
        self._keep = None if keep.all() else keep
        self._orders = [None] * n
        # the positive values come first: how many each item has, and the first TOP of
        # them (what a text may name), for every item in one conversion
        self._positive = (values > 0).sum(axis=0).tolist()
        self._head = list(zip(ranked[:TOP].T.tolist(), values[:TOP].T.tolist(), strict=True))

    def sorted_column(self, k: int) -> np.ndarray:
        """The values of :meth:`order` ``(k)``, in that order."""
        if self._ranked is None:
            self._rank()
        column = self._values[:, k]  # type: ignore[index]
        return column if self._keep is None else column[self._keep[:, k]]

    def top(self, k: int) -> tuple[list[int], list[float]]:
        """The positions of item ``k``'s :data:`TOP` largest positive values, largest
        first, and those values."""
        if self._ranked is None:
            self._rank()
        positions, values = self._head[k]
        m = self._positive[k]
        return (positions, values) if m >= len(positions) else (positions[:m], values[:m])

    def item_names(self) -> list[str]:
        """The ids of the person's history items, in the rows' order."""
        return self.attribution().history

    def label(self, j: int) -> str:
        """The label of history item ``j``."""
        name = self.item_names()[j]
        return self.labels.get(name, name)

    def whence(self, j: int) -> tuple[str | None, datetime | None]:
        """The feature and time of history item ``j``'s data."""
        if self.meta:
            return self.meta.get(self.item_names()[j], (self.feature, None))
        return self.feature, None

    def columns(self) -> tuple[list[str], list[str], list[tuple[str | None, datetime | None]]]:
        """:meth:`item_names`, the labels and the feature and time of every history item
        (made once, when a full list of reasons is built)."""
        names = self.item_names()
        if len(self.shown) != len(names) or len(self._whence) != len(names):
            labels, meta, feature = self.labels, self.meta, self.feature
            self.shown = [labels.get(it, it) for it in names]
            self._whence = ([meta.get(it, (feature, None)) for it in names] if meta
                            else [(feature, None)] * len(names))
        return names, self.shown, self._whence


class Reasons(Sequence[Reason]):
    """The reasons of one explanation: a read-only sequence of :class:`Reason`, largest
    first, built on first access (so serving ten items builds no object nobody reads).

    It behaves like the list it stands for: ``len``, indexing, slicing, iteration and
    ``==`` against a list of reasons; JSON output is the same list.
    """

    __slots__ = ("_all", "_built", "_col", "_k", "_listed", "_namer", "_score", "_split",
                 "_totals")

    def __init__(self, split: Split, k: int, score: float, namer: Namer | None = None) -> None:
        self._split, self._k, self._score, self._namer = split, k, score, namer
        self._all: list[int] | None = None
        self._listed: list[int] | None = None
        self._built: list[Reason] | None = None
        self._totals: tuple[float, float] | None = None
        self._col: np.ndarray | None = None

    def summary(self, namer: Namer) -> Reasons:
        """The summary form of the same reasons (one shared decomposition)."""
        return Reasons(self._split, self._k, self._score, namer)

    def _column(self) -> np.ndarray:
        if self._col is None:
            self._col = self._split.parts()[:, self._k]
        return self._col

    def _order(self) -> list[int]:
        """Every reason's position, largest first (justifications: positive ones, capped)."""
        if self._all is None:
            self._all = self._split.order(self._k)
        return self._all

    def _positions(self) -> list[int]:
        """The listed reasons: all of them, or (summary) those the text needs."""
        if self._listed is None:
            order = self._order()
            if self._namer is None:
                self._listed = order
            else:
                self._listed = self._needed(order, self._namer)
        return self._listed

    def _needed(self, order: list[int], namer: Namer) -> list[int]:
        """The reasons the full form's text names (at least the largest one for the item,
        so that the summary's text, rendered from it, is the same), and those ``namer``
        adds (the item itself when it is in the history, a counterfactual's removals)."""
        candidates, extra = self._for_text(namer.wanted)
        keep = namer(self._said(candidates + extra))
        names = self._split.item_names()
        listed = [j for j in candidates if names[j] in keep] or candidates[:1]
        listed += [j for j in extra if names[j] in keep]
        return sorted(listed, key=order.index)

    def _for_text(self, wanted: frozenset[str]) -> tuple[list[int], list[int]]:
        """The positions the text is rendered from: the top positive reasons, and the
        reasons of the items in ``wanted`` (largest first)."""
        candidates = self._split.top(self._k)[0]
        if not wanted:
            return candidates, []
        names = self._split.item_names()
        return candidates, [j for j in self._order() if names[j] in wanted
                            and j not in candidates]

    def for_text(self, wanted: frozenset[str] = frozenset()) -> list[Said]:
        """What the text of these reasons is rendered from (see :meth:`_needed`): the
        same whether the summary or the full form is read."""
        candidates, extra = self._for_text(wanted)
        if not extra:  # the top reasons: their values come with them
            return self._said(candidates, self._split.top(self._k)[1])
        return self._said(candidates + extra)

    def every(self) -> tuple[list[str], np.ndarray]:
        """Item ids and values of every reason of the full form, largest first, whatever
        this form lists (what a digest of the reasons covers), read from the arrays."""
        order = self._order()
        names = self._split.item_names()
        return list(map(names.__getitem__, order)), self._split.sorted_column(self._k)

    def rendered(self, key: tuple[Any, ...]) -> str | None:
        """The full form's text, which a summary's is word for word (rendered once, when
        the reasons to list were chosen), if ``key`` (the explanation's other fields that
        the text depends on) is the one it was rendered with; else ``None``."""
        namer = self._namer
        if namer is None or not _same(namer.key, key):
            return None
        self._positions()
        return namer.text

    def totals(self) -> tuple[float, float]:
        """(support, against): the sums of the positive and of the negative parts."""
        if self._totals is None:
            values = self._column()[self._order()]
            self._totals = (math.fsum(values[values > 0].tolist()),
                            math.fsum(values[values < 0].tolist()))
        return self._totals

    def rest(self) -> tuple[int, float | None]:
        listed = set(self._positions())
        others = [j for j in self._order() if j not in listed]
        if self._split.kind != "decomposition":
            return len(others), None
        return len(others), math.fsum(self._column()[others].tolist())

    def _said(self, positions: list[int], values: list[float] | None = None) -> list[Said]:
        """What the text reads of the reasons at ``positions`` (no share, so no totals);
        ``values``: theirs, when given (a list at least as long)."""
        split = self._split
        names = split.item_names()
        if values is None:
            values = self._column()[positions].tolist()
        elif len(values) != len(positions):
            values = values[:len(positions)]
        if split.kind != "decomposition":
            return [Said(names[j], split.label(j), None, v, split.whence(j)[0])
                    for j, v in zip(positions, values, strict=True)]
        return [Said(names[j], split.label(j), v, None, split.whence(j)[0])
                for j, v in zip(positions, values, strict=True)]

    def _make(self, positions: list[int]) -> list[Reason]:
        names, shown, whence = self._split.columns()
        values = self._column()[positions].tolist()
        if self._split.kind != "decomposition":
            return [make_reason(names[j], shown[j], None, None, v, whence[j][0], whence[j][1])
                    for j, v in zip(positions, values, strict=True)]
        support, against = self.totals()
        return [
            make_reason(names[j], shown[j], v, (v / support) if v > 0 else (v / against), None,
                        whence[j][0], whence[j][1])
            for j, v in zip(positions, values, strict=True)
        ]

    def _list(self) -> list[Reason]:
        if self._built is None:
            self._built = self._make(self._positions())
        return self._built

    def __len__(self) -> int:
        return len(self._positions())

    def __getitem__(self, index: Any) -> Any:
        if self._built is not None:
            return self._built[index]
        positions = self._positions()
        if isinstance(index, slice):
            return self._make(positions[index])
        return self._make([positions[index]])[0]

    def __iter__(self) -> Iterator[Reason]:
        return iter(self._list())

    def __bool__(self) -> bool:
        return bool(self._positions())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Reasons):
            return self._list() == other._list()
        if isinstance(other, list | tuple):
            return self._list() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._list())

    def __copy__(self) -> Reasons:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Reasons:
        return self  # immutable once served


def split_reasons(
    model: Attributed, kind: str, user: str, items: list[str], scores: Sequence[float],
    labels: Mapping[str, str], feature: str | None,
    meta: Mapping[str, tuple[str, datetime]] | None, attribution: Attribution | None = None,
) -> list[Reasons]:
    """One :class:`Reasons` per item of ``items`` for ``user`` (every reason;
    :meth:`Reasons.summary` for the summary), sharing one :class:`Split` (``model`` should
    be a :func:`snapshot` when they are read later)."""
    split = Split(model, kind, user, items, labels, feature, meta, attribution)
    return [Reasons(split, k, float(s)) for k, s in enumerate(scores)]
