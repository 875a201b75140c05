"""Bayesian personalised ranking (BPR) on implicit's kernel, served by the shared
factor-model part of ``_factor.py``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import NonNegativeInt, PositiveFloat, PositiveInt

from persona._progress import show_progress
from persona.models._factor import RandomState, _FactorModel, _refuse_non_finite, _seed
from persona.models._params import ParamsConfig
from persona.models._registry import registered

__all__ = ["BPR", "BPRConfig"]


class BPRConfig(ParamsConfig):
    """Validated parameters of :class:`BPR` (defaults: :class:`BPR`'s constructor)."""

    factors: PositiveInt
    """Number of latent factors (implicit adds one item-bias column)."""
    iterations: PositiveInt
    """Number of SGD epochs."""
    learning_rate: PositiveFloat
    """SGD step size."""
    regularization: PositiveFloat
    """L2 penalty on the factors."""
    num_threads: NonNegativeInt
    """Threads for implicit's kernels; 0 means every core."""
    random_state: RandomState
    """Seed (int) or ``numpy.random.Generator`` (SPEC 7)."""


@registered
class BPR(_FactorModel):
    """Bayesian Personalised Ranking (Rendle et al. 2009) on implicit's SGD kernel.

    BPR scores have **no exact per-item decomposition** (:meth:`contributions` raises).
    :meth:`fold_in` projects the new person's history onto the item factors with a
    regularised least-squares solve (as ALS does); it is an approximation of a refit.
    :meth:`forget` removes the person's vector and history; the item factors keep the
    SGD updates they caused until the next fit.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from persona.data import Interactions
    >>> X = Interactions.from_csr(sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 3)))),
    ...     [f"u{i}" for i in range(6)], [f"i{i}" for i in range(6)])
    >>> model = BPR(factors=4, iterations=20, random_state=0).fit(X)
    >>> len(model.recommend("u0", n=2))
    2
    """

    _config_class = BPRConfig

    def __init__(
        self,
        factors: int = 64,
        iterations: int = 100,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        num_threads: int = 0,
        random_state: RandomState = None,
        *,
        privacy: Any = None,
        show_progress: bool | None = None,
    ) -> None:
        self.factors = factors
        self.iterations = iterations
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.num_threads = num_threads
        self.random_state = random_state
        self.privacy = privacy
        self.show_progress = show_progress

    def _fit(self, matrix: sp.csr_matrix, config: BPRConfig) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        raw = BayesianPersonalizedRanking(  # BLAS at one thread: fit() holds the limit
            factors=config.factors, learning_rate=config.learning_rate,
            regularization=config.regularization, iterations=config.iterations,
            num_threads=config.num_threads, random_state=_seed(config.random_state),
        )
        raw.fit(sp.csr_matrix(matrix, dtype=np.float32),
                show_progress=show_progress(self.show_progress))
        _refuse_non_finite(
            self, matrix, config.regularization, raw.item_factors, raw.user_factors
        )
        self.item_factors_ = np.ascontiguousarray(raw.item_factors, dtype=np.float32)
        self.user_factors_ = np.ascontiguousarray(raw.user_factors, dtype=np.float32)
        self._prepare_items()

    def _prepare_items(self) -> None:
        super()._prepare_items()
        self._U64 = self.user_factors_.astype(np.float64)

    def _user_vectors64(self, rows: np.ndarray) -> np.ndarray:
        out: np.ndarray = self._U64[rows]
        return out

    def _user_vectors32(self, rows: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.user_factors_[rows]
        return out

    def _after_fold_in(self, row: int) -> None:
        self._after_fold_in_rows(np.array([row]))

    def _after_fold_in_rows(self, rows: np.ndarray) -> None:
        grow = self.history_.shape[0] - self.user_factors_.shape[0]
        if grow > 0:
            self.user_factors_ = np.vstack([
                self.user_factors_,
                np.zeros((grow, self.user_factors_.shape[1]), dtype=np.float32)])
        for row in rows.tolist():
            self.user_factors_[row] = self._fold_vector(row)
        self._U64 = self.user_factors_.astype(np.float64)

    def _fold_vector(self, row: int) -> np.ndarray:
        """The person's BPR vector from their history row against the item factors."""
        h = self.history_
        a, b = h.indptr[row], h.indptr[row + 1]
        idx, c = h.indices[a:b], h.data[a:b]
        Y = self._Y64
        k = Y.shape[1] - 1  # last column: implicit's item bias, user side is 1
        u = np.zeros(k + 1)
        u[k] = 1.0
        if idx.size:
            Yk = Y[:, :k]
            Yh = Yk[idx]
            A = Yk.T @ Yk + (Yh.T * (c - 1.0)) @ Yh + self.config_.regularization * np.eye(k)
            u[:k] = np.linalg.solve(A, Yh.T @ c)
        return u

    def _after_forget(self, row: int, items: np.ndarray) -> None:
        keep = np.ones(self.user_factors_.shape[0], dtype=bool)
        keep[row] = False
        self.user_factors_ = np.ascontiguousarray(self.user_factors_[keep])
        self._U64 = self.user_factors_.astype(np.float64)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors_, "user_factors": self.user_factors_}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_factors_ = np.array(arrays["item_factors"], dtype=np.float32)
        self.user_factors_ = np.array(arrays["user_factors"], dtype=np.float32)
        self._prepare_items()
