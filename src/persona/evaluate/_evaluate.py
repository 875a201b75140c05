"""``evaluate``: recommend to every tested person once, score the lists at each k."""

from __future__ import annotations

from typing import TYPE_CHECKING, overload

import numpy as np

from persona._progress import progress_bar
from persona.data import Interactions
from persona.errors import ValidationError
from persona.evaluate._metrics import check_ks, score_lists
from persona.evaluate._result import EvaluationReport, EvaluationResult

if TYPE_CHECKING:
    from persona.models import Recommender

__all__ = ["evaluate"]


@overload
def evaluate(
    model: Recommender, train: Interactions, test: Interactions, k: int = 10, *,
    show_progress: bool | None = False, block_size: int = 512,
) -> EvaluationResult: ...
@overload
def evaluate(
    model: Recommender, train: Interactions, test: Interactions, k: list[int] | tuple[int, ...], *,
    show_progress: bool | None = False, block_size: int = 512,
) -> EvaluationReport: ...
def evaluate(
    model: Recommender,
    train: Interactions,
    test: Interactions,
    k: int | list[int] | tuple[int, ...] = 10,
    *,
    show_progress: bool | None = False,
    block_size: int = 512,
) -> EvaluationResult | EvaluationReport:
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
        List length: an ``int`` gives an :class:`EvaluationResult`; a list or tuple of
        distinct ints (``k=[5, 10]``) an :class:`EvaluationReport` with the result at each
        k (one list of length ``max(k)`` per person, cut at each k).
    show_progress
        A progress bar; ``None`` shows one when someone is watching (an interactive
        terminal, or a notebook with ipywidgets).
    block_size
        People per ``recommend_arrays`` call (changes the speed, never the result).

    Returns
    -------
    EvaluationResult or EvaluationReport
        Precision, recall, NDCG, MAP, MRR, hit rate, AUC and coverage (definitions in
        :class:`EvaluationResult`), and ``per_person``: one row per tested person.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from persona.data import Interactions, leave_k_out
    >>> from persona.models import ItemKNN
    >>> X = Interactions.from_csr(sp.csr_matrix(np.kron(np.eye(2), np.ones((4, 4)))),
    ...     [f"u{i}" for i in range(8)], [f"i{i}" for i in range(8)])
    >>> train, test = leave_k_out(X, k=1, random_state=0)
    >>> model = ItemKNN().fit(train)
    >>> evaluate(model, train, test, k=3).recall
    1.0
    >>> report = evaluate(model, train, test, k=[1, 3])
    >>> report.at[1].hit_rate, report.at[3].mrr, len(report.per_person)
    (1.0, 1.0, 8)
    """
    ks, single = check_ks(k)
    if not isinstance(train, Interactions) or not isinstance(test, Interactions):
        raise ValidationError("train and test must be Interactions; split one with "
                              "persona.data.leave_k_out or time_split")
    if test.shape != train.shape or list(test.items) != list(train.items):
        raise ValidationError("train and test must share people and items; split one dataset")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValidationError(f"block_size must be a positive integer, not {block_size!r}")
    tm = test.matrix
    rows = np.flatnonzero(np.diff(tm.indptr) > 0)
    users = test.users[rows].tolist()
    col = {item: j for j, item in enumerate(train.items.tolist())}
    kmax = max(ks)
    cols = np.full((len(users), kmax), -1, dtype=np.int64)
    with progress_bar(len(users), "evaluate", show_progress) as bar:
        for start in range(0, len(users), block_size):
            chunk = users[start:start + block_size]
            res = model.recommend_arrays(chunk, n=kmax, exclude_seen=True)
            width = res.items.shape[1]
            cols[start:start + len(chunk), :width] = np.array(
                [[col.get(i, -1) for i in line] for line in res.items.tolist()],
                dtype=np.int64).reshape(len(chunk), width)
            bar.update(len(chunk))
    report = score_lists(cols, tm, rows, ks, train.n_items, users)
    return report.at[ks[0]] if single else report

