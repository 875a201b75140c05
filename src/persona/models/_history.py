"""A model's history matrix (``history_``, people × items, CSR with sorted columns): one
person's row read from what :meth:`Recommender.fold_in` is given, and the matrix with a
row (or many, :meth:`Recommender.fold_in_many`) replaced, added or removed."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from persona.data import Interactions
from persona.errors import UnknownItemError, ValidationError
from persona.schema import check_id

__all__ = ["history_row", "rows_on", "with_row", "with_rows", "without_row"]


def _unknown_item(item: Any) -> UnknownItemError:
    return UnknownItemError(f"{item!r} is not in the model's catalogue; pass "
                            "unknown_items='ignore' to skip new items, or refit", item=item)


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
                raise _unknown_item(it)
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


def rows_on(iidx: Mapping[str, int], X: Interactions, unknown_items: str) -> sp.csr_matrix:
    """``X``'s matrix on the model's columns (``iidx``): one row per person of ``X``, zero
    confidences left out; an event on an item the model does not know raises
    :class:`~persona.errors.UnknownItemError` or is skipped (``unknown_items``)."""
    col = np.fromiter((iidx.get(i, -1) for i in X.items.tolist()), np.int64, len(X.items))
    M = sp.csr_matrix(X.matrix, dtype=np.float64)
    missing = col[M.indices] < 0
    if missing.any() and unknown_items == "raise":
        raise _unknown_item(str(X.items[M.indices[np.flatnonzero(missing)[0]]]))
    out = sp.csr_matrix((np.where(missing, 0.0, M.data), np.where(missing, 0, col[M.indices]),
                         M.indptr.copy()), shape=(M.shape[0], len(iidx)))
    out.eliminate_zeros()
    out.sum_duplicates()
    return out


def with_rows(h: sp.csr_matrix, rows: np.ndarray, R: sp.csr_matrix) -> sp.csr_matrix:
    """``h`` with row ``rows[k]`` set to row ``k`` of ``R`` (``rows`` distinct; rows past
    the end of ``h`` are added, with empty rows between): :func:`with_row` for many rows,
    in one pass."""
    n = max(h.shape[0], int(rows.max()) + 1 if rows.size else 0)
    H = sp.csr_matrix(h, dtype=np.float64)
    if n > h.shape[0]:
        H = sp.vstack([H, sp.csr_matrix((n - h.shape[0], h.shape[1]))], format="csr")
    keep = np.ones(n)
    keep[rows] = 0.0
    place = sp.csr_matrix((np.ones(rows.size), (rows, np.arange(rows.size))),
                          shape=(n, R.shape[0]))
    out = sp.csr_matrix(sp.diags(keep) @ H + place @ R)
    out.eliminate_zeros()
    out.sort_indices()
    return out


def without_row(h: sp.csr_matrix, row: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """``h`` without row ``row``: ``(matrix, kept_rows_mask, the row's item columns)``."""
    a, b = h.indptr[row], h.indptr[row + 1]
    items = h.indices[a:b].copy()
    keep = np.ones(h.shape[0], dtype=bool)
    keep[row] = False
    out = h[keep]
    out.sort_indices()
    return out, keep, items
