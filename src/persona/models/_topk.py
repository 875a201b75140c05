"""Top-``k`` selection: the kernels behind every recommendation list.

:func:`select_block` is a block of people's way from the model's scores to their lists:
rank scores, seen items and filters masked (:func:`mask_seen`), the top ``k`` picked,
candidates re-scored exactly where the model ranks in lower precision.
:func:`_top_per_row` picks each row's ``k`` best entries of a dense score block (ties by
the lower column, so a result never depends on the block size) without sorting whole rows;
with a margin it returns the candidates that a model ranking in float32 re-scores exactly,
which :func:`_top_sorted` then orders and cuts. :class:`_NormIndex` finds the same lists
for a block of people of a factor model without scoring every item (a norm-ordered
bound). :func:`_history_positions` and :func:`_history_entries` locate the people's seen
items in a block, so one write masks them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from persona.errors import ValidationError

if TYPE_CHECKING:
    from persona.models._factor import _FactorModel
    from persona.models._scoring import BusinessRule, Scoring

__all__ = ["mask_seen", "select_block"]


def select_block(
    model: Scoring,
    rows: np.ndarray,
    users: list[str],
    n: int,
    exclude_seen: bool | None,
    filters: tuple[np.ndarray | None, np.ndarray | None],
    rule: BusinessRule | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top ``n`` of a block of people (``model``'s rows ``rows``) as flat
    ``(block_row, item, served_score)`` arrays (:meth:`Recommender._select`): the model's
    rank scores, their seen items, ``filters`` (item columns to leave out) and ``rule``
    masked, then :func:`_top_per_row`, re-scored exactly where the model ranks with a
    margin."""
    if exclude_seen is None:
        exclude_seen = model.personalised
    b = len(rows)
    S = model._rank_scores(rows)
    if S.shape[0] != b:  # non-personalised models return one shared row
        S = np.repeat(S, b, axis=0)
    if exclude_seen:
        mask_seen(S, model.history_, rows)
    for cols in filters:
        if cols is not None and cols.size:
            S[:, cols] = -np.inf
    if rule is not None:
        items = model.items_
        for k, u in enumerate(users):
            mask = np.asarray(rule(u, items), dtype=bool)
            if mask.shape != (S.shape[1],):
                raise ValidationError(
                    "rule(user, item_ids) must return one bool per catalogue item"
                )
            S[k, ~mask] = -np.inf
    margin = model._rank_margin(rows)
    r_idx, c_idx, approx = _top_per_row(S, n, margin=margin)
    exact = model._exact_scores(rows[r_idx], c_idx, approx)
    if margin is not None:  # candidates: re-scored, now ordered and cut to n
        return _top_sorted(r_idx, c_idx, np.asarray(exact, dtype=np.float64), b, n)
    return r_idx, c_idx, np.asarray(exact, dtype=np.float64)


def mask_seen(S: np.ndarray, h: sp.csr_matrix, rows: np.ndarray) -> None:
    """Set to ``-inf`` the entries of the score block ``S`` (one row per ``rows``) that
    the history ``h`` holds for those people."""
    if len(rows) == 1:
        r = int(rows[0])
        S[0, h.indices[h.indptr[r]:h.indptr[r + 1]]] = -np.inf
        return
    flat = _history_positions(h, rows, S.shape[1])
    if flat.size:
        S.reshape(-1)[flat] = -np.inf


def _history_positions(h: sp.csr_matrix, rows: np.ndarray, width: int) -> np.ndarray:
    """Flat positions ``block_row * width + column`` of the history entries of ``rows``
    in a ``(len(rows), width)`` row-major block (one write masks them all)."""
    r, c = _history_entries(h, rows)
    flat: np.ndarray = c + r * width
    return flat


