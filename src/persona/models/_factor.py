"""Matrix-factorisation models on implicit's kernels: the shared serving part and ALS
(BPR is in ``_bpr.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt
from scipy.linalg.lapack import dposv as _dposv

from persona._progress import progress_bar
from persona.errors import ValidationError
from persona.models._base import Recommender
from persona.models._params import ParamsConfig
from persona.models._registry import registered
from persona.models._threads import _one_blas_thread
from persona.models._topk import _NormIndex
from persona.privacy import ALSTimings, private_als_item_factors

__all__ = ["ALS", "ALSConfig"]

RandomState = int | np.random.Generator | None


class ALSConfig(ParamsConfig):
    """Validated parameters of :class:`ALS` (defaults: :class:`ALS`'s constructor)."""

    factors: PositiveInt
    """Number of latent factors ``k``."""
    iterations: PositiveInt
    """Number of alternating (user step, item step) sweeps."""
    regularization: PositiveFloat
    """L2 penalty ``λ`` on the factors (also used in the exact serving solve)."""
    cg_steps: Annotated[int, Field(ge=1, le=50)]
    """Conjugate-gradient steps per least-squares update while fitting (implicit's default)."""
    num_threads: NonNegativeInt
    """Threads for implicit's kernels; 0 means every core."""
    random_state: RandomState
    """Seed (int) or ``numpy.random.Generator`` for the initial factors (SPEC 7)."""


def _seed(random_state: RandomState) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def _refuse_non_finite(
    model: Recommender, matrix: sp.csr_matrix, regularization: float, *factors: np.ndarray
) -> None:
    """Raise (and leave ``model`` unfitted) when a fit's factors are not all finite.

    Very large confidences overflow the float32 kernels; the model would then score every
    item NaN and return empty lists for everyone."""
    if all(np.isfinite(f).all() for f in factors):
        return
    for name in ("users_", "items_", "history_", "item_factors_", "user_factors_"):
        model.__dict__.pop(name, None)
    largest = float(matrix.data.max()) if matrix.nnz else 0.0
    raise ValidationError(
        f"{type(model).__name__} fit gave non-finite factors (the float32 arithmetic "
        f"overflowed): the largest value in the matrix is {largest:.3g}. Scale the values "
        "down (e.g. cap them at 1e6, or use log1p(value)) or raise regularization "
        f"(now {regularization:g}) and fit again; the model is not fitted."
    )


def _transposed(Y: np.ndarray) -> np.ndarray:
    """``Y.T`` as a C-contiguous copy, block by block: numpy's one-pass strided copy of a
    tall matrix misses the cache on every element (2.6 ms against 0.8 ms for MovieLens'
    9,724 x 64 float32 factors, *one-off*), and the fit pays it each time. Rank scoring
    keeps the contiguous form: a block of 64 people times a transposed view took 1.3x as
    long (*one-off*)."""
    Y = np.ascontiguousarray(Y)
    out = np.empty(Y.shape[::-1], dtype=Y.dtype)
    step = 64  # 64 rows of up to a few hundred factors stay within the L1/L2 caches
    for a in range(0, Y.shape[0], step):
        out[:, a:a + step] = Y[a:a + step].T
    return out


class _FactorModel(Recommender):
    """Shared serving for models that score with ``user_vector · item_factor``.

    Candidates are ranked in float32 (as fast as implicit's own scoring). Every item whose
    float32 score lies within twice the float32 rounding bound of a person's ``n``-th best
    is then re-scored in float64 (usually ``n`` items, a few more on near-ties), so the
    reported scores and their order are provably those of the exact float64 model.
    """

    item_factors_: np.ndarray
    user_factors_: np.ndarray
    _Y32T: np.ndarray
    _Y64: np.ndarray
    _item_norms: np.ndarray
    _margin_scale: float

    def _prepare_items(self) -> None:
        Y = np.ascontiguousarray(self.item_factors_, dtype=np.float32)
        self.item_factors_ = Y
        self._Y32T = _transposed(Y)
        self._Y64 = Y64 = Y.astype(np.float64)
        # |float32 score - exact score| <= (f + 2) 2^-24 |u| |y| for f factors: rounding u
        # to float32 (y is float32 already) and any order of f float32 multiply-adds
        # (Higham, Accuracy and Stability, 3.1). Two such errors separate an item from the
        # n-th best; 2.5 leaves room for the float64 re-scoring's own rounding.
        norms = np.sqrt(np.einsum("ij,ij->i", Y64, Y64))
        ymax = float(norms.max()) if Y.size else 0.0
        # also for similar_items and the batch pruning's bound (an upper bound still: an
        # all-zero item gets 1e-10, so it scores 0 in similar_items, not NaN)
        self._item_norms = np.where(norms == 0, 1e-10, norms)
        self._margin_scale = 2.5 * (Y.shape[1] + 2) * 2.0**-24 * ymax
        self._pruning: _NormIndex | None = None  # built on the first batch

    def _select(
        self,
        rows: np.ndarray,
        users: list[str],
        n: int,
        exclude_seen: bool | None,
        filters: tuple[np.ndarray | None, np.ndarray | None],
        rule: Any,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Batches skip most of the catalogue with an exact bound (see :class:`_NormIndex`);
        single people and business-rule hooks take the plain path. Both give the same
        lists: the bound only drops items that cannot be re-scored candidates."""
        ends = None if rule is not None or len(rows) < 2 else self._pruning_plan(n)
        index = self._pruning
        if ends is None or index is None:
            return super()._select(rows, users, n, exclude_seen, filters, rule)
        if exclude_seen is None:
            exclude_seen = self.personalised
        return index.select(self, rows, n, exclude_seen, filters, ends)

    def _pruning_plan(self, n: int) -> list[int] | None:
        """The norm-order segments a batch's top ``n`` is scored in (:meth:`_NormIndex.plan`),
        or None for the plain path: small catalogues, long lists, or data on which the
        bound settles too few people to pay."""
        m = len(self.items_)
        if m < 1024 or 16 * n > m:
            return None
        if self._pruning is None:
            self._pruning = _NormIndex(self._Y32T, self._item_norms)
        return self._pruning.plan(m, n)

    def _first_pass_items(self, n: int, rule: Any) -> int:
        if rule is not None or self._pruning is None:  # not built before the first batch
            return len(self.items_)
        ends = self._pruning_plan(n)
        return len(self.items_) if ends is None else ends[0]

    def _user_vectors64(self, rows: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _user_vectors32(self, rows: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _rank_scores(self, rows: np.ndarray) -> np.ndarray:
        out: np.ndarray = self._user_vectors32(rows) @ self._Y32T
        return out

    def _user_norms(self, rows: np.ndarray) -> np.ndarray:
        U = self._user_vectors64(rows)
        out: np.ndarray = np.sqrt(np.einsum("ij,ij->i", U, U))
        return out

    def _rank_margin(self, rows: np.ndarray) -> np.ndarray:
        return self._user_norms(rows) * self._margin_scale

    def _exact_scores(self, rows: np.ndarray, cand: np.ndarray, approx: np.ndarray) -> np.ndarray:
        if cand.size == 0:
            return np.zeros(0)
        out: np.ndarray = np.einsum("ij,ij->i", self._Y64[cand], self._user_vectors64(rows))
        return out

    def _similar_scores(self, item: int) -> np.ndarray:
        norms = self._item_norms
        out: np.ndarray = (self._Y64 @ self._Y64[item]) / (norms * norms[item])
        return out


@registered
class ALS(_FactorModel):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008) on implicit's kernels.

    Fitting runs implicit's conjugate-gradient ALS. **Serving** uses the exact solve
    ``u = (YᵀC_uY + λI)⁻¹ YᵀC_u p_u`` for each person (computed on first use and cached),
    so a score ``y_i·u`` splits exactly into per-history-item contributions
    (:meth:`contributions`); implicit's CG user factors differ from that solve by ~1.5%
    median (implicit issue #175). The confidence convention is implicit's: the matrix
    value is ``c_ui`` (not ``1 + α r_ui``), ``p_ui = 1`` where stored, ``c = 1, p = 0``
    elsewhere.

    Parameters
    ----------
    factors, iterations, regularization, cg_steps, num_threads, random_state
        See :class:`ALSConfig`.
    privacy
        ``None`` (default) or a :class:`persona.DP`: train the item factors with DP-ALS
        (:func:`persona.privacy.private_als_item_factors`, Chien et al. 2021). Each
        iteration releases the item-side sufficient statistics with noise; the events are
        treated as binary preferences (``alpha = 0``, as recommended under DP: values are
        clipped to ``max_value`` and each person keeps at most ``max_events_per_person``
        items); ``DP.weight_budget`` and ``DP.factor_norm`` are used as documented there.
        Served vectors are then the exact solve of each person's own row against the
        private item factors (their own data, shown only to them), so explanations still
        sum exactly to the served scores. ``privacy_spent_`` says what was spent;
        ``fit_timings_`` where the time went. :meth:`forget` on a private model drops the
        person's history and vector but does not re-solve the item factors (that would
        release them without noise). ``cg_steps``, ``num_threads`` and ``show_progress``
        do not apply to private training.
    show_progress
        tqdm bar while fitting; ``None`` shows one when someone is watching: on an
        interactive terminal, or in a Jupyter notebook with ipywidgets (its widget bar).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from persona.data import Interactions
    >>> X = Interactions.from_csr(sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 3)))),
    ...     [f"u{i}" for i in range(6)], [f"i{i}" for i in range(6)])
    >>> model = ALS(factors=4, iterations=5, random_state=0).fit(X)
    >>> sorted(r.item for r in model.recommend("u0", n=3, exclude_seen=False))
    ['i0', 'i1', 'i2']
    >>> items, parts = model.contributions("u0", "i1")
    >>> bool(np.isclose(parts.sum(), model.score("u0", ["i1"])[0], rtol=1e-9))
    True

    Private training:

    >>> from persona.privacy import DP
    >>> private = ALS(factors=4, iterations=2, random_state=0,
    ...               privacy=DP(epsilon=8.0, max_events_per_person=3)).fit(X)
    >>> private.privacy_spent_.mechanism, private.privacy_spent_.epsilon <= 8.0
    ('dp-als', True)
    """

    _config_class = ALSConfig
    _private_training = True

    def __init__(
        self,
        factors: int = 64,
        iterations: int = 15,
        regularization: float = 0.05,
        cg_steps: int = 3,
        num_threads: int = 0,
        random_state: RandomState = None,
        *,
        privacy: Any = None,
        show_progress: bool | None = None,
    ) -> None:
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.cg_steps = cg_steps
        self.num_threads = num_threads
        self.random_state = random_state
        self.privacy = privacy
        self.show_progress = show_progress

    # -------------------------------------------------------------- fitting
    def _fit(self, matrix: sp.csr_matrix, config: ALSConfig) -> None:
        from implicit.cpu import _als

        Cui = sp.csr_matrix(matrix, dtype=np.float32)
        Ciu = Cui.T.tocsr()
        n_users, n_items = Cui.shape
        rng = _seed(config.random_state)
        # same initialisation as implicit.cpu.als, so a seed gives implicit's own factors
        U = rng.random((n_users, config.factors), dtype=np.float32) * 0.01
        Y = rng.random((n_items, config.factors), dtype=np.float32) * 0.01
        # BLAS is already at one thread: fit() holds threadpool_limits around _fit
        with progress_bar(config.iterations, "ALS", self.show_progress) as bar:
            for _ in range(config.iterations):
                _als.least_squares_cg(
                    Cui, U, Y, config.regularization,
                    num_threads=config.num_threads, cg_steps=config.cg_steps,
                )
                self._item_step(Ciu, Y, U, config)
                bar.update(1)
        _refuse_non_finite(self, matrix, config.regularization, Y, U)
        self.item_factors_ = Y
        self.user_factors_ = U  # implicit's CG factors: only used to re-solve items in forget
        self._prepare_items()
        self._reset_served()

    def _fit_private(self, matrix: sp.csr_matrix, config: ALSConfig, privacy: Any) -> None:
        """DP-ALS item factors; served vectors come from the exact per-person solve."""
        rs = config.random_state
        # the seed only draws the data-independent initial item factors, never noise
        seed = int(rs.integers(2**63)) if isinstance(rs, np.random.Generator) else rs
        timings = ALSTimings()
        Y, spent = private_als_item_factors(
            matrix, config.factors, config.iterations, config.regularization, 0.0, privacy,
            random_state=seed, timings=timings,
        )
        self.item_factors_ = Y
        # no training-time user vectors are kept: forget does not re-solve items here
        self.user_factors_ = np.zeros((matrix.shape[0], config.factors), dtype=np.float32)
        self.privacy_spent_ = spent
        self.fit_timings_ = timings
        self._prepare_items()
        self._reset_served()

    def _item_step(
        self, Ciu: sp.csr_matrix, Y: np.ndarray, U: np.ndarray, config: ALSConfig
    ) -> None:
        """One least-squares update of the item factors ``Y`` in place.

        Private training does not use this step: :meth:`_fit_private` takes the whole
        item side from DP-ALS (:func:`persona.privacy.private_als_item_factors`).
        """
        from implicit.cpu import _als

        _als.least_squares_cg(
            Ciu, Y, U, config.regularization,
            num_threads=config.num_threads, cg_steps=config.cg_steps,
        )

    def _prepare_items(self) -> None:
        super()._prepare_items()
        k = self._Y64.shape[1]
        G = self._Y64.T @ self._Y64
        G[np.diag_indices(k)] += self.config_.regularization
        self._G = G

    def _reset_served(self) -> None:
        n, k = self.history_.shape[0], self.item_factors_.shape[1]
        self._served = np.zeros((n, k))
        self._served32 = np.zeros((n, k), dtype=np.float32)
        self._solved = np.zeros(n, dtype=bool)

    # -------------------------------------------------------------- serving
    def _history(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """The item columns and confidences of the person in ``row``."""
        h = self.history_
        a, b = h.indptr[row], h.indptr[row + 1]
        return h.indices[a:b], h.data[a:b]

    def _spd_solve(self, Yh: np.ndarray, c: np.ndarray, B: np.ndarray) -> np.ndarray:
        """``W_u B`` with ``W_u = (YᵀC_uY + λI)⁻¹`` for the person whose history has item
        factors ``Yh`` and confidences ``c``: one LAPACK ``dposv`` (factor and solve). The
        served vectors, their precomputation and the explanations all go through here, so
        a served score and its explanation come from the same arithmetic."""
        A = (Yh.T * (c - 1.0)) @ Yh
        A += self._G
        _, x, info = _dposv(A, B, overwrite_a=1, overwrite_b=1)
        if info != 0:  # pragma: no cover - A is SPD for c >= 0 and λ > 0
            x = np.linalg.lstsq(self._G + (Yh.T * (c - 1.0)) @ Yh, B, rcond=None)[0]
        out: np.ndarray = x
        return out

    def _solve(self, rows: np.ndarray) -> None:
        """Exact served vectors for ``rows`` not solved yet: one Cholesky solve per person,
        the same arithmetic whether one person or everyone is solved, so a vector never
        depends on which call solved it."""
        todo = rows[~self._solved[rows]]
        if todo.size > 1:
            todo = np.unique(todo)
        Y, served, served32 = self._Y64, self._served, self._served32
        for r in todo.tolist():
            idx, c = self._history(r)
            if idx.size == 0:  # empty history: the solution is 0
                served[r] = 0.0
            else:
                Yh = Y[idx]
                served[r] = self._spd_solve(Yh, c, c @ Yh)
            served32[r] = served[r]
            self._solved[r] = True

    def _prepare_rows(self, rows: np.ndarray) -> None:
        if not self._solved[rows].all():
            self._solve(rows)

    def _user_vectors64(self, rows: np.ndarray) -> np.ndarray:
        if not self._solved[rows].all():
            self._solve(rows)
        out: np.ndarray = self._served[rows]
        return out

    def _user_vectors32(self, rows: np.ndarray) -> np.ndarray:
        if not self._solved[rows].all():
            self._solve(rows)
        out: np.ndarray = self._served32[rows]
        return out

    def user_vector(self, user: str) -> np.ndarray:
        """The served (exactly solved) vector of ``user``, float64."""
        self._check_fitted()
        out: np.ndarray = self._user_vectors64(np.array([self._row(user)]))[0].copy()
        return out

    def precompute(self) -> ALS:
        """Solve every person's served vector now instead of on first use (one small
        Cholesky solve each; :class:`persona.Personalizer` runs it before swapping a new
        fit in, so no request pays it)."""
        self._check_fitted()
        with _one_blas_thread():  # many 64x64 problems: threads only add overhead
            self._solve(np.arange(self.history_.shape[0]))
        return self

    def contributions(self, user: str, item: str) -> tuple[np.ndarray, np.ndarray]:
        """Exact split of the served score into per-history-item parts.

        ``score = Σ_j (y_iᵀ W_u y_j) c_uj`` with ``W_u = (YᵀC_uY + λI)⁻¹``: the parts sum to
        :meth:`score` up to float64 rounding.
        """
        self._check_fitted()
        idx, parts = self._contribution_matrix(self._row(user), np.array([self._item(item)]))
        return self.items_[idx], parts[:, 0]

    def _contribution_matrix(self, row: int, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`contributions` for several items: one factorisation of the person's system."""
        idx, c = self._history(row)
        if idx.size == 0:
            return idx, np.zeros((0, len(cols)))
        Yh = self._Y64[idx]
        return idx, (Yh @ self._spd_solve(Yh, c, self._Y64[cols].T)) * c[:, None]

    # ----------------------------------------------------- fold-in / forget
    def _after_fold_in(self, row: int) -> None:
        self._after_fold_in_rows(np.array([row]))

    def _after_fold_in_rows(self, rows: np.ndarray) -> None:
        k = self.item_factors_.shape[1]
        grow = self.history_.shape[0] - self._served.shape[0]
        if grow > 0:  # new people: their vectors are added once, then solved
            self._served = np.vstack([self._served, np.zeros((grow, k))])
            self._served32 = np.vstack([self._served32, np.zeros((grow, k), dtype=np.float32)])
            self._solved = np.r_[self._solved, np.zeros(grow, dtype=bool)]
            self.user_factors_ = np.vstack([self.user_factors_,
                                            np.zeros((grow, k), np.float32)])
        self._solved[rows] = False
        self._solve(rows)
        self.user_factors_[rows] = self._served32[rows]

    def _after_forget(self, row: int, items: np.ndarray) -> None:
        """Drop the person's vectors and re-solve the items they touched without them.

        The item factors of everything in their history get one exact least-squares update
        against the remaining people; every served vector is then re-solved. Second-order
        influence (through other people's training vectors) remains until the next fit.

        A privately trained model only drops the person's vector and history: its item
        factors were released under DP and are not re-solved (which would release them
        without noise); refit for a fresh private release.
        """
        from implicit.cpu import _als

        keep = np.ones(self.user_factors_.shape[0], dtype=bool)
        keep[row] = False
        self.user_factors_ = np.ascontiguousarray(self.user_factors_[keep])
        if self.privacy_spent_ is not None:
            self._reset_served()
            return
        if items.size:
            U = self.user_factors_
            Ciu = sp.csr_matrix(self.history_.T.tocsr()[items], dtype=np.float32)
            out = np.zeros((items.size, U.shape[1]), dtype=np.float32)
            with _one_blas_thread():
                _als._least_squares(
                    U.T @ U, Ciu.indptr, Ciu.indices, Ciu.data, out, U,
                    self.config_.regularization, num_threads=self.config_.num_threads,
                )
            self.item_factors_[items] = out
            self._prepare_items()
        self._reset_served()

    # ----------------------------------------------------------- persistence
    def _arrays(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors_, "user_factors": self.user_factors_}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_factors_ = np.array(arrays["item_factors"], dtype=np.float32)
        self.user_factors_ = np.array(arrays["user_factors"], dtype=np.float32)
        self._prepare_items()
        self._reset_served()
