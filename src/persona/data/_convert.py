"""Ids and times into an :class:`~persona.data.Interactions`: persona's id rule applied to
lists and pandas columns, id columns to codes, and a reference time to ``datetime64[us]``."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from persona.errors import ValidationError
from persona.schema import ID_RULE, check_id, check_ids

__all__ = ["as_time", "factorize", "id_codes", "id_column", "id_list", "unique_ids"]


def unique_ids(values: Sequence[str] | np.ndarray, name: str) -> np.ndarray:
    # persona's one id rule: ints as their decimal strings, strs in NFC, so two spellings
    # of one id are one id (and collide)
    listed = values.tolist() if isinstance(values, np.ndarray) else list(values)
    arr = np.asarray(check_ids(listed, name), dtype=object)
    if len(set(arr.tolist())) != len(arr):
        raise ValidationError(
            f"{name} ids must be unique (compared in Unicode NFC); merge the duplicates"
        )
    return arr


def id_list(values: Any, name: str) -> list[str]:
    if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
        raise ValidationError(f"{name} must be a list of ids, not {type(values).__name__}")
    return check_ids(values.tolist() if isinstance(values, np.ndarray) else list(values), name)


def id_column(series: Any, name: str) -> np.ndarray:
    """A pandas column of ids by persona's id rule (:data:`persona.schema.ID_RULE`): an
    integer column becomes its decimal strings, a column of str (or str and int) is
    checked id by id; float and bool columns are refused with the fix."""
    kind = getattr(series.dtype, "kind", "O")
    if kind == "b":
        raise ValidationError(
            f"column {name!r} holds bools, and a bool is never an id ({ID_RULE}); "
            "use the column that names the person or item",
            errors=[{"row": None, "field": name, "message": "bool ids", "input": None}],
        )
    if kind == "f" and len(series):
        check_id(series.iloc[0], name)  # raises: a float is not an id, with the fix
    if kind in "iu":
        ids: np.ndarray = series.astype(str).to_numpy(dtype=object)
        return ids
    return np.asarray(check_ids(series.tolist(), name), dtype=object)


def as_time(value: Any, name: str = "now") -> np.datetime64:
    """A reference time as ``datetime64[us]`` in UTC (aware datetimes and ISO strings with
    an offset are converted; naive ones are read in UTC, the zone of
    :attr:`~persona.data.Interactions.at`)."""
    if value is None or isinstance(value, bool | int | float | np.number):
        raise ValidationError(  # a number counts in no stated unit (the time rule)
            f"{name} must be a time (a datetime, or an ISO 8601 string such as "
            f"'2026-01-01T00:00:00Z'), not {value!r}; for a unix time in seconds write "
            f"datetime.fromtimestamp(t, UTC)")
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # else numpy's reading ('2026-01') is kept
            value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    try:
        out = np.datetime64(value, "us")
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be a time, not {value!r} ({exc})") from None
    if np.isnat(out):
        raise ValidationError(f"{name} must be a time, not {value!r} (not a time)")
    return out


def id_codes(column: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes and ids of a frame's id column, by the id rule (:func:`id_column`): a
    categorical column's categories, in their order and unused ones too (people or items
    without events, as :meth:`~persona.data.Interactions.to_pandas` writes them), else the
    ids in order of first appearance."""
    if getattr(column.dtype, "name", None) == "category":
        codes = np.asarray(column.cat.codes.to_numpy(), dtype=np.int64)
        return codes, id_column(column.cat.categories.to_series(), name)
    return factorize(id_column(column, name))


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and uniques in order of first appearance (stable, no pandas needed)."""
    uniques, first, codes = np.unique(values, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[codes].astype(np.int64), np.asarray(uniques[order], dtype=object)
