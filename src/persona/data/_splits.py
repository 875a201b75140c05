"""Train/test splits that keep the people and items of the original (same matrix shape)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
import scipy.sparse as sp

from persona.data._convert import as_time
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
    allow_empty: bool = False,
) -> tuple[Interactions, Interactions]:
    """Hold out ``k`` items of every person who has more than ``k``.

    People with ``k`` items or fewer stay entirely in training (they have nothing left to
    learn from otherwise); when that is everyone, the test side would be empty and a
    :class:`~persona.errors.ValidationError` says so, unless ``allow_empty`` (for a caller
    whose next steps must not depend on the data, such as a private validation).
    ``by="time"`` holds out each
    person's ``k`` latest items (needs event times); ``by="random"`` picks them at random
    with ``random_state``.

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
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValidationError(f"k must be an int of at least 1, not {k!r}")
    if not isinstance(allow_empty, bool):
        raise ValidationError(f"allow_empty must be True or False, not {allow_empty!r}")
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
    if not test_mask.any() and not allow_empty:
        raise ValidationError(
            f"leave_k_out(k={k}) holds out nothing: nobody has more than {k} item(s) (the "
            f"most anyone has is {int(lengths.max()) if lengths.size else 0}), so the test "
            "side would be empty; use a smaller k or more data"
        )
    return _split(X, test_mask)


def time_split(
    X: Interactions, at: datetime | np.datetime64 | str
) -> tuple[Interactions, Interactions]:
    """Everything before ``at`` trains, everything at or after it tests.

    A person–item pair is placed by its latest event time. ``at`` is an instant: an aware
    datetime or an ISO string with an offset is converted to UTC; a naive one is read in
    UTC, the zone in which :attr:`Interactions.at` keeps times. A cut that leaves either
    side empty raises :class:`~persona.errors.ValidationError` naming the span of the
    event times.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"user": ["u", "u"], "item": ["a", "b"],
    ...                    "at": ["2026-01-01", "2026-02-01"]})
    >>> train, test = time_split(Interactions.from_pandas(df, at="at", tz="UTC"), "2026-01-15")
    >>> train.history("u"), test.history("u")
    ({'a': 1.0}, {'b': 1.0})
    """
    if X.at is None:
        raise ValidationError("time_split needs event times; build the interactions with 'at'")
    cut = as_time(at, "at")
    if not X.nnz:
        raise ValidationError("time_split has nothing to split: the interactions are empty")
    test_mask = X.at >= cut
    first, last = X.at.min(), X.at.max()
    span = (f"the events run from {first} to {last} (UTC); choose a cut after the first and "
            "at or before the last")
    if not test_mask.any():
        raise ValidationError(
            f"time_split at {cut} leaves the test side empty: no event is at or after it; "
            f"{span}. (Times that all fall in January 1970 were numbers read in the wrong "
            "unit: build the interactions with at_unit=...)"
        )
    if test_mask.all():
        raise ValidationError(
            f"time_split at {cut} leaves the training side empty: every event is at or "
            f"after it; {span}"
        )
    return _split(X, test_mask)
