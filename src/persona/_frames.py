"""Tables out: one description of a table's columns, written as a pandas ``DataFrame`` or a
pyarrow ``Table`` with the same columns and matching types.

Every tabular object (``Interactions``, ``EventColumns``, ``RecommendationArrays``, a served
list) describes its columns once, as :class:`Column` values, and :func:`to_pandas` /
:func:`to_arrow` turn them into a frame. Neither pandas nor pyarrow is a dependency of
persona: each is imported when a frame is asked for, and a missing one is a
:class:`~persona.errors.MissingDependencyError` that names the extra to install.

The kinds of column and what they become:

=========  ==========================================  ==================================
kind       pandas                                      pyarrow
=========  ==========================================  ==================================
``codes``  ``category`` (categories: the labels, in    ``dictionary<int32, ...>``
           order; code ``-1`` is missing)
``ids``    ids as given: pandas' string dtype when     ``string`` (or ``int64`` ...)
           every id is a ``str``, else inferred
``time``   ``datetime64[us, UTC]``                     ``timestamp[us, tz=UTC]``
``float``  ``float64``                                 ``double``
``int``    ``int64``                                   ``int64``
``text``   pandas' string dtype (``None``: missing)    ``string`` (``None``: null)
=========  ==========================================  ==================================

numpy only at import, so every part of persona may use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from persona.errors import MissingDependencyError

__all__ = ["Column", "require_arrow", "require_pandas", "to_arrow", "to_pandas"]

Kind = Literal["codes", "ids", "time", "float", "int", "text"]


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its kind (see the module doc), its values and, for ``codes``, the labels
    the codes index."""

    kind: Kind
    values: Any
    labels: Sequence[Any] | np.ndarray | None = None


def require_pandas(what: str = "to_pandas()") -> Any:
    """The ``pandas`` module, or a :class:`~persona.errors.MissingDependencyError` saying how
    to install it."""
    try:
        import pandas as pd
    except ImportError:
        raise MissingDependencyError(
            f"{what} needs pandas, which is not installed; install it with "
            "pip install 'persona[pandas]'",
            package="pandas",
        ) from None
    return pd


def require_arrow(what: str = "to_arrow()") -> Any:
    """The ``pyarrow`` module, or a :class:`~persona.errors.MissingDependencyError` saying how
    to install it."""
    try:
        import pyarrow as pa
    except ImportError:
        raise MissingDependencyError(
            f"{what} needs pyarrow, which is not installed; install it with "
            "pip install 'persona[arrow]'",
            package="pyarrow",
        ) from None
    return pa


# ---------------------------------------------------------------- pandas
def to_pandas(columns: dict[str, Column]) -> Any:
    """The columns as a ``pandas.DataFrame`` (a ``RangeIndex``, one row per value)."""
    pd = require_pandas()
    return pd.DataFrame({name: _pandas_column(pd, c) for name, c in columns.items()})


def _string_dtype(pd: Any) -> Any:
    # pandas' own dtype for strings: ``str`` on pandas 3 (and on 2.x with the
    # future.infer_string option), ``object`` before
    return pd.Series(["x"]).dtype


def _all_str(values: Sequence[Any] | np.ndarray) -> bool:
    return all(isinstance(v, str) for v in values)


def _pandas_index(pd: Any, values: Sequence[Any] | np.ndarray) -> Any:
    values = list(values)
    if _all_str(values):  # (also when empty: ids are strings unless given otherwise)
        return pd.Index(values, dtype=_string_dtype(pd))
    return pd.Index(values)


def _pandas_column(pd: Any, c: Column) -> Any:
    if c.kind == "codes":
        assert c.labels is not None
        dtype = pd.CategoricalDtype(_pandas_index(pd, c.labels), ordered=False)
        return pd.Categorical.from_codes(np.asarray(c.values, dtype=np.int64), dtype=dtype)
    if c.kind == "ids":
        return _pandas_index(pd, c.values).array
    if c.kind == "time":
        at = np.asarray(c.values, dtype="datetime64[us]")
        return pd.DatetimeIndex(at).as_unit("us").tz_localize("UTC").array
    if c.kind == "float":
        return np.asarray(c.values, dtype=np.float64)
    if c.kind == "int":
        return np.asarray(c.values, dtype=np.int64)
    return pd.array(list(c.values), dtype=_string_dtype(pd))


# ---------------------------------------------------------------- pyarrow
def to_arrow(columns: dict[str, Column]) -> Any:
    """The columns as a ``pyarrow.Table`` (types as in the module doc)."""
    pa = require_arrow()
    return pa.table({name: _arrow_column(pa, c) for name, c in columns.items()})


def _arrow_values(pa: Any, values: Sequence[Any] | np.ndarray) -> Any:
    values = list(values)
    return pa.array(values, type=pa.string() if _all_str(values) else None)


def _arrow_column(pa: Any, c: Column) -> Any:
    if c.kind == "codes":
        assert c.labels is not None
        codes = np.asarray(c.values, dtype=np.int64)
        indices = pa.array(codes.astype(np.int32), type=pa.int32(), mask=codes < 0)
        return pa.DictionaryArray.from_arrays(indices, _arrow_values(pa, c.labels))
    if c.kind == "ids":
        return _arrow_values(pa, c.values)
    if c.kind == "time":
        ticks = np.asarray(c.values, dtype="datetime64[us]").view(np.int64)
        return pa.array(ticks, type=pa.timestamp("us", tz="UTC"))
    if c.kind == "float":
        return pa.array(np.asarray(c.values, dtype=np.float64), type=pa.float64())
    if c.kind == "int":
        return pa.array(np.asarray(c.values, dtype=np.int64), type=pa.int64())
    return pa.array(list(c.values), type=pa.string())
