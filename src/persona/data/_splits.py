"""Train/test splits that keep the people and items of the original (same matrix shape)."""

from __future__ import annotations

import math
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
    max_share: float | None = None,
) -> tuple[Interactions, Interactions]:
    """Hold out ``k`` items of every person who has more than ``k``.

    People with ``k`` items or fewer stay entirely in training (they have nothing left to
    learn from otherwise). With ``max_share`` (strictly between 0 and 1) each person holds
    out ``min(k, floor(max_share · n))`` of their ``n`` items instead: up to ``k``, never
    more than that share (``k=5, max_share=0.5``: one of 2 or 3 items, two of 4, five of
    10 or more). When nobody holds out anything, the test side would be empty and a
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
    if max_share is not None and (isinstance(max_share, bool)
                                  or not isinstance(max_share, int | float)
                                  or not 0 < max_share < 1):
        raise ValidationError(
            f"max_share must be a number strictly between 0 and 1 (or None), not {max_share!r}")
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
    if max_share is None:
        held = np.where(lengths > k, k, 0)
    else:
        held = np.minimum(k, np.floor(max_share * lengths).astype(np.int64))
    test_mask = pos >= lengths[rows] - held[rows]
    if not test_mask.any() and not allow_empty:
        raise ValidationError(
            f"leave_k_out(k={k}{'' if max_share is None else f', max_share={max_share}'}) "
            "holds out nothing: nobody has "
            + (f"more than {k} item(s)" if max_share is None
               else f"{math.ceil(1 / max_share)} or more items")
            + f" (the most anyone has is {int(lengths.max()) if lengths.size else 0}), so the "
            "test side would be empty; use "
            + ("a smaller k" if max_share is None else "a larger max_share") + " or more data"
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
