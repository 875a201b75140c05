"""Columnar event arrays shared by the store (which produces them) and ``persona.data``
(which turns them into sparse matrices). numpy only, so both sides can import it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from persona import _frames

__all__ = ["EventColumns"]


@dataclass(frozen=True, eq=False)
class EventColumns:
    """Events as parallel numpy arrays, ready for ``scipy.sparse.csr_matrix``.

    ``user``, ``item`` and ``feature`` are integer codes indexing ``users``, ``items`` and
    ``features`` (the string ids). ``value`` is float64, ``at`` is ``datetime64[us]`` in UTC.
    Every array has the same length, one entry per event.

    Examples
    --------
    >>> import numpy as np
    >>> cols = EventColumns(
    ...     users=np.array(["u1"], dtype=object), items=np.array(["sku-9"], dtype=object),
    ...     features=("purchases",), user=np.array([0], dtype=np.int32),
    ...     item=np.array([0], dtype=np.int32), feature=np.array([0], dtype=np.int16),
    ...     value=np.array([2.0]), at=np.array(["2026-11-01T10:00"], dtype="datetime64[us]"))
    >>> len(cols)
    1
    """

    users: np.ndarray  # object array of str, indexed by ``user``
    items: np.ndarray  # object array of str, indexed by ``item``
    features: tuple[str, ...]  # indexed by ``feature``
    user: np.ndarray  # int32
    item: np.ndarray  # int32
    feature: np.ndarray  # int16
    value: np.ndarray  # float64
    at: np.ndarray  # datetime64[us], UTC

    def __len__(self) -> int:
        return int(self.value.shape[0])

    def to_pandas(self) -> Any:
        """The events as a tidy ``pandas.DataFrame``, one row per event in read order.
        Needs pandas (``pip install 'persona[pandas]'``).

        =============  ==========================  =====================================
        column         dtype                       value
        =============  ==========================  =====================================
        ``user``       ``category``                the person (categories: ``users``)
        ``item``       ``category``                the item (categories: ``items``)
        ``feature``    ``category``                the kind of event (categories:
                                                   ``features``)
        ``value``      ``float64``                 the event's value
        ``at``         ``datetime64[us, UTC]``     when it happened
        =============  ==========================  =====================================

        ``Interactions.from_pandas(df, value="value", at="at", feature="feature",
        weights=...)`` builds from it what ``Interactions.from_view`` builds from the read.

        Examples
        --------
        >>> cols = EventColumns(
        ...     users=np.array(["u1"], dtype=object), items=np.array(["sku-9"], dtype=object),
        ...     features=("purchases",), user=np.array([0], dtype=np.int32),
        ...     item=np.array([0], dtype=np.int32), feature=np.array([0], dtype=np.int16),
        ...     value=np.array([2.0]), at=np.array(["2026-11-01T10:00"], dtype="datetime64[us]"))
        >>> cols.to_pandas()
          user   item    feature  value                        at
        0   u1  sku-9  purchases    2.0 2026-11-01 10:00:00+00:00
        """
        return _frames.to_pandas(self._columns())

    def to_arrow(self) -> Any:
        """:meth:`to_pandas` as a ``pyarrow.Table`` (ids and features as
        ``dictionary<int32, string>``, ``at`` as ``timestamp[us, tz=UTC]``). Needs pyarrow
        (``pip install 'persona[arrow]'``)."""
        return _frames.to_arrow(self._columns())

    def _columns(self) -> dict[str, _frames.Column]:
        Column = _frames.Column
        return {
            "user": Column("codes", self.user, self.users),
            "item": Column("codes", self.item, self.items),
            "feature": Column("codes", self.feature, self.features),
            "value": Column("float", self.value),
            "at": Column("time", self.at),
        }
