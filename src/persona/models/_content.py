"""Item neighbours from public item text (titles, categories), optionally blended with the
item–item co-occurrence of the people (exact, or a DP release).

A product's title and category are not personal data: similarities computed from them pool
nobody's events, so a model that scores a person's own history against them needs no privacy
budget at all (Krichene et al., "Private Learning with Public Features", 2024, combine such a
public model with a private collaborative one; :class:`ContentKNN` does the same by adding
the two similarity matrices, so a person's score is still an exact sum over their history).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, NonNegativeInt, PositiveInt

from persona.errors import ValidationError
from persona.models._neighbours import ItemKNN, implicit_similarity
from persona.models._params import ParamsConfig
from persona.models._registry import registered
from persona.privacy import DP
from persona.schema import PrivacySpent

__all__ = ["ContentKNN", "ContentKNNConfig", "auto_collaborative", "text_similarity"]

_TOKEN = re.compile(r"[^\W_]+")
#: Cells of one dense block of the text-similarity product (128 MB of float64).
_BLOCK_CELLS = 1 << 24


class ContentKNNConfig(ParamsConfig):
    """Validated parameters of :class:`ContentKNN` (defaults: its constructor)."""

    item_text: dict[str, str] | None
    """Public text per item (title, category, brand ...; never text people wrote, such as
    reviews: that is personal data); ``None``: the store's item labels
    (a :class:`persona.Personalizer` fills them in) or, for a bare fit, an error."""
    neighbours: PositiveInt
    """Number of most similar items kept per item, from the text and from co-occurrence
    each."""
    ngrams: Annotated[int, Field(ge=1, le=3)]
    """Word n-grams used as text features: 1 (words), 2 (and adjacent pairs), 3."""
    collaborative: Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False)] | Literal[
        "auto"]
    """Weight of the co-occurrence similarities beside the text ones (0: text only, which
    under privacy spends nothing). ``"auto"``: :func:`auto_collaborative`."""
    num_threads: NonNegativeInt
    """Threads for implicit's co-occurrence kernel (non-private fits); 0 means every core."""
    head: PositiveInt | None
    """Under privacy with ``collaborative > 0``: the co-occurrences of the ``head`` items
    with the highest noisy counts only, as :class:`ItemKNN`'s ``head``."""


def _tokens(text: str, ngrams: int) -> set[str]:
    words = _TOKEN.findall(text.casefold())
    feats = set(words)
    for n in range(2, ngrams + 1):
        feats.update(" ".join(words[k:k + n]) for k in range(len(words) - n + 1))
    return feats


def _check_texts(texts: Any, neighbours: Any, ngrams: Any, block_cells: Any) -> None:
    problems = []
    if isinstance(texts, str) or not isinstance(texts, list | tuple) \
            or not all(isinstance(t, str) for t in texts):
        problems.append(("texts", "texts must be a list of str, one per item"))
    for name, value, lowest, highest in (("neighbours", neighbours, 1, None),
                                         ("ngrams", ngrams, 1, 3),
                                         ("block_cells", block_cells, 1, None)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) \
                or value < lowest or (highest is not None and value > highest):
            bound = f"from {lowest} to {highest}" if highest else f"of at least {lowest}"
            problems.append((name, f"{name} must be an int {bound}, not {value!r}"))
    if problems:
        raise ValidationError("; ".join(m for _, m in problems),
                              errors=[{"row": None, "field": f, "message": m}
                                      for f, m in problems])


