"""k-fold cross-validation by person: each fold tests a different group of people."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from persona._frames import require_pandas
from persona._progress import progress_bar
from persona.data import Interactions
from persona.errors import ValidationError
from persona.evaluate._evaluate import evaluate
from persona.evaluate._metrics import check_ks
from persona.evaluate._result import (
    EvaluationReport,
    EvaluationResult,
    PersonMetrics,
    concat_tables,
    results_table,
)

if TYPE_CHECKING:
    from persona.models import Recommender

__all__ = ["CrossValidationResult", "cross_validate", "person_folds"]


def _positive_int(value: object, name: str, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        rule = "a positive integer" if least == 1 else f"an integer of at least {least}"
        raise ValidationError(f"{name} must be {rule}, not {value!r}")
    return int(value)


def _split(X: Interactions, test_mask: np.ndarray) -> tuple[Interactions, Interactions]:
    """Train (entries outside ``test_mask``) and test, both with X's people and items."""
    m = X.matrix
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    parts = []
    for mask in (~test_mask, test_mask):
        indptr = np.zeros(m.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows[mask], minlength=m.shape[0]), out=indptr[1:])
        part = sp.csr_matrix((m.data[mask], m.indices[mask], indptr), shape=m.shape)
        part.has_canonical_format = True
        parts.append(X.with_matrix(part, None if X.at is None else X.at[mask]))
    return parts[0], parts[1]


def person_folds(
    X: Interactions,
    folds: int = 5,
    *,
    holdout: int = 1,
    by: Literal["random", "time"] = "random",
    random_state: int | np.random.Generator | None = None,
) -> Iterator[tuple[Interactions, Interactions]]:
    """Split the PEOPLE of ``X`` into ``folds`` groups; yield one ``(train, test)`` per group.

    Every person with more than ``holdout`` items is in exactly one group (groups differ in
    size by at most one). In the fold of their group, ``holdout`` of their items are held
    out into ``test`` (``by="random"``: chosen with ``random_state``; ``by="time"``: their
    latest, needs event times), as :func:`persona.data.leave_k_out` does; the rest of their
    items and everyone else's stay in ``train``, so a personal model knows them. People
    with ``holdout`` items or fewer are never tested. ``train`` and ``test`` keep the
    people and items of ``X``. Arguments are checked before the first fold is built.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = Interactions.from_csr(sp.csr_matrix(np.ones((4, 3))), list("abcd"), list("xyz"))
    >>> [(train.nnz, test.nnz) for train, test in person_folds(X, folds=2, random_state=0)]
    [(10, 2), (10, 2)]
    """
    if not isinstance(X, Interactions):
        raise ValidationError("X must be Interactions; build one with persona.data.Interactions")
    folds = _positive_int(folds, "folds", least=2)
    holdout = _positive_int(holdout, "holdout")
    if by not in ("random", "time"):
        raise ValidationError(f"by must be 'random' or 'time', not {by!r}")
    if by == "time" and X.at is None:
        raise ValidationError("by='time' needs event times; build the interactions with 'at'")
    m = X.matrix
    lengths = np.diff(m.indptr)
    eligible = np.flatnonzero(lengths > holdout)
    if len(eligible) < folds:
        raise ValidationError(
            f"only {len(eligible)} people have more than holdout={holdout} items, too few "
            f"for folds={folds}; use fewer folds or a smaller holdout")
    rng = np.random.default_rng(random_state)
    groups = np.array_split(rng.permutation(eligible), folds)
    rows = np.repeat(np.arange(m.shape[0]), lengths)
    key = X.at.view(np.int64) if by == "time" else rng.random(m.nnz)  # type: ignore[union-attr]
    order = np.lexsort((key, rows))  # within each row, ascending key
    pos = np.empty(m.nnz, dtype=np.int64)
    pos[order] = np.arange(m.nnz) - m.indptr[rows[order]]
    last = pos >= lengths[rows] - holdout

    def generate() -> Iterator[tuple[Interactions, Interactions]]:
        for group in groups:
            tested = np.zeros(m.shape[0], dtype=bool)
            tested[group] = True
            yield _split(X, last & tested[rows])

    return generate()


