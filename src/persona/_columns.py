"""Columnar event arrays shared by the store (which produces them) and ``persona.data``
(which turns them into sparse matrices). numpy only, so both sides can import it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