def text_similarity(
    texts: list[str], neighbours: int, ngrams: int = 2, *, block_cells: int = _BLOCK_CELLS,
) -> sp.csr_matrix:
    """Cosine similarities of TF-IDF vectors of ``texts`` (word n-grams, smoothed idf), the
    ``neighbours`` largest per row, every item its own most similar (``S[i, i] = 1``, as
    implicit's cosine). Depends on the texts alone. The product is computed for blocks of
    rows of at most ``block_cells`` dense cells each.

    Examples
    --------
    >>> S = text_similarity(["red mug", "blue mug", "red scarf", ""], neighbours=3, ngrams=1)
    >>> S.toarray().round(2).tolist()[0]
    [1.0, 0.44, 0.44, 0.0]
    """
    _check_texts(texts, neighbours, ngrams, block_cells)
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for r, text in enumerate(texts):
        for feat in _tokens(text, ngrams):
            cols.append(vocab.setdefault(feat, len(vocab)))
            rows.append(r)
    n = len(texts)
    M = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, len(vocab)))
    df = np.bincount(cols, minlength=len(vocab))
    M = M @ sp.diags(np.log((1.0 + n) / (1.0 + df)) + 1.0)
    norms = np.sqrt(np.asarray(M.multiply(M).sum(axis=1)).ravel())
    M = sp.csr_matrix(sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ M)
    MT = sp.csr_matrix(M.T)
    k = min(int(neighbours), n)
    step = max(1, block_cells // max(n, 1))
    blocks = []
    for start in range(0, n, step):
        stop = min(n, start + step)
        S = np.asarray((M[start:stop] @ MT).todense())
        S[np.arange(stop - start), np.arange(start, stop)] = 1.0
        if k < n:
            drop = np.argpartition(-S, k - 1, axis=1)[:, k:]
            np.put_along_axis(S, drop, 0.0, axis=1)
        blocks.append(sp.csr_matrix(S))
    out = sp.csr_matrix(sp.vstack(blocks, format="csr") if blocks else (0, 0), shape=(n, n))
    out.eliminate_zeros()
    out.sort_indices()
    return out


def auto_collaborative(privacy: DP | None) -> float:
    """The co-occurrence weight ``collaborative="auto"`` takes: a function of public inputs
    only (whether the fit is private, and its ε), never of the data.

    Without privacy 1.0. Under privacy ``ε / 4`` capped at 2, and 0 below ε = 2, where a
    text-only fit spends none of the budget: on Online Retail the noisy co-occurrence added
    nothing measurable even at ε = 2 (weight 0.5: NDCG@10 0.1551 against 0.1549 for the text
    alone; 0.1761 at ε = 8; benchmarks/RESULTS.md, 3 seeds).

    >>> auto_collaborative(None), auto_collaborative(DP(epsilon=1.0)), \\
    ...     auto_collaborative(DP(epsilon=4.0)), auto_collaborative(DP(epsilon=16.0))
    (1.0, 0.0, 1.0, 2.0)
    """
    if privacy is None:
        return 1.0
    return 0.0 if privacy.epsilon < 2.0 else min(2.0, privacy.epsilon / 4.0)


@registered
class ContentKNN(ItemKNN):
    """Item neighbours from public item text, with the people's co-occurrence beside them.

    ``score(u, i) = Σ_j c_uj · S[j, i]`` over the person's history ``j``, where
    ``S = T + w · C``: ``T`` holds the TF-IDF cosine similarities of the items' public text
    (``item_text``, e.g. product titles and categories; the ``neighbours`` best per item)
    and ``C`` the co-occurrence cosine similarities of :class:`ItemKNN` (exact, or from
    noisy counts under ``privacy``), weighted by ``w = collaborative``. As for
    :class:`ItemKNN`, :meth:`contributions` is exact: each reason is one item of the
    person's own history.

    **Privacy.** ``T`` depends on the catalogue's text alone, which is public. With
    ``privacy=persona.DP(...)`` and ``w = 0`` (``collaborative="auto"`` below ε = 2) the
    fit releases nothing pooled across people: ``privacy_spent_`` is ε = 0, δ = 0 (the
    items still come from the declared catalogue, or from a charged private selection).
    With ``w > 0`` the noisy co-occurrence counts are the one release, exactly as in
    ``ItemKNN(privacy=...)``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from persona.data import Interactions
    >>> X = Interactions.from_csr(sp.csr_matrix(np.eye(3)), ["u0", "u1", "u2"],
    ...                           ["mug", "cup", "scarf"])
    >>> text = {"mug": "red tea mug", "cup": "red tea cup", "scarf": "wool scarf"}
    >>> model = ContentKNN(item_text=text, collaborative=0).fit(X)
    >>> model.recommend("u0", n=1)[0].item
    'cup'
    >>> from persona.privacy import DP
    >>> private = ContentKNN(item_text=text, privacy=DP(epsilon=1.0)).fit(X)
    >>> private.privacy_spent_.epsilon
    0.0
    """

    _config_class = ContentKNNConfig
    #: The Personalizer fills ``item_text`` from the store's item labels when it is None.
    reads_item_text = True

    def __init__(
        self,
        item_text: Mapping[str, str] | None = None,
        neighbours: int = 50,
        ngrams: int = 2,
        collaborative: float | Literal["auto"] = "auto",
        num_threads: int = 0,
        head: int | None = 1000,
        *,
        privacy: Any = None,
        show_progress: bool | None = None,
    ) -> None:
        self.item_text = item_text
        self.neighbours = neighbours
        self.ngrams = ngrams
        self.collaborative = collaborative
        self.num_threads = num_threads
        self.head = head
        self.privacy = privacy
        self.show_progress = show_progress

    def _texts(self, config: ContentKNNConfig) -> list[str]:
        if not config.item_text:
            raise ValidationError(
                "ContentKNN needs the items' public text: pass item_text={item: title, ...} "
                "or, through a Personalizer, label the items with store.label_items({...})",
                errors=[{"row": None, "field": "item_text", "message": "no item text"}],
            )
        text = config.item_text
        return [text.get(item, "") for item in self.items_.tolist()]

    def _weight(self, config: ContentKNNConfig, privacy: DP | None) -> float:
        w = config.collaborative
        return auto_collaborative(privacy) if w == "auto" else float(w)

    def _fit(self, matrix: sp.csr_matrix, config: ContentKNNConfig) -> None:  # type: ignore[override]
        texts = self._texts(config)
        self.head_ = self.head_counts_ = None
        self.text_similarity_ = text_similarity(texts, config.neighbours, config.ngrams)
        self.collaborative_ = self._weight(config, None)
        self._compute_similarity()

    def _fit_private(  # type: ignore[override]
        self, matrix: sp.csr_matrix, config: ContentKNNConfig, privacy: DP
    ) -> None:
        texts = self._texts(config)
        self.text_similarity_ = text_similarity(texts, config.neighbours, config.ngrams)
        self.collaborative_ = w = self._weight(config, privacy)
        if w == 0:
            self.head_ = self.head_counts_ = None
            self.similarity_ = self.text_similarity_.copy()
            self.privacy_spent_ = PrivacySpent(
                mechanism="public-features", epsilon=0.0, delta=0.0, rho=0.0,
                accounting="nothing pooled across people is released: the similarities "
                           "come from the catalogue's public text")
            return
        S, self.privacy_spent_ = self._released_similarity(
            matrix, config.neighbours, config.head, privacy)
        self.similarity_ = self._blend(S)

    def _blend(self, collaborative: sp.csr_matrix) -> sp.csr_matrix:
        S = sp.csr_matrix(self.text_similarity_ + self.collaborative_ * collaborative)
        S.eliminate_zeros()
        S.sort_indices()
        return S

    def _compute_similarity(self) -> None:  # at fit, and after forget when not private
        if self.collaborative_ == 0:
            self.similarity_ = self.text_similarity_.copy()
            return
        cfg = self.config_
        self.similarity_ = self._blend(implicit_similarity(
            self.history_, "cosine", cfg.neighbours, num_threads=cfg.num_threads,
            progress=self.show_progress))

    def _arrays(self) -> dict[str, np.ndarray]:
        T = self.text_similarity_
        return {**super()._arrays(), "text_indptr": T.indptr, "text_indices": T.indices,
                "text_data": T.data, "collaborative": np.array([self.collaborative_])}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        super()._restore(arrays)
        n = len(self.items_)
        self.text_similarity_ = sp.csr_matrix(
            (arrays["text_data"], arrays["text_indices"], arrays["text_indptr"]), shape=(n, n))
        w = float(arrays["collaborative"][0])
        if not math.isfinite(w) or w < 0:
            raise ValidationError(f"a ContentKNN file holds collaborative weight {w!r}")
        self.collaborative_ = w