def _history_entries(h: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The history entries of ``rows`` as ``(block_row, column)`` arrays (int64 rows,
    columns in the matrix's index dtype)."""
    starts = h.indptr[rows]
    lengths = h.indptr[rows + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), h.indices[:0]
    shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    cols = h.indices[np.arange(total) + shift]
    return np.repeat(np.arange(len(rows), dtype=np.int64), lengths), cols


def _lowered(thr: Any, margin: Any, dtype: np.dtype) -> Any:
    """``thr - margin`` in ``dtype`` (arrays or scalars), rounded down (never above the
    exact difference) and never below the lowest finite value, so that masked (``-inf``)
    entries stay out."""
    low = -np.finfo(dtype).max
    if margin is None:
        return np.maximum(thr, low).astype(dtype, copy=False)
    t = (np.asarray(thr, dtype=np.float64) - margin).astype(dtype)
    return np.maximum(np.nextafter(t, dtype.type(-np.inf)), low)


def _chunk_maxima(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int] | None:
    """The strided chunks of columns that the top-``k`` searches work on: ``(S3, cmax,
    nchunk)`` with ``S3[r, w, c]`` column ``c + nchunk * w`` (column ``j`` goes to chunk
    ``j mod nchunk``, which spreads popular items that cluster in id order) and ``cmax``
    each chunk's maximum, the leftover columns appended as one chunk each. None when the
    catalogue is too small for chunks to help (no more chunks than ``k``)."""
    b, m = S.shape
    width = m // min(max(m // 16, 4 * k), 1024)
    nchunk = m // width if width >= 2 else 0
    if nchunk <= k:
        return None
    main = width * nchunk
    S3 = S[:, :main].reshape(b, width, nchunk)
    cmax = S3.max(axis=1)
    if main < m:
        cmax = np.concatenate([cmax, S[:, main:]], axis=1)
    return S3, cmax, nchunk


def _kth_lower_bound(
    S: np.ndarray, k: int, best: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, int] | None]:
    """A lower bound of each row's ``k``-th largest entry (``-inf`` where fewer than ``k``
    are finite) over ``S`` and the earlier column segments summarised by ``best``, in one
    pass: the ``k``-th largest chunk maximum (``k`` chunk maxima are ``k`` distinct entries
    at or above it). Close to the exact value when a row's best entries fall in different
    chunks, as they mostly do.

    Returns ``(bound, best, chunks)``: the new summary ``best`` (each row's ``k`` largest
    chunk maxima so far, for the next segment) and :func:`_chunk_maxima` of ``S``."""
    chunks = _chunk_maxima(S, k)
    vals = S if chunks is None else chunks[1]
    if best is not None:
        vals = np.concatenate([best, vals], axis=1)
    cut = vals.shape[1] - min(k, vals.shape[1])
    part = np.partition(vals, cut, axis=1)
    return part[:, cut], part[:, cut:], chunks


def _top_per_row(
    S: np.ndarray, k: int, *, margin: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top ``k`` finite entries of each row, sorted by (row, -score, column).

    Ties are broken by the lower column, so the result does not depend on block size.
    Columns are dealt into strided chunks (:func:`_chunk_maxima`); the k-th largest chunk
    maximum is a lower bound of the row's k-th largest value, so only the few chunks whose
    maximum reaches it are searched exactly.

    With ``margin`` (one value >= 0 per row) the result is instead an unsorted superset of
    every finite entry at or above its row's ``k``-th largest value minus the margin: the
    candidates a caller that ranks approximate scores re-scores exactly and sorts.
    """
    b, m = S.shape
    k = min(k, m)
    if k == 0 or b == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=S.dtype)
    if b == 1:
        return _top_one_row(S[0], k, None if margin is None else float(margin[0]))
    bound, _, chunks = _kth_lower_bound(S, k)
    # lowered by the margin; never below the lowest finite value, so that rows with fewer
    # than k finite entries keep exactly those
    rows, cols, vals = _at_least(S, chunks, _lowered(bound, margin, S.dtype))
    if margin is not None:
        return rows, cols, vals
    return _top_sorted(rows, cols, vals, b, k)


def _at_least(
    S: np.ndarray, chunks: tuple[np.ndarray, np.ndarray, int] | None, thr: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every entry of each row at or above that row's ``thr``, as ``(rows, cols, vals)``
    (``-inf`` entries stay out: ``thr`` is finite). With ``chunks`` (:func:`_chunk_maxima`
    of ``S``) only the chunks whose maximum reaches ``thr`` are read."""
    if chunks is None:
        r, c = np.divmod(np.flatnonzero(thr[:, None] <= S), S.shape[1])
        return r, c, S[r, c]
    S3, cmax, nchunk = chunks
    width, main, nall = S3.shape[1], S3.shape[1] * nchunk, cmax.shape[1]
    # every chunk that reaches the bound (ties included), then its entries that do
    rr, cc = np.divmod(np.flatnonzero(cmax >= thr[:, None]), nall)
    regular = cc < nchunk
    rg, cg = rr[regular], cc[regular]
    sel = S3[rg, :, cg]  # (chunks, width)
    i, w = np.divmod(np.flatnonzero(sel >= thr[rg][:, None]), width)
    rows, cols, vals = rg[i], cg[i] + nchunk * w, sel[i, w]
    if not regular.all():
        ri, ci = rr[~regular], cc[~regular]
        rows = np.concatenate([rows, ri])
        cols = np.concatenate([cols, main + ci - nchunk])
        vals = np.concatenate([vals, cmax[ri, ci]])
    return rows, cols, vals


def _top_one_row(
    s: np.ndarray, k: int, margin: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_top_per_row`` for a single row: one partition, exact tie handling."""
    m = s.shape[0]
    if margin is not None:
        # a lower bound of the k-th largest (the k-th largest chunk maximum: exact when
        # the best entries fall in different chunks) costs an eighth of a partition on
        # 20,000 items; a lower threshold only adds candidates (the result is a superset)
        kth = _kth_lower_bound(s[None, :], k)[0][0] if k < m else s.min()
        t = _lowered(kth, margin, s.dtype)
        cand = np.flatnonzero(s >= t)
        return np.zeros(cand.size, dtype=np.int64), cand, s[cand]
    if k < m:
        cand = np.argpartition(s, m - k)[m - k:]
        thr = s[cand].min()
        if not np.isfinite(thr) or np.count_nonzero(s >= thr) > k:
            cand = np.flatnonzero(s >= thr) if np.isfinite(thr) else np.flatnonzero(np.isfinite(s))
    else:
        cand = np.flatnonzero(np.isfinite(s))
    vals = s[cand]
    order = np.lexsort((cand, -vals))[:k]
    cand = cand[order]
    return np.zeros(cand.size, dtype=np.int64), cand, vals[order]


def _order_rows_scores_cols(r: np.ndarray, c: np.ndarray, s: np.ndarray, b: int) -> np.ndarray:
    """``np.lexsort((c, -s, r))`` (by row, then score descending, then column), done for a
    block's candidates as two stable sorts of integers (faster there than a three-key
    lexsort); the column tie-break is needed only where a row has equal scores, so the
    exact lexsort runs only then, and for one person's few candidates, where it is the
    faster of the two."""
    if b == 1 or r.size <= 400:
        return np.lexsort((c, -s, r))
    bits = (s.astype(np.float64) + 0.0).view(np.int64)  # + 0.0: -0.0 sorts as 0.0
    key = ~(bits ^ ((bits >> 63) & np.int64(0x7FFFFFFFFFFFFFFF)))  # descending score
    order = np.argsort(key, kind="stable")
    rows = r[order]
    # int16 rows: numpy's stable sort is a radix sort for 16-bit integers
    order = order[np.argsort(rows.astype(np.int16) if b < 32768 else rows, kind="stable")]
    rs, ks = r[order], key[order]
    if rs.size > 1 and np.any((rs[1:] == rs[:-1]) & (ks[1:] == ks[:-1])):
        return np.lexsort((c, -s, r))
    return order


def _top_sorted(
    r: np.ndarray, c: np.ndarray, s: np.ndarray, b: int, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = _order_rows_scores_cols(r, c, s, b)
    r, c, s = r[order], c[order], s[order]
    starts = np.searchsorted(r, np.arange(b))
    pos = np.arange(r.size) - starts[r]
    keep = pos < k
    return r[keep], c[keep], s[keep]

class _NormIndex:
    """Exact top-k for a block of people without scoring every item.

    Items are ordered by the norm of their factor vector, largest first. A person's score
    for item ``j`` is at most ``‖u‖·‖y_j‖`` (Cauchy–Schwarz), so once a lower bound of
    their ``k``-th best score among the first ``p`` items exceeds ``‖u‖`` times the largest
    norm left, no later item can enter their top ``k``: they settle, and the rest of the
    catalogue is never scored for them (the classic norm-ordered bound of exact
    maximum-inner-product search). Everyone is scored on the first ``p`` items, those not
    settled on the rest. A person settles only when the bound stays below that lower bound
    by more than the model's rank margin (twice the float32 rounding bound; the ``1e-5``
    relative margin covers the norms' own rounding), so no unscored item can be a
    candidate. Their candidates are every scored entry at or above the lower bound minus
    the margin: a superset of every item the plain path re-scores in float64, so the
    lists are identical.

    The cut ``p`` is learnt per list length: the first :attr:`EXPLORE` people are scored
    through every cut in :meth:`cuts`, which measures how many settle where, and the cut
    that then scores the fewest items is kept (:meth:`plan`; speed only, never results).
    """

    MARGIN = 1.0 + 1e-5
    FRACTIONS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 3 / 8, 1 / 2, 5 / 8, 3 / 4)
    EXPLORE = 512
    # the pruned path's own extra work (two products and partitions instead of one, the
    # settling, more numpy calls and so more GIL hand-overs between the scoring threads),
    # as a share of scoring everyone on everything: a cut must save more. Measured on two
    # threads: Online Retail's best cut, at 60% of the scores, was 6% slower than scoring
    # everything; MovieLens', at 51%, was 12-15% faster.
    OVERHEAD = 0.45

    def __init__(self, Y32T: np.ndarray, norms: np.ndarray) -> None:
        """``Y32T``: the float32 item factors, one column per item; ``norms``: their
        float64 norms."""
        self.perm = np.argsort(-norms, kind="stable")
        self.inv = np.empty_like(self.perm)
        self.inv[self.perm] = np.arange(self.perm.size)
        self.YT = np.ascontiguousarray(Y32T[:, self.perm])
        # rest[p]: the largest norm among items at positions >= p (0 past the end)
        self.rest = np.r_[norms[self.perm], 0.0]
        self.stats: dict[tuple[int, int], list[int]] = {}  # (k, cut) -> [tried, settled]
        self.explored: dict[int, int] = {}  # k -> people scored through every cut
        self._lock = threading.Lock()  # blocks finish in several threads at once
        self._segments: dict[tuple[int, ...], np.ndarray] = {}
        self._chosen: dict[int, list[int] | None] = {}  # k -> its plan, once explored

    @classmethod
    def cuts(cls, m: int, k: int) -> list[int]:
        """The cuts a plan may use: fractions of the catalogue, each at least ``4k``
        items in and short of ``m``."""
        return sorted({c for f in cls.FRACTIONS if (c := max(int(m * f), 4 * k)) < m})

    def plan(self, m: int, k: int) -> list[int] | None:
        """The segment ends for the next block, ``m`` last: every cut while exploring,
        then the one cut that the settle rates measured then make cheapest, or None where
        scoring everyone on everything is cheaper."""
        if k in self._chosen:
            return self._chosen[k]
        cuts = self.cuts(m, k)
        if self._exploring(k):
            return [*cuts, m]
        best, cost = None, 1.0 - self.OVERHEAD
        unsettled = 1.0  # the share of people not settled by cut p
        for p in cuts:
            tried, settled = self.stats.get((k, p), (0, 0))
            if tried:
                unsettled *= 1.0 - settled / tried
            c = (p + unsettled * (m - p)) / m  # items scored per person, as a share of m
            if c < cost:
                best, cost = p, c
        self._chosen[k] = None if best is None else [best, m]  # exploring is over
        return self._chosen[k]

    def _exploring(self, k: int) -> bool:
        return self.explored.get(k, 0) < self.EXPLORE

    def _segment_of(self, ends: list[int]) -> np.ndarray:
        """Each item's segment (by item column) for segments ending at ``ends``."""
        key = tuple(ends)
        seg = self._segments.get(key)
        if seg is None:
            seg = np.searchsorted(np.asarray(ends), self.inv, side="right").astype(np.int8)
            self._segments[key] = seg
        return seg

    def select(
        self, model: _FactorModel, rows: np.ndarray, n: int, exclude_seen: bool,
        filters: tuple[np.ndarray | None, np.ndarray | None], ends: list[int],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The top ``n`` of each of ``rows`` as :meth:`Recommender._select` returns them,
        scoring the segments of the norm order that end at ``ends`` (see :meth:`plan`)."""
        b, m, k = len(rows), self.perm.size, n
        exploring = self._exploring(k)
        U = model._user_vectors32(rows)
        norms = model._user_norms(rows)
        unorm = norms * self.MARGIN
        margin = norms * model._margin_scale  # model._rank_margin(rows), norms computed once
        if exclude_seen:  # seen items: block row, position in norm order, segment
            seen_r, seen_c = _history_entries(model.history_, rows)
            seen_seg = self._segment_of(ends)[seen_c]
            seen_c = self.inv[seen_c]
        masked = [self.inv[cols] for cols in filters if cols is not None and cols.size]
        fcols = np.sort(np.concatenate(masked)) if masked else None

        thr = np.empty(b, dtype=np.float32)  # each person's candidate cut
        scored = []  # (segment start, its people as block rows, their scores, chunks)
        todo = np.arange(b)
        where: np.ndarray | None = None  # block row -> row of S, once someone settled
        best: np.ndarray | None = None
        start = 0
        for i, stop in enumerate(ends):
            S = (U if where is None else U[todo]) @ self.YT[:, start:stop]
            if exclude_seen:
                here = np.flatnonzero(seen_seg == i)
                sr, sc = seen_r[here], seen_c[here] - start
                if where is not None:
                    sr = where[sr]
                    keep = sr >= 0
                    sr, sc = sr[keep], sc[keep]
                S[sr, sc] = -np.inf
            if fcols is not None:
                a, z = np.searchsorted(fcols, (start, stop))
                S[:, fcols[a:z] - start] = -np.inf
            # at most each person's k-th best so far; best: their k largest chunk maxima
            kth, best, chunks = _kth_lower_bound(S, k, best)
            scored.append((start, todo, S, chunks))
            if stop == m:
                thr[todo] = _lowered(kth, margin[todo], S.dtype)
                break
            # an unscored item's float32 score is at most |u| rest + margin / 2, and a
            # candidate reaches kth - margin; -inf (too few items) never settles
            done = unorm[todo] * self.rest[stop] < kth - 2 * margin[todo]
            if exploring:
                self._count(k, stop, todo.size, int(done.sum()))
            if done.any():
                settled = todo[done]
                thr[settled] = _lowered(kth[done], margin[settled], S.dtype)
                if done.all():
                    break
                todo, best = todo[~done], best[~done]
                where = np.full(b, -1, dtype=np.int64)
                where[todo] = np.arange(todo.size)
            start = stop
        if exploring:
            with self._lock:
                self.explored[k] = self.explored.get(k, 0) + b
        out_r, out_c, out_a = [], [], []
        for start, people, S, chunks in scored:
            r, c, a = _at_least(S, chunks, thr[people])
            out_r.append(people[r])
            out_c.append(self.perm[start + c])
            out_a.append(a)
        r = np.concatenate(out_r)
        c = np.concatenate(out_c)
        exact = np.asarray(model._exact_scores(rows[r], c, np.concatenate(out_a)),
                           dtype=np.float64)
        return _top_sorted(r, c, exact, b, n)

    def _count(self, k: int, p: int, tried: int, settled: int) -> None:
        with self._lock:
            st = self.stats.setdefault((k, p), [0, 0])
            st[0] += tried
            st[1] += settled
