"""What :func:`persona.evaluate.evaluate` returns: metrics at one k, at several k, per person."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, PrivateAttr

from persona._frames import require_pandas
from persona.errors import ValidationError

__all__ = ["METRICS", "EvaluationReport", "EvaluationResult", "PersonMetrics"]

#: The per-person metrics, in the order of the tables' columns.
METRICS = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "auc")


def _pandas() -> Any:
    return require_pandas("to_pandas()")


class PersonMetrics:
    """One row per evaluated person: ``user``, ``n_test`` (their held-out items), then
    ``hits@k``, ``precision@k``, ``recall@k``, ``ndcg@k``, ``map@k``, ``mrr@k``,
    ``hit_rate@k`` (0 or 1) and ``auc@k`` for each k.

    A person's ``precision@k`` is ``hits@k / min(k, n_test)``; the overall precision is
    the sum of hits over the sum of those denominators (implicit's), i.e. the mean of the
    per-person values weighted by ``min(k, n_test)``. Every other overall metric is the
    plain mean of its column.

    Columns are read-only numpy arrays: ``table["ndcg@10"]``. :meth:`to_records` gives a
    list of dicts, :meth:`to_pandas` a DataFrame.
    """

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValidationError("every column of a table must have the same length")
        self._columns = {}
        for name, values in columns.items():
            arr = np.array(values, copy=True)
            arr.flags.writeable = False
            self._columns[name] = arr

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(self._columns)

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()))) if self._columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._columns[name]
        except (KeyError, TypeError):
            raise ValidationError(
                f"no column {name!r}; the columns are {', '.join(self._columns)}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PersonMetrics):
            return NotImplemented
        return self.columns == other.columns and all(
            np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
            for a, b in zip(self._columns.values(), other._columns.values(), strict=True)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PersonMetrics({len(self)} people; columns: {', '.join(self.columns)})"

    def to_records(self) -> list[dict[str, Any]]:
        """The rows as dicts of plain Python values."""
        lists = {name: arr.tolist() for name, arr in self._columns.items()}
        return [dict(zip(lists, row, strict=True)) for row in zip(*lists.values(), strict=True)]

    def to_pandas(self) -> Any:
        """The table as a :class:`pandas.DataFrame` (one row per person)."""
        return _pandas().DataFrame({name: np.asarray(a) for name, a in self._columns.items()})


def concat_tables(tables: Sequence[PersonMetrics], key: str) -> PersonMetrics:
    """Stack tables with the same columns, adding a first column ``key`` (0, 1, ...)."""
    first = tables[0].columns
    if any(t.columns != first for t in tables):
        raise ValidationError("tables to stack must have the same columns")
    out = {key: np.repeat(np.arange(len(tables)), [len(t) for t in tables])}
    for name in first:
        out[name] = np.concatenate([t[name] for t in tables])
    return PersonMetrics(out)


class _Tabular(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    _per_person: PersonMetrics | None = PrivateAttr(default=None)

    @property
    def per_person(self) -> PersonMetrics:
        """One row per evaluated person with each metric at each k
        (see :class:`PersonMetrics`)."""
        if self._per_person is None:
            raise ValidationError("this result was built by hand and has no per-person table")
        return self._per_person


class EvaluationResult(_Tabular):
    """Ranking quality of a model on held-out interactions, at one cut-off ``k``.

    Over the people with at least one test item, with ``T`` their test items, ``R`` the
    top-``k`` recommendations (seen training items excluded) and ``N`` the other items of
    the catalogue (everything not in ``T``, training items included):

    - ``precision`` = Σ|R ∩ T| / Σ min(k, |T|) (hits over attainable hits; implicit's);
    - ``recall`` = mean of |R ∩ T| / |T|;
    - ``ndcg`` = mean of DCG@k / ideal DCG@k with binary relevance (implicit's);
    - ``map`` = mean of AP@k, normalised by min(k, |T|) (implicit's);
    - ``mrr`` = mean of 1 / rank of the first hit in the top ``k`` (0 without one);
    - ``hit_rate`` = share of people with at least one hit in the top ``k``;
    - ``auc`` = mean of implicit's AUC at ``k``: the share of (test item, other item) pairs
      ranked right, where items past the top ``k`` count as tied (half right), so it
      depends on ``k`` and is not the full-ranking ROC AUC; training items count among
      the other items, as in implicit (a person whose test items are the whole catalogue
      has ``nan``);
    - ``coverage`` = share of the catalogue that appears in at least one list.

    ``precision``, ``map``, ``ndcg`` and ``auc`` equal ``implicit.evaluation.
    ranking_metrics_at_k`` on the same lists, including lists shorter than ``k`` (a
    missing place is a miss, as implicit's padded places are). :attr:`per_person` has the
    same metrics for each person.
    """

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
    mrr: float = float("nan")
    """Mean reciprocal rank of the first hit at k."""
    hit_rate: float = float("nan")
    """Share of people with at least one hit at k."""
    auc: float = float("nan")
    """Mean AUC at k, as implicit's ``auc``."""
    coverage: float
    """Share of catalogue items recommended to anyone."""
    n_users: int
    """People evaluated (those with test items)."""

    def as_dict(self) -> dict[str, float]:
        """The metrics keyed ``"name@k"`` (``"ndcg@10"``), coverage included."""
        return {f"{name}@{self.k}": getattr(self, name) for name in (*METRICS, "coverage")}

    def to_pandas(self) -> Any:
        """A one-row :class:`pandas.DataFrame` indexed by ``k``."""
        return _pandas().DataFrame([self.model_dump(exclude={"k"})],
                                   index=_pandas().Index([self.k], name="k"))


class EvaluationReport(_Tabular):
    """Ranking quality at several cut-offs: ``report.at[10]`` (or ``report[10]``) is the
    :class:`EvaluationResult` at ``k=10``; :meth:`to_pandas` has one row per k;
    :attr:`per_person` one row per person with every metric at every k."""

    k: tuple[int, ...]
    """The cut-offs, in the order asked."""
    at: dict[int, EvaluationResult]
    """The result at each cut-off."""
    n_users: int
    """People evaluated (those with test items)."""

    def __getitem__(self, k: int) -> EvaluationResult:
        if k not in self.at:
            raise ValidationError(
                f"no result at k={k!r}; this report has k = {', '.join(map(str, self.k))}")
        return self.at[k]

    def as_dict(self) -> dict[str, float]:
        """Every metric at every k, keyed ``"name@k"`` (``"ndcg@10"``)."""
        out: dict[str, float] = {}
        for k in self.k:
            out.update(self.at[k].as_dict())
        return out

    def to_pandas(self) -> Any:
        """A :class:`pandas.DataFrame` with one row per k (index ``k``), metrics as columns."""
        pd = _pandas()
        return pd.DataFrame([self.at[k].model_dump(exclude={"k"}) for k in self.k],
                            index=pd.Index(list(self.k), name="k"))


def results_table(results: Iterable[EvaluationResult | EvaluationReport]) -> dict[str, np.ndarray]:
    """``"name@k"`` → array over ``results`` (one value per result, in order)."""
    dicts = [r.as_dict() for r in results]
    return {name: np.array([d[name] for d in dicts]) for name in dicts[0]}