def _factory(model: Any) -> Callable[[], Any]:
    if hasattr(model, "fit") and hasattr(model, "get_params"):
        blocked = sorted(getattr(model, "blocked_", ()))  # never served: in every fold too

        def copy() -> Any:
            fresh = type(model)(**model.get_params(deep=False))
            return fresh.block(blocked) if blocked else fresh

        return copy
    if callable(model):
        def make() -> Any:
            made = model()
            if not (hasattr(made, "fit") and hasattr(made, "recommend_arrays")):
                raise ValidationError(
                    f"the model function returned {made!r}, not a persona model; return a "
                    "new unfitted model such as persona.ALS()")
            return made
        return make
    raise ValidationError(
        "model must be an unfitted persona model or a function that returns a new one "
        f"(such as persona.ALS(factors=32) or lambda: persona.ALS()); got {model!r}")


@dataclass(frozen=True, eq=False, repr=False)
class CrossValidationResult:
    """What :func:`cross_validate` found: one result per fold and their summary."""

    k: int | tuple[int, ...]
    """The cut-off(s), as asked."""
    results: tuple[EvaluationResult | EvaluationReport, ...]
    """Each fold's result (an :class:`EvaluationReport` when several k were asked)."""

    @property
    def scores(self) -> dict[str, np.ndarray]:
        """``"name@k"`` (``"ndcg@10"``) → the metric in each fold."""
        return results_table(self.results)

    @property
    def mean(self) -> dict[str, float]:
        """Each metric's mean over the folds."""
        return {name: float(v.mean()) for name, v in self.scores.items()}

    @property
    def sd(self) -> dict[str, float]:
        """Each metric's standard deviation over the folds (sample sd, ``ddof=1``, as
        pandas' ``std``)."""
        return {name: float(v.std(ddof=1)) for name, v in self.scores.items()}

    @property
    def per_person(self) -> PersonMetrics:
        """Every fold's per-person table stacked, with a first column ``fold``."""
        return concat_tables([r.per_person for r in self.results], "fold")

    def to_pandas(self) -> Any:
        """A :class:`pandas.DataFrame` with one row per fold (index ``fold``) and a column
        per ``"name@k"``; ``frame.agg(["mean", "std"])`` summarises it."""
        frame = require_pandas("to_pandas()").DataFrame(self.scores)
        frame.index.name = "fold"
        return frame

    def __repr__(self) -> str:
        mean, sd = self.mean, self.sd
        body = "; ".join(f"{name} = {mean[name]:.4f} ± {sd[name]:.4f}" for name in mean)
        return f"CrossValidationResult({len(self.results)} folds: {body})"


def cross_validate(
    model: Recommender | Callable[[], Recommender],
    X: Interactions,
    folds: int = 5,
    *,
    k: int | list[int] | tuple[int, ...] = 10,
    holdout: int = 1,
    by: Literal["random", "time"] = "random",
    random_state: int | np.random.Generator | None = None,
    show_progress: bool | None = False,
) -> CrossValidationResult:
    """k-fold cross-validation by person: fit a fresh model per fold and :func:`evaluate` it.

    Parameters
    ----------
    model
        An unfitted persona model, used as a template: each fold fits a new one built with
        ``type(model)(**model.get_params(deep=False))``, blocking the items it blocks
        (``model.block``); or a function (or class) that returns a new unfitted model. The
        given model itself is never fitted.
    X
        All interactions; :func:`person_folds` splits them (``folds``, ``holdout``, ``by``
        and ``random_state`` are its arguments).
    k
        Cut-off(s), as in :func:`evaluate`.
    show_progress
        A bar over the folds; ``None`` shows one when someone is watching (an
        interactive terminal, or a notebook with ipywidgets: see ``persona._progress``).

    Returns
    -------
    CrossValidationResult
        ``results`` (one per fold, each with its ``per_person`` table), ``scores``,
        ``mean`` and ``sd`` by ``"name@k"``, and ``to_pandas()``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from persona.models import ItemKNN
    >>> X = Interactions.from_csr(sp.csr_matrix(np.kron(np.eye(2), np.ones((6, 5)))),
    ...     [f"u{i}" for i in range(12)], [f"i{i}" for i in range(10)])
    >>> cv = cross_validate(ItemKNN(), X, folds=3, k=[1, 4], random_state=0)
    >>> cv.mean["hit_rate@4"], cv.sd["hit_rate@4"]
    (1.0, 0.0)
    """
    check_ks(k)
    make = _factory(model)
    splits = person_folds(X, folds, holdout=holdout, by=by, random_state=random_state)
    results = []
    with progress_bar(folds, "cross_validate", show_progress) as bar:
        for train, test in splits:
            results.append(evaluate(make().fit(train), train, test, k))
            bar.update(1)
    return CrossValidationResult(k=k if isinstance(k, int) else tuple(k), results=tuple(results))
