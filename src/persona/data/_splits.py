"""Train/test splits that keep the people and items of the original (same matrix shape)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
import scipy.sparse as sp

from persona.data._interactions import Interactions
from persona.errors import ValidationError

__all__ = ["leave_k_out", "time_split"]


def _split(X: Interactions, test_mask: np.ndarray) -> tuple[Interactions, Interactions]:
    m = X.matrix
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    parts = []
    for mask in (~test_mask, test_mask):
        r, c, d = rows[mask], m.indices[mask], m.data[mask]
        indptr = np.zeros(m.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=m.shape[0]), out=indptr[1:])
        part = sp.csr_matrix((d, c, indptr), shape=m.shape)
        part.has_canonical_format = True
        parts.append(X.with_matrix(part, None if X.at is None else X.at[mask]))
    return parts[0], parts[1]


def leave_k_out(
    X: Interactions,
    k: int = 1,
    *,
    by: Literal["random", "time"] = "random",
    random_state: int | np.random.Generator | None = None,
) -> tuple[Interactions, Interactions]:
    """Hold out ``k`` items of every person who has more than ``k``.

    People with ``k`` items or fewer stay entirely in training (they have nothing left to
    learn from otherwise). ``by="time"`` holds out each person's ``k`` latest items (needs
    event times); ``by="random"`` picks them at random with ``random_state``.

    Returns
    -------
    train, test
        Two :class:`Interactions` with the same people and items as ``X``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = Interactions.from_csr(sp.csr_matrix(np.ones((2, 4))), ["a", "b"], list("wxyz"))
    >>> train, test = leave_k_out(X, k=1, random_state=0)
    >>> train.nnz, test.nnz
    (6, 2)
    """
    if k < 1:
        raise ValidationError("k must be at least 1")
    m = X.matrix
    n = m.nnz
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    if by == "time":
        if X.at is None:
            raise ValidationError("by='time' needs event times; build the interactions with 'at'")
        key = X.at.view(np.int64)
    elif by == "random":
        key = np.random.default_rng(random_state).random(n)
    else:
        raise ValidationError(f"by must be 'random' or 'time', not {by!r}")
    order = np.lexsort((key, rows))  # within each row, ascending key
    lengths = np.diff(m.indptr)
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n) - m.indptr[rows[order]]
    test_mask = (pos >= lengths[rows] - k) & (lengths[rows] > k)
    return _split(X, test_mask)


def time_split(
    X: Interactions, at: datetime | np.datetime64 | str
) -> tuple[Interactions, Interactions]:
    """Everything before ``at`` trains, everything at or after it tests.

    A person–item pair is placed by its latest event time.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"user": ["u", "u"], "item": ["a", "b"],
    ...                    "at": ["2026-01-01", "2026-02-01"]})
    >>> train, test = time_split(Interactions.from_pandas(df, at="at"), "2026-01-15")
    >>> train.history("u"), test.history("u")
    ({'a': 1.0}, {'b': 1.0})
    """
    if X.at is None:
        raise ValidationError("time_split needs event times; build the interactions with 'at'")
    cut = np.datetime64(at, "us")
    return _split(X, X.at >= cut)
