"""Items a fitted model never serves (blocked by people, e.g. merchandisers).

A model carries its own block set, so that every serving path of the model itself
(``recommend``, ``recommend_batch``, ``recommend_arrays``, ``similar_items``) leaves the
items out, not only a layer in front of it: a ``Personalizer`` blocks the same items in its
model and in its non-profiling fallback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from persona.errors import ValidationError
from persona.schema import check_id

__all__ = ["blocked_columns", "set_block"]


def set_block(model: Any, items: Iterable[str]) -> None:
    """Replace ``model``'s block set with ``items`` (ids; items the model does not know
    are kept, and apply if a refit brings them in)."""
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
        raise ValidationError(
            f"block takes a list of item ids, not a {type(items).__name__}; "
            "e.g. model.block(['sku-1'])",
            errors=[{"row": None, "field": "items", "message": "not a list"}],
        )
    model.__dict__["_blocked"] = frozenset(check_id(i, "item") for i in items)
    model.__dict__.pop("_blocked_cols", None)


def blocked_ids(model: Any) -> frozenset[str]:
    blocked: frozenset[str] = model.__dict__.get("_blocked", frozenset())
    return blocked


def blocked_columns(model: Any) -> np.ndarray | None:
    """The catalogue columns of the blocked items the model knows (``None``: none)."""
    blocked = model.__dict__.get("_blocked")
    if not blocked:
        return None
    iidx = model._iidx
    cached = model.__dict__.get("_blocked_cols")
    if cached is not None and cached[0] is iidx:  # (a refit replaces the index)
        known: np.ndarray | None = cached[1]
        return known
    found = np.array(sorted(iidx[i] for i in blocked if i in iidx), dtype=np.int64)
    cols = found if found.size else None
    model.__dict__["_blocked_cols"] = (iidx, cols)
    return cols


def with_blocked(model: Any, exclude: np.ndarray | None) -> np.ndarray | None:
    """``exclude`` (columns) with the blocked columns added."""
    cols = blocked_columns(model)
    if cols is None:
        return exclude
    if exclude is None or exclude.size == 0:
        return cols
    return np.concatenate([exclude, cols])
