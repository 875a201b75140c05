"""Ranking metrics at k, computed the way ``implicit.evaluation`` computes them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from persona._progress import progress_bar
from persona.data import Interactions
from persona.errors import ValidationError

__all__ = ["EvaluationResult", "evaluate", "ranking_metrics"]


class EvaluationResult(BaseModel):
    """Ranking quality of a model on held-out interactions.

    Definitions (those of ``implicit.evaluation.ranking_metrics_at_k``, so numbers are
    comparable with implicit's): over the people with at least one test item, with ``T``
    their test items and ``R`` the top-``k`` recommendations (seen training items excluded):

    - ``precision`` = Σ|R ∩ T| / Σ min(k, |T|) (precision normalised by what is attainable);
    - ``recall`` = mean of |R ∩ T| / |T|;
    - ``ndcg`` = mean of DCG@k / ideal DCG@k with binary relevance;
    - ``map`` = mean of AP@k, normalised by min(k, |T|);
    - ``coverage`` = share of the catalogue that appears in at least one list.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int
    """Cut-off: length of each recommendation list."""
    precision: float
    """Hits over attainable hits, as implicit's ``precision``."""
    recall: float
    """Mean share of each person's test items found in their list."""
    ndcg: float
    """Mean normalised discounted cumulative gain at k."""
    map: float
    """Mean average precision at k."""
    coverage: float
    """Share of catalogue items recommended to anyone."""
    n_users: int
    """People evaluated (those with test items)."""


def ranking_metrics(
    recommended: Sequence[Sequence[int]], test: Any, users: Sequence[int], k: int, n_items: int
) -> EvaluationResult:
    """Metrics from lists of recommended item columns (one list per row in ``users``).

    ``test`` is a CSR matrix of held-out interactions with the same columns.
    """
    cg = 1.0 / np.log2(np.arange(2, k + 2))
    cg_sum = np.cumsum(cg)
    relevant = pr_div = mean_ap = ndcg = recall = 0.0
    seen: set[int] = set()
    for row, recs in zip(users, recommended, strict=True):
        likes = set(test.indices[test.indptr[row]:test.indptr[row + 1]].tolist())
        seen.update(recs)
        m = min(k, len(likes))
        pr_div += m
        hits = ap = dcg = 0.0
        for i, item in enumerate(list(recs)[:k]):
            if item in likes:
                hits += 1
                ap += hits / (i + 1)
                dcg += cg[i]
        relevant += hits
        mean_ap += ap / m
        ndcg += dcg / cg_sum[m - 1]
        recall += hits / len(likes)
    total = len(users)
    if total == 0:
        raise ValidationError("no person has test interactions; check the split")
    return EvaluationResult(
        k=k, precision=relevant / pr_div, recall=recall / total, ndcg=ndcg / total,
        map=mean_ap / total, coverage=len(seen) / n_items, n_users=total,
    )


def evaluate(
    model: Any,
    train: Interactions,
    test: Interactions,
    k: int = 10,
    *,
    show_progress: bool | None = False,
    block_size: int = 512,
) -> EvaluationResult:
    """Evaluate a fitted model on held-out interactions.

    Parameters
    ----------
    model
        A fitted persona model (fitted on ``train``).
    train, test
        A split from :func:`persona.data.leave_k_out` or :func:`persona.data.time_split`
        (same people and items). Training items are excluded from each list (the model's
        own history of the person is what it excludes, as in ``recommend``).
    k
        List length.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from persona.data import Interactions, leave_k_out
    >>> from persona.models import ItemKNN
    >>> X = Interactions.from_csr(sp.csr_matrix(np.kron(np.eye(2), np.ones((4, 4)))),
    ...     [f"u{i}" for i in range(8)], [f"i{i}" for i in range(8)])
    >>> train, test = leave_k_out(X, k=1, random_state=0)
    >>> result = evaluate(ItemKNN().fit(train), train, test, k=3)
    >>> result.recall
    1.0
    """
    if test.shape != train.shape or list(test.items) != list(train.items):
        raise ValidationError("train and test must share people and items; split one dataset")
    if not isinstance(k, int) or k < 1:
        raise ValidationError("k must be a positive integer")
    tm = test.matrix
    rows = np.flatnonzero(np.diff(tm.indptr) > 0)
    users = [str(u) for u in test.users[rows]]
    col = {str(i): j for j, i in enumerate(train.items)}
    recommended: list[list[int]] = []
    with progress_bar(len(users), "evaluate", show_progress) as bar:
        for start in range(0, len(users), block_size):
            chunk = users[start:start + block_size]
            for recs in model.recommend_batch(chunk, n=k, exclude_seen=True, explain=False):
                recommended.append([col[r.item] for r in recs])
            bar.update(len(chunk))
    return ranking_metrics(recommended, tm, rows.tolist(), k, train.n_items)
