"""Item-based nearest neighbours (cosine and BM25) on implicit's kernels, and Popularity."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from persona._progress import show_progress
from persona.errors import ValidationError
from persona.models._base import Recommender
from persona.models._params import ParamsConfig
from persona.models._registry import registered
from persona.models._threads import _one_blas_thread
from persona.privacy import private_cooccurrence, private_item_counts
from persona.schema import PrivacySpent

__all__ = [
    "ItemKNN", "ItemKNNConfig", "Popularity", "PopularityConfig", "cosine_top_k",
    "implicit_similarity",
]


class ItemKNNConfig(ParamsConfig):
    """Validated parameters of :class:`ItemKNN` (defaults: :class:`ItemKNN`'s constructor)."""

    measure: Literal["cosine", "bm25"]
    """Item–item similarity: cosine of item columns, or BM25-weighted co-occurrence."""
    neighbours: PositiveInt
    """Number of most similar items kept per item (``K`` in implicit)."""
    k1: PositiveFloat
    """BM25 term-saturation parameter (``measure="bm25"`` only)."""
    b: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
    """BM25 length normalisation in [0, 1] (``measure="bm25"`` only)."""
    num_threads: NonNegativeInt
    """Threads for implicit's kernel; 0 means every core."""
    head: PositiveInt | None
    """Under privacy: the co-occurrences are released for the ``head`` items with the
    highest noisy counts only (``None``: every item; no effect without privacy). See
    :class:`ItemKNN`."""


#: Under privacy with ``head``: the share of ε and δ that chooses the head (noisy counts).
HEAD_SHARE = 0.1


@registered
class ItemKNN(Recommender):
    """Item-based k-nearest-neighbours recommender.

    ``score(u, i) = Σ_j c_uj · S[j, i]`` over the person's history ``j`` (the similarity
    ``S`` keeps the ``neighbours`` best per item, computed by implicit), so
    :meth:`contributions` is exact by construction. :meth:`fold_in` needs no solve: the
    history is the profile. :meth:`forget` recomputes the similarities without the person,
    so no trace of them is left.

    With ``privacy=persona.DP(...)`` (``measure="cosine"`` only) the similarities come
    from noisy co-occurrence counts (:func:`persona.privacy.private_cooccurrence`,
    McSherry & Mironov 2009): each person keeps at most ``max_events_per_person`` items
    (binary), the item×item counts are released with discrete Gaussian noise
    (``cooccurrence_``, the only release, so the whole budget goes there) and
    ``S[i, j] = C_ij / sqrt(C_ii C_jj)`` uses the noisy diagonal as item counts, with
    floors in units of the public noise scale against noise (see ``cosine_top_k``):
    post-processing, no extra cost. A person's score is still the
    sum over their own history of these similarities, so explanations stay exact. On a
    private model :meth:`forget` removes the person's history but does not recompute the
    similarities (that would release them without noise); refit for a fresh release.
    ``cooccurrence_`` is dense (items²) and is not saved; ``similarity_`` is.

    **Head.** ``head=h`` (privacy only; 1,000 by default, ``None`` for every item) spends,
    when the catalogue has more than ``h`` items, :data:`HEAD_SHARE` of ε and δ on noisy item
    counts (:func:`persona.privacy.private_item_counts`), keeps the ``h`` items with the
    highest (``head_``, a post-processing of that release) and releases the co-occurrences
    among them only, with the rest: ``h²`` noisy cells instead of ``items²``
    (``head_counts_`` holds the noisy counts). Items outside
    the head keep only their own similarity (``S[i, i] = 1``), so they are recommended by
    nothing; a :class:`ContentKNN` covers them from their text. Fewer, better-counted pairs
    also carry less noise each: on ml-latest-small (9,724 items) at ε = 8 a 1,000-item head
    took the fit from 23.3 s to 0.15 s and NDCG@10 from 0.031 to 0.195 (Online Retail,
    3,665 items: 3.4 s to 0.24 s, 0.065 to 0.113; benchmarks/RESULTS.md, one seed).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from persona.data import Interactions
    >>> X = Interactions.from_csr(sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 3)))),
    ...     [f"u{i}" for i in range(6)], [f"i{i}" for i in range(6)])
    >>> model = ItemKNN(neighbours=5).fit(X)
    >>> [r.item for r in model.similar_items("i0", n=2)]
    ['i1', 'i2']
    >>> from persona.privacy import DP
    >>> private = ItemKNN(neighbours=5, privacy=DP(epsilon=4.0, max_events_per_person=3))
    >>> private.fit(X).privacy_spent_.mechanism
    'dp-cooccurrence'
    """

    _config_class: ClassVar[type[ParamsConfig]] = ItemKNNConfig
    similarity_: sp.csr_matrix
    head_: np.ndarray | None
    head_counts_: np.ndarray | None
    _private_training = True

    def __init__(
        self,
        measure: Literal["cosine", "bm25"] = "cosine",
        neighbours: int = 20,
        k1: float = 1.2,
        b: float = 0.75,
        num_threads: int = 0,
        head: int | None = 1000,
        *,
        privacy: Any = None,
        show_progress: bool | None = None,
    ) -> None:
        self.measure = measure
        self.neighbours = neighbours
        self.k1 = k1
        self.b = b
        self.num_threads = num_threads
        self.head = head
        self.privacy = privacy
        self.show_progress = show_progress

    def _fit(self, matrix: sp.csr_matrix, config: ItemKNNConfig) -> None:
        self.head_ = self.head_counts_ = None
        self._compute_similarity()

    def _fit_private(self, matrix: sp.csr_matrix, config: ItemKNNConfig, privacy: Any) -> None:
        if config.measure != "cosine":
            raise ValidationError(
                "ItemKNN(privacy=...) supports measure='cosine' only (BM25 weights depend on "
                "every person's history length); use measure='cosine'"
            )
        self.similarity_, self.privacy_spent_ = self._released_similarity(
            matrix, config.neighbours, config.head, privacy)

    def _released_similarity(
        self, matrix: sp.csr_matrix, neighbours: int, head: int | None, privacy: Any,
    ) -> tuple[sp.csr_matrix, PrivacySpent]:
        """The similarities from noisy co-occurrence counts (over the ``head`` items with
        the highest noisy counts when ``head`` is below the catalogue size), and the spend;
        sets ``cooccurrence_``, ``head_`` and ``head_counts_``."""
        n = matrix.shape[1]
        if head is None or head >= n:
            C, spent = private_cooccurrence(matrix, privacy)
            self.cooccurrence_ = C
            self.head_ = self.head_counts_ = None
            return cosine_top_k(C, neighbours, spent.noise["scale"]), spent
        head_dp, rest_dp = privacy.split(HEAD_SHARE)
        counts, counted = private_item_counts(matrix, head_dp)
        # the h largest noisy counts, ties by catalogue order: post-processing of the release
        cols = np.sort(np.argsort(-counts, kind="stable")[:head])
        self.head_counts_ = counts
        C, spent = private_cooccurrence(sp.csr_matrix(matrix[:, cols]), rest_dp)
        self.cooccurrence_ = C
        self.head_ = self.items_[cols]
        S = cosine_top_k(C, neighbours, spent.noise["scale"]).tocoo()
        rest = np.setdiff1d(np.arange(n), cols)
        out = sp.csr_matrix(
            (np.concatenate([S.data, np.ones(rest.size)]),
             (np.concatenate([cols[S.row], rest]), np.concatenate([cols[S.col], rest]))),
            shape=(n, n))
        out.sort_indices()
        return out, PrivacySpent.composed([
            counted.model_copy(update={"mechanism": "dp-head-counts"}), spent])

    def _compute_similarity(self) -> None:
        cfg = self.config_
        self.similarity_ = implicit_similarity(
            self.history_, cfg.measure, cfg.neighbours, k1=cfg.k1, b=cfg.b,
            num_threads=cfg.num_threads, progress=self.show_progress)

    def _rank_scores(self, rows: np.ndarray) -> np.ndarray:
        scores: np.ndarray = (self.history_[rows] @ self.similarity_).toarray()
        return scores

    def _similar_scores(self, item: int) -> np.ndarray:
        row: np.ndarray = self.similarity_[item].toarray()[0]
        return row

    def contributions(self, user: str, item: str) -> tuple[np.ndarray, np.ndarray]:
        """``c_uj · S[j, i]`` for every item ``j`` in the person's history."""
        self._check_fitted()
        row, j = self._row(user), self._item(item)
        h = self.history_
        a, b = h.indptr[row], h.indptr[row + 1]
        idx, c = h.indices[a:b], h.data[a:b]
        col = self.similarity_[:, j].toarray()[:, 0]
        return self.items_[idx], c * col[idx]

    def _contribution_matrix(self, row: int, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`contributions` for several items at once."""
        h = self.history_
        a, b = h.indptr[row], h.indptr[row + 1]
        idx, c = h.indices[a:b], h.data[a:b]
        return idx, self.similarity_[idx][:, cols].toarray() * c[:, None]

    def _after_forget(self, row: int, items: np.ndarray) -> None:
        if self.privacy_spent_ is None:  # a private release is kept, never recomputed
            self._compute_similarity()

    def _arrays(self) -> dict[str, np.ndarray]:
        S = self.similarity_
        return {"sim_indptr": S.indptr, "sim_indices": S.indices, "sim_data": S.data}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        n = len(self.items_)
        self.similarity_ = sp.csr_matrix(
            (arrays["sim_data"], arrays["sim_indices"], arrays["sim_indptr"]), shape=(n, n)
        )


def implicit_similarity(
    history: sp.csr_matrix, measure: str, neighbours: int, *, k1: float = 1.2,
    b: float = 0.75, num_threads: int = 0, progress: bool | None = None,
) -> sp.csr_matrix:
    """implicit's item–item similarities (cosine or BM25) of ``history``'s columns, the
    ``neighbours`` best per item, as a sorted float64 CSR matrix."""
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
    from implicit.utils import ParameterWarning

    # implicit's own normalize() hands its kernel a COO matrix and warns about it
    with _one_blas_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ParameterWarning)
        if measure == "cosine":
            raw = CosineRecommender(K=neighbours, num_threads=num_threads)
        else:
            raw = BM25Recommender(K=neighbours, K1=k1, B=b, num_threads=num_threads)
        raw.fit(sp.csr_matrix(history, dtype=np.float32),
                show_progress=show_progress(progress))
    S = sp.csr_matrix(raw.similarity, dtype=np.float64)
    S.sort_indices()
    return S


_PAIR_FLOOR = 3.0  # co-occurrences at most this many noise scales are treated as noise
_COUNT_FLOOR = 30.0  # item counts are floored at this many noise scales


def cosine_top_k(C: np.ndarray, k: int, noise_scale: float = 0.0) -> sp.csr_matrix:
    """Cosine similarities from (noisy) co-occurrence counts, ``k`` best per item.

    ``S[i, j] = C_ij / sqrt(d_i d_j)`` where ``C_ij`` is kept only above ``3 σ`` (σ: the
    public noise scale; below that it is mostly noise) and ``d = max(diag(C), 30 σ, 1)``
    (rare items' noisy counts would otherwise inflate their similarities; the floors were
    chosen on Online Retail, where they took private NDCG@10 at ε = 16 from 0.01 to 0.13).
    Every item is its own most similar item (``S[i, i] = 1``, as implicit's cosine), then
    the ``k`` largest positive entries of each row are kept. Pure post-processing of ``C``
    (with ``noise_scale = 0`` it is the plain cosine of exact counts).
    """
    n = C.shape[0]
    d = np.sqrt(np.maximum(np.diag(C), max(1.0, _COUNT_FLOOR * noise_scale)))
    pair_floor = _PAIR_FLOOR * noise_scale
    S = np.where(np.greater(C, pair_floor), C, 0.0)
    S = np.maximum(S, 0.0) / d[:, None] / d[None, :]
    np.fill_diagonal(S, 1.0)
    k = min(int(k), n)
    if k < n:
        drop = np.argpartition(-S, k - 1, axis=1)[:, k:]
        np.put_along_axis(S, drop, 0.0, axis=1)
    out = sp.csr_matrix(S)
    out.eliminate_zeros()
    out.sort_indices()
    return out


class PopularityConfig(ParamsConfig):
    """Validated parameters of :class:`Popularity` (defaults: :class:`Popularity`'s constructor)."""

    count: Literal["people", "confidence"]
    """Score items by how many people interacted (``"people"``) or by summed confidence."""


@registered
class Popularity(Recommender):
    """The non-profiling recommender: the same ranking for everyone.

    Serving uses no per-person data: ``recommend`` works for any id, known or not, and by
    default does **not** exclude the person's seen items (that would use their history;
    pass ``exclude_seen=True`` to opt in). This is the option that the EU Digital Services
    Act (Art. 38) asks very large platforms to offer. The model keeps the training history
    only so that :meth:`forget` can recompute the counts without a person.

    With ``privacy=persona.DP(...)`` the served scores are noisy counts
    (:func:`persona.privacy.private_item_counts` on the contribution-bounded matrix,
    clipped at 0): ``count="people"`` counts each person at most once per item (values 1,
    so ``max_value`` is 1), ``count="confidence"`` sums values clipped to ``max_value``.
    The noisy counts are saved with the model; :meth:`fold_in` and :meth:`forget` do not
    recompute them (that would release them without noise); refit for a fresh release.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from persona.data import Interactions
    >>> X = Interactions.from_csr(sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0]])),
    ...                          ["u1", "u2"], ["a", "b", "c"])
    >>> [(r.item, r.score) for r in Popularity().fit(X).recommend("someone-new", n=2)]
    [('a', 2.0), ('b', 1.0)]
    >>> from persona.privacy import DP
    >>> Popularity(privacy=DP(epsilon=1.0)).fit(X).privacy_spent_.mechanism
    'dp-item-counts'
    """

    _config_class = PopularityConfig
    counts_: np.ndarray
    personalised = False
    _private_training = True

    def __init__(
        self,
        count: Literal["people", "confidence"] = "people",
        *,
        privacy: Any = None,
        show_progress: bool | None = None,
    ) -> None:
        self.count = count
        self.privacy = privacy
        self.show_progress = show_progress

    def _fit(self, matrix: sp.csr_matrix, config: PopularityConfig) -> None:
        self._count()

    def _fit_private(
        self, matrix: sp.csr_matrix, config: PopularityConfig, privacy: Any
    ) -> None:
        X = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
        if config.count == "people":
            X.eliminate_zeros()
            X.data[:] = 1.0  # one per person and item: the value bound is 1
            privacy = privacy.model_copy(update={"max_value": 1.0})
        counts, spent = private_item_counts(X, privacy)
        self.counts_ = np.maximum(counts, 0.0)
        self.privacy_spent_ = spent

    def _count(self) -> None:
        h = self.history_
        if self.config_.count == "people":
            counts: np.ndarray = np.bincount(h.indices, minlength=h.shape[1]).astype(np.float64)
        else:
            counts = np.bincount(h.indices, weights=h.data, minlength=h.shape[1])
        self.counts_ = counts

    def _rank_scores(self, rows: np.ndarray) -> np.ndarray:
        return np.array(self.counts_[None, :], copy=True)

    def _similar_scores(self, item: int) -> np.ndarray:
        out: np.ndarray = -np.abs(self.counts_ - self.counts_[item])
        return out

    def _after_fold_in(self, row: int) -> None:
        if self.privacy_spent_ is None:  # a private release is kept, never recomputed
            self._count()

    def _after_fold_in_rows(self, rows: np.ndarray) -> None:
        if self.privacy_spent_ is None:  # one recount for them all
            self._count()

    def _after_forget(self, row: int, items: np.ndarray) -> None:
        if self.privacy_spent_ is None:
            self._count()

    def _arrays(self) -> dict[str, np.ndarray]:
        return {} if self.privacy_spent_ is None else {"counts": self.counts_}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        if "counts" in arrays:  # a private model: its released counts, not a recount
            self.counts_ = np.array(arrays["counts"], dtype=np.float64)
        else:
            self._count()
