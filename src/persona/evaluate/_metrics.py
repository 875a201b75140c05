"""Ranking metrics at one or several k, computed the way ``implicit.evaluation`` does.

Every metric is first computed per person (one vectorised pass over a people × k matrix of
hits), then summarised; :mod:`persona.evaluate._result` holds the result types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np

from persona.errors import ValidationError
from persona.evaluate._result import (
    METRICS,
    EvaluationReport,
    EvaluationResult,
    PersonMetrics,
)

__all__ = ["check_ks", "ranking_metrics", "score_lists"]

_K_RULE = ("k must be a positive integer or a list of distinct positive integers, "
           "e.g. k=10 or k=[5, 10]")


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def check_ks(k: Any) -> tuple[tuple[int, ...], bool]:
    """The cut-offs asked for, and whether a single ``int`` was given.

    A ``list`` or ``tuple`` of distinct positive integers asks for several k (in the given
    order); a bool, a string, a float or a set is refused with :class:`ValidationError`.

    Examples
    --------
    >>> check_ks(10), check_ks([5, 10])
    (((10,), True), ((5, 10), False))
    """
    if _is_int(k):
        if k < 1:
            raise ValidationError(f"{_K_RULE}; got {k!r}")
        return (int(k),), True
    if not isinstance(k, list | tuple) or not k:
        raise ValidationError(f"{_K_RULE}; got {k!r}")
    if not all(_is_int(v) and v >= 1 for v in k):
        raise ValidationError(f"{_K_RULE}; got {k!r}")
    ks = tuple(int(v) for v in k)
    if len(set(ks)) != len(ks):
        raise ValidationError(f"{_K_RULE}; got {k!r}, which repeats a value")
    return ks, False


def score_lists(
    columns: np.ndarray, test: Any, rows: np.ndarray, ks: tuple[int, ...], n_items: int,
    users: Sequence[Any] | None = None,
) -> EvaluationReport:
    """Metrics for every k in ``ks`` from a people × k matrix of recommended columns.

    ``columns[p]`` is the ranked list of person ``rows[p]`` (catalogue columns of ``test``,
    ``-1`` past a short list's end); ``test`` is the CSR matrix of held-out interactions.
    A place past a short list's end is a miss, as implicit's padded lists are.
    """
    if len(rows) == 0:
        raise ValidationError("no person has test interactions; check the split")
    kmax = max(ks)
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.full((len(rows), kmax), -1, dtype=np.int64)
    width = min(kmax, columns.shape[1])
    cols[:, :width] = columns[:, :width]
    indptr = np.asarray(test.indptr, dtype=np.int64)
    n_test = indptr[rows + 1] - indptr[rows]
    if (n_test == 0).any():
        raise ValidationError(
            f"row {int(rows[np.argmax(n_test == 0)])} has no test interactions; evaluate "
            "only people with held-out items")
    test_rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    keys = test_rows * n_items + np.asarray(test.indices, dtype=np.int64)
    H = np.isin(rows[:, None] * n_items + cols, keys) & (cols >= 0)
    negatives = n_items - n_test
    cg = 1.0 / np.log2(np.arange(2, kmax + 2))
    cg_sum = np.cumsum(cg)
    table: dict[str, np.ndarray] = {
        "user": np.asarray(rows if users is None else list(users), dtype=object),
        "n_test": n_test,
    }
    at: dict[int, EvaluationResult] = {}
    for k in ks:
        Hk = H[:, :k]
        hits = Hk.sum(axis=1)
        cum = np.cumsum(Hk, axis=1)
        attainable = np.minimum(k, n_test)
        misses = k - hits
        with np.errstate(divide="ignore", invalid="ignore"):
            # AUC: each miss in the list counts the hits above it; the negatives past the
            # list are tied with the test items past it, so each counts half of those
            # plus all the hits (implicit's ``ranking_metrics_at_k``)
            auc_sum = (cum * ~Hk).sum(axis=1) + (hits + n_test) / 2.0 * np.maximum(
                negatives - misses, 0)
            auc = np.where(negatives > 0, auc_sum / (n_test * negatives), np.nan)
        first = np.argmax(Hk, axis=1)
        values = {
            "hits": hits,
            "precision": hits / attainable,
            "recall": hits / n_test,
            "ndcg": (Hk * cg[:k]).sum(axis=1) / cg_sum[attainable - 1],
            "map": (Hk * cum / np.arange(1, k + 1)).sum(axis=1) / attainable,
            "mrr": np.where(hits > 0, 1.0 / (first + 1), 0.0),
            "hit_rate": (hits > 0).astype(np.float64),
            "auc": auc,
        }
        recommended = cols[:, :k]
        mean = {name: float(np.mean(values[name])) for name in METRICS if name != "precision"}
        result = EvaluationResult(
            k=k, precision=float(hits.sum() / attainable.sum()), **mean,
            coverage=np.unique(recommended[recommended >= 0]).size / n_items,
            n_users=len(rows),
        )
        per_k = {f"{name}@{k}": v for name, v in values.items()}
        result._per_person = PersonMetrics({"user": table["user"], "n_test": n_test, **per_k})
        table.update(per_k)
        at[k] = result
    report = EvaluationReport(k=ks, at=at, n_users=len(rows))
    report._per_person = PersonMetrics(table)
    return report


@overload
def ranking_metrics(
    recommended: Sequence[Sequence[int]], test: Any, users: Sequence[int], k: int, n_items: int
) -> EvaluationResult: ...
@overload
def ranking_metrics(
    recommended: Sequence[Sequence[int]], test: Any, users: Sequence[int],
    k: list[int] | tuple[int, ...], n_items: int,
) -> EvaluationReport: ...
def ranking_metrics(
    recommended: Sequence[Sequence[int]], test: Any, users: Sequence[int],
    k: int | list[int] | tuple[int, ...], n_items: int,
) -> EvaluationResult | EvaluationReport:
    """Metrics from lists of recommended item columns (one list per row in ``users``).

    ``test`` is a CSR matrix of held-out interactions with the same columns; ``k`` an int
    (an :class:`EvaluationResult`) or a list of ints (an :class:`EvaluationReport`).
    Definitions: see :class:`EvaluationResult`.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> test = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 0, 1]]))
    >>> res = ranking_metrics([[0, 2], [2, 1]], test, [0, 1], k=2, n_items=4)
    >>> res.precision, res.mrr, res.hit_rate
    (0.3333333333333333, 0.5, 0.5)
    """
    ks, single = check_ks(k)
    kmax = max(ks)
    cols = np.full((len(recommended), kmax), -1, dtype=np.int64)
    for p, recs in enumerate(recommended):
        recs = list(recs)[:kmax]
        cols[p, :len(recs)] = recs
    report = score_lists(cols, test, np.asarray(list(users), dtype=np.int64), ks, n_items)
    return report.at[ks[0]] if single else report
