"""A model's history matrix (``history_``, people × items, CSR with sorted columns): one
person's row read from what :meth:`Recommender.fold_in` is given, and the matrix with a
row replaced, added or removed, without rebuilding it from coordinates."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from persona.data import Interactions
from persona.errors import UnknownItemError, ValidationError
from persona.schema import check_id

__all__ = ["history_row", "with_row", "without_row"]


def history_row(
    iidx: Mapping[str, int], history: Any, unknown_items: str
) -> tuple[np.ndarray, np.ndarray]:
    """One person's row from ``history`` (``{item: confidence}``, a list of item ids, 1
    each and repeats summed, or a one-person :class:`Interactions`) as sorted ``(columns,
    confidences)`` against the catalogue index ``iidx``; zero confidences are left out,
    unknown items raise or are skipped (``unknown_items``)."""
    if isinstance(history, Interactions):
        if history.n_users != 1:
            raise ValidationError("fold_in takes the interactions of exactly one person")
        pairs = history.history(str(history.users[0]))
    elif isinstance(history, Mapping):
        pairs = dict(history)
    elif isinstance(history, str | bytes) or not isinstance(history, Iterable):
        raise ValidationError("history must be a list of item ids or a dict "
                              f"{{item: confidence}}, not a {type(history).__name__}")
    else:
        pairs = {}
        for it in history:
            if not isinstance(it, str):
                check_id(it, "item")  # raises: an id is a str
            pairs[it] = pairs.get(it, 0.0) + 1.0  # duplicates are summed, as in fit
    cols, vals = [], []
    for it, v in pairs.items():
        j = iidx.get(it)
        if j is None:  # by the id rule: refused, or found under its NFC spelling
            j = iidx.get(check_id(it, "item"))
        if j is None:
            if unknown_items == "raise":
                raise UnknownItemError(
                    f"{it!r} is not in the model's catalogue; pass "
                    "unknown_items='ignore' to skip new items, or refit",
                    item=it,
                )
            continue
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
            raise ValidationError(f"confidence of {it!r} must be a number, not "
                                  f"{type(v).__name__}")
        v = float(v) if abs(v) < 1e308 else math.inf  # an int too large for a float
        if not np.isfinite(v) or v < 0:
            raise ValidationError(f"confidence of {it!r} must be finite and >= 0, not {v}")
        if v > 0:
            cols.append(j)
            vals.append(v)
    order = np.argsort(cols, kind="stable")
    return np.asarray(cols, dtype=np.int32)[order], np.asarray(vals, dtype=np.float64)[order]


def with_row(h: sp.csr_matrix, row: int, cols: np.ndarray, vals: np.ndarray) -> sp.csr_matrix:
    """``h`` with row ``row`` set to ``(cols, vals)`` (sorted columns); ``row ==
    h.shape[0]`` appends it."""
    if row == h.shape[0]:
        indptr = np.r_[h.indptr, h.indptr[-1] + len(cols)]
        new = sp.csr_matrix(
            (np.r_[h.data, vals], np.r_[h.indices, cols], indptr),
            shape=(row + 1, h.shape[1]),
        )
    else:
        a, b = h.indptr[row], h.indptr[row + 1]
        data = np.r_[h.data[:a], vals, h.data[b:]]
        indices = np.r_[h.indices[:a], cols, h.indices[b:]]
        indptr = h.indptr.copy()
        indptr[row + 1:] += len(cols) - (b - a)
        new = sp.csr_matrix((data, indices, indptr), shape=h.shape)
    new.has_sorted_indices = True
    return new


def without_row(h: sp.csr_matrix, row: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """``h`` without row ``row``: ``(matrix, kept_rows_mask, the row's item columns)``."""
    a, b = h.indptr[row], h.indptr[row + 1]
    items = h.indices[a:b].copy()
    keep = np.ones(h.shape[0], dtype=bool)
    keep[row] = False
    out = h[keep]
    out.sort_indices()
    return out, keep, items
