"""The steps of DP-ALS (see :func:`persona.privacy.private_als_item_factors`): each person's
own vector, the exact item-side statistics and the solves on their noisy release.

Every person's vector is computed from their own row and the public item factors alone
(row by row, whatever the other rows are), and the statistics are exact integer sums over
people in chunks sized by public bounds (:mod:`persona.privacy._exact`).

Two paths give the same results (up to float rounding, far below the grids):

* ``shared`` (``alpha = 0``): every person's system matrix is ``YᵀY + λI`` and every item's
  is the noisy Gram matrix ``G``, so each is factorised once per iteration and all people
  (all items) are solved at once;
* general (``alpha > 0``): per-person and per-item matrices, built and solved in batches of
  bounded size (no ``items × f²`` or ``people × f × f`` arrays).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.linalg import cho_factor, cho_solve

from persona.privacy._bounding import clip_rows
from persona.privacy._exact import ExactSum, chunk_people, people_chunks
from persona.privacy._plans import MAX_ALPHA_VALUE, QW, QX

__all__ = ["ALSTimings", "solve_user_factors"]

_BATCH_VALUES = 1 << 21  # float64 values per batch of f × f matrices (16 MiB)
_PADDED_VALUES = 1 << 22  # float64 values per padded batch of histories (32 MiB, twice)
_MEMORY_PEOPLE = 4096  # people per block of the A_j statistics (memory: 4096 × f²/2 int64)


def _batch(f: int) -> int:
    """People or items per batched solve of ``f × f`` systems."""
    return max(1, min(512, _BATCH_VALUES // (f * f)))


@dataclass
class ALSTimings:
    """Where a DP-ALS fit spends its time (seconds)."""

    bounding: float = 0.0
    user_step: float = 0.0
    statistics: float = 0.0
    sampling: float = 0.0
    solves: float = 0.0
    accounting: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return (self.bounding + self.user_step + self.statistics + self.sampling
                + self.solves + self.accounting)


# ---------------------------------------------------------------------------------------------
# user step


def _people_batches(counts: NDArray[np.int64], f: int) -> list[NDArray[np.int64]]:
    """Rows grouped in batches of similar history length, of bounded memory (each person's
    result does not depend on the batch: padding adds exact zeros)."""
    order = np.argsort(counts, kind="stable")
    out, start, n = [], 0, counts.size
    while start < n:
        size = min(_batch(f), n - start)
        while size > 1 and size * int(counts[order[start + size - 1]]) * f > _PADDED_VALUES:
            size //= 2
        out.append(order[start:start + size])
        start += size
    return out


def _weighted_grams(
    W: sp.csr_matrix, Y: NDArray[np.float64], rows: NDArray[np.int64]
) -> NDArray[np.float64]:
    """``Σ_i w_ui y_i y_iᵀ`` for the people ``rows``: their histories padded with zeros (which
    add exact zeros) and multiplied batch-wise, without an ``items × f²`` array."""
    counts = W.indptr[rows + 1] - W.indptr[rows]
    width = int(counts.max()) if rows.size else 0
    f = Y.shape[1]
    left = np.zeros((rows.size, width, f))
    right = np.zeros((rows.size, width, f))
    if width:
        starts = W.indptr[rows]
        owner = np.repeat(np.arange(rows.size), counts)
        pos = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
        entry = np.repeat(starts, counts) + pos
        cols = W.indices[entry]
        right[owner, pos] = Y[cols]
        left[owner, pos] = Y[cols] * W.data[entry][:, None]
    out: NDArray[np.float64] = np.matmul(left.transpose(0, 2, 1), right)
    return out


def solve_user_factors(
    X: sp.spmatrix | sp.sparray, item_factors: NDArray[np.float64], regularization: float,
    alpha: float,
) -> NDArray[np.float64]:
    """Each person's factor vector from their own row and the (public) item factors: the
    implicit-feedback ALS user step (Hu, Koren & Volinsky 2008) with confidence
    ``1 + alpha · x_ui``.

    This is what a served model computes for a person; it reads only that person's data.
    With ``alpha = 0`` every person's system matrix is the same ``YᵀY + λI``, factorised
    once; otherwise people are solved in batches of bounded memory.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> Y = np.eye(3)
    >>> U = solve_user_factors(sp.csr_matrix([[1.0, 0, 0]]), Y, 0.1, 1.0)
    >>> bool(U[0, 0] > U[0, 1])
    True
    """
    csr = sp.csr_matrix(X, dtype=np.float64)
    Y = np.asarray(item_factors, dtype=np.float64)
    C = csr.copy()
    C.data = 1.0 + alpha * C.data
    if alpha == 0:
        return _shared_solve(C @ Y, Y, regularization)
    W = csr.copy()
    W.data = alpha * W.data  # confidence - 1
    return _batched_solve(W, C @ Y, Y, regularization)


def _system(Y: NDArray[np.float64], regularization: float) -> NDArray[np.float64]:
    f = Y.shape[1]
    return Y.T @ Y + regularization * np.eye(f)


def _shared_solve(
    b: NDArray[np.float64], Y: NDArray[np.float64], regularization: float
) -> NDArray[np.float64]:
    """``(YᵀY + λI)⁻¹ b_u`` for every row ``b_u``: one factorisation for all people (its
    inverse, then one matrix product: each row's result depends on that row alone)."""
    M = _system(Y, regularization)
    try:
        inverse = cho_solve(cho_factor(M), np.eye(M.shape[0]))
    except np.linalg.LinAlgError:  # singular only without regularization: least squares
        inverse = np.linalg.pinv(M)
    out: NDArray[np.float64] = b @ inverse.T
    return out


def _batched_solve(
    W: sp.csr_matrix, b: NDArray[np.float64], Y: NDArray[np.float64], regularization: float
) -> NDArray[np.float64]:
    """``(YᵀY + λI + Σ_i w_ui y_i y_iᵀ)⁻¹ b_u`` person by person, in batches."""
    M = _system(Y, regularization)
    out = np.zeros_like(b)
    for rows in _people_batches(np.diff(W.indptr), Y.shape[1]):
        A = _weighted_grams(W, Y, rows) + M
        try:
            out[rows] = np.linalg.solve(A, b[rows][:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:  # a singular matrix (no regularization): one by one
            for r, A_u in zip(rows, A, strict=True):
                try:
                    out[r] = np.linalg.solve(A_u, b[r])
                except np.linalg.LinAlgError:
                    out[r] = np.linalg.pinv(A_u) @ b[r]
    return out


def _user_vectors(
    W_float: sp.csr_matrix, Y: NDArray[np.float64], regularization: float, norm: float,
    normalize: bool, *, shared: bool = False,
) -> NDArray[np.int64]:
    """Every person's vector from their own row (exact), clipped or normalised to ``norm``
    and truncated toward zero onto the grid ``2^-QX`` (as integers). ``shared`` (only when
    every weight is 0, i.e. ``alpha = 0``) solves all people with one factorisation."""
    if shared:
        ones = sp.csr_matrix((np.ones(W_float.nnz), W_float.indices, W_float.indptr),
                             shape=W_float.shape)
        U = _shared_solve(ones @ Y, Y, regularization)
    else:
        U = solve_user_factors(W_float, Y, regularization, 1.0)
    if normalize:
        norms = np.linalg.norm(U, axis=1, keepdims=True)
        U = np.where(norms > 0, U / np.maximum(norms, 1e-300), 0.0) * norm
    U = clip_rows(U, norm)
    return np.trunc(U * (1 << QX)).astype(np.int64)  # |U_int| <= 2^QX, norm only shrinks


def _als_inputs(
    R: sp.csr_matrix, alpha: float, person_weight: NDArray[np.float64] | None = None
) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Integer item-step weights ``p_u · alpha · r`` and confidences ``p_u · (1 + alpha · r)``
    truncated toward zero onto ``2^-QW`` (so never above their bounds; ``p_u`` is the
    person's weight, 1 by default), and the float weights ``alpha · r`` of the user step."""
    down = 1.0 - 2.0**-40  # keeps float rounding from lifting a value over a grid point
    p = np.ones(R.shape[0]) if person_weight is None else np.asarray(person_weight)
    p_entry = np.repeat(p, np.diff(R.indptr))
    unit = float(1 << QW)
    w_user = np.floor(alpha * R.data * unit * down)
    w_int = np.floor(p_entry * alpha * R.data * unit * down)
    c_int = np.floor(p_entry * (1.0 + alpha * R.data) * unit * down)
    W_int = sp.csr_matrix((w_int.astype(np.int64), R.indices, R.indptr), shape=R.shape)
    C_int = sp.csr_matrix((c_int.astype(np.int64), R.indices, R.indptr), shape=R.shape)
    W_float = sp.csr_matrix((w_user / unit, R.indices, R.indptr), shape=R.shape)
    return W_int, C_int, W_float


# ---------------------------------------------------------------------------------------------
# item-side statistics


def _people_sum(
    n: int, per_person: int, part: Callable[[int, int], NDArray[np.int64]], *,
    limit: int = 1 << 62, memory: int | None = None,
) -> ExactSum:
    """Exact ``Σ part(a, b)`` over all people: chunks of people whose sum stays below
    ``limit`` (``per_person`` bounds one person's contribution to each entry; both are
    public), each summed in int64 from blocks of at most ``memory`` people."""
    total = ExactSum()
    for a, b in people_chunks(n, chunk_people(per_person, limit)):
        acc: NDArray[np.int64] | None = None
        for s, e in people_chunks(b - a, memory or max(1, b - a)):
            block = part(a + s, a + e)
            acc = block if acc is None else acc + block
        assert acc is not None
        total.add(acc)
    return total


def _rows(M: sp.csr_matrix, a: int, b: int) -> sp.csr_matrix:
    return M if (a, b) == (0, M.shape[0]) else M[a:b]


def _item_statistics(
    W_int: sp.csr_matrix, C_int: sp.csr_matrix, U_int: NDArray[np.int64], k: int,
    with_a: bool, *, alpha_value: float = MAX_ALPHA_VALUE,
) -> NDArray[np.int64] | NDArray[np.object_]:
    """The item-side statistics [G, A_j..., b_j...] computed exactly in integers and rounded
    onto the noise grid ``2^k`` (nearest, ties up, as OpenDP), as grid indices.

    ``alpha_value`` (public, ``alpha · max_value``) bounds the weights, which sizes the
    chunks of people; the default is the largest value DP-ALS accepts."""
    n, f = U_int.shape
    iu = np.triu_indices(f)
    w_max = math.floor(alpha_value * (1 << QW))
    c_max = math.floor((1.0 + alpha_value) * (1 << QW))

    def gram(a: int, b: int) -> NDArray[np.int64]:
        # float64 BLAS is exact here: integer products below 2^30, partial sums below 2^53
        Uf = U_int[a:b].astype(np.float64)
        return (Uf.T @ Uf)[iu].astype(np.int64)

    G = _people_sum(n, 1 << (2 * QX), gram, limit=1 << 53)
    blocks = [G.rounded(2 * QX + k).ravel()]
    if with_a:
        def weighted(a: int, b: int) -> NDArray[np.int64]:
            U = U_int[a:b]
            return np.asarray(_rows(W_int, a, b).T @ (U[:, iu[0]] * U[:, iu[1]]))

        A = _people_sum(n, max(1, w_max) << (2 * QX), weighted, memory=_MEMORY_PEOPLE)
        blocks.append(A.rounded(2 * QX + QW + k).ravel())

    C_float = C_int.astype(np.float64)

    def linear(a: int, b: int) -> NDArray[np.int64]:
        # float64 is exact here too: products below c_max 2^QX, partial sums below 2^53
        return np.asarray(_rows(C_float, a, b).T @ U_int[a:b].astype(np.float64)
                          ).astype(np.int64)

    B = _people_sum(n, c_max << QX, linear, limit=1 << 53)
    blocks.append(B.rounded(QX + QW + k).ravel())
    if any(b.dtype == object for b in blocks):
        large: NDArray[np.object_] = np.concatenate([b.astype(object) for b in blocks])
        return large
    small: NDArray[np.int64] = np.concatenate(blocks)
    return small


# ---------------------------------------------------------------------------------------------
# item step on the noisy statistics


def _shrink(bn: NDArray[np.float64], scale: float) -> NDArray[np.float64]:
    """Positive-part James–Stein shrinkage of each noisy ``b_j`` toward zero."""
    d = bn.shape[1]
    energy = np.maximum(np.einsum("nf,nf->n", bn, bn), 1e-300)
    out: NDArray[np.float64] = bn * np.maximum(0.0, 1.0 - d * scale * scale / energy)[:, None]
    return out


def _symmetric(upper: NDArray[np.float64], d: int) -> NDArray[np.float64]:
    """Symmetric matrices from upper triangles (``... × d(d+1)/2`` to ``... × d × d``)."""
    iu = np.triu_indices(d)
    M = np.zeros((*upper.shape[:-1], d, d))
    M[..., iu[0], iu[1]] = upper
    return M + np.swapaxes(np.triu(M, 1), -1, -2)


def _item_solve(
    noisy: NDArray[np.float64], n_items: int, d: int, with_a: bool, ridge: float,
    scale: float, shrinkage: bool, shared: bool,
) -> NDArray[np.float64]:
    """Item factors from the noisy statistics: ``(G + A_j)`` with negative eigenvalues
    clipped, plus ``ridge``, solved for every (shrunk) ``b_j``. ``shared`` (no ``A_j``):
    one eigendecomposition of ``G`` for all items."""
    tri = d * (d + 1) // 2
    bn = noisy[noisy.size - d * n_items:].reshape(n_items, d)
    if shrinkage:
        bn = _shrink(bn, scale)
    Gn = _symmetric(noisy[:tri], d)
    if shared:
        if with_a:
            raise ValueError("the shared solve needs alpha = 0 (no A_j statistics)")
        evals, evecs = np.linalg.eigh(Gn)
        evals = np.maximum(evals, 0.0) + ridge
        solved: NDArray[np.float64] = ((bn @ evecs) / evals) @ evecs.T
        return solved
    Y = np.empty((n_items, d))
    for start in range(0, n_items, _batch(d)):
        stop = min(n_items, start + _batch(d))
        if with_a:
            An = noisy[tri + start * tri: tri + stop * tri].reshape(stop - start, tri)
            M = _symmetric(An, d) + Gn
        else:
            M = np.broadcast_to(Gn, (stop - start, d, d)).copy()
        evals, evecs = np.linalg.eigh(M)
        evals = np.maximum(evals, 0.0) + ridge
        proj = np.einsum("nfg,nf->ng", evecs, bn[start:stop])
        Y[start:stop] = np.einsum("nfg,ng->nf", evecs, proj / evals)
    return Y
