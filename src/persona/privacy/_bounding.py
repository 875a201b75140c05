"""Contribution bounding: make one person's influence on a release small and known.

Each person (a row of a user×item CSR matrix) keeps at most ``max_events`` of their entries,
chosen uniformly at random with keys from the OS CSPRNG (never the first k, which would
favour old or low-id items); each value is clipped to ``[0, max_value]``; factor vectors are
clipped to a public L2 norm.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from persona.errors import ValidationError
from persona.privacy._sampler import OS_BITS, RandomBits

__all__ = ["bound_contributions", "cap_events", "clip_rows", "clip_values"]


def _as_csr(X: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    if not sp.issparse(X):
        raise ValidationError("expected a scipy sparse user×item matrix (CSR)")
    csr = sp.csr_matrix(X, dtype=np.float64, copy=True)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    if csr.nnz and not np.all(np.isfinite(csr.data)):
        raise ValidationError("interaction values must be finite (no NaN or infinity)")
    return csr


_PACKED_ROWS = 1 << 24
"""Rows that one packed sort key tells apart: the row takes its top 24 bits."""


def _random_order(
    local: NDArray[np.uint64], n_rows: int, bits: RandomBits, packed_rows: int = _PACKED_ROWS
) -> NDArray[np.intp]:
    """An order of the entries that groups them by ``local`` (their row, ascending) and is
    uniformly random within each row; fewer than ``packed_rows`` rows take the fast path."""
    if n_rows < packed_rows:
        # one sort on (row, 40 random bits); ties would favour earlier entries, so a draw
        # with any tie inside a row is redrawn whole (rare): the order stays uniform
        while True:
            rand = np.frombuffer(bits(8 * local.size), dtype=np.uint64) >> np.uint64(24)
            key = (local << np.uint64(40)) | rand
            order = np.argsort(key)  # the keys are distinct, so every sort agrees
            sorted_key = key[order]
            if not np.any(sorted_key[1:] == sorted_key[:-1]):
                return order
    # more rows than the packed key holds: sort on (row, 64 random bits) as two keys
    rand = np.frombuffer(bits(8 * local.size), dtype=np.uint64)
    return np.lexsort((rand, local))


def cap_events(
    X: sp.spmatrix | sp.sparray, max_events: int, *, bits: RandomBits = OS_BITS
) -> sp.csr_matrix:
    """Keep at most ``max_events`` entries per row, a uniformly random subset.

    Parameters
    ----------
    X
        User×item sparse matrix (one row per person).
    max_events
        The public cap.
    bits
        Source of random bytes for the sampling keys (OS CSPRNG by default).

    Returns
    -------
    scipy.sparse.csr_matrix
        A new matrix; rows with at most ``max_events`` entries are unchanged.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix(np.ones((2, 5)))
    >>> cap_events(X, 3).getnnz(axis=1).tolist()
    [3, 3]
    """
    if max_events < 1:
        raise ValidationError("max_events must be at least 1")
    csr = _as_csr(X)
    counts = np.diff(csr.indptr)
    if csr.nnz == 0 or counts.max() <= max_events:
        return csr
    rows = np.repeat(np.arange(csr.shape[0]), counts)
    keep = np.ones(csr.nnz, dtype=bool)
    heavy_rows = np.flatnonzero(counts > max_events)
    heavy = np.flatnonzero(counts[rows] > max_events)  # entries of rows over the cap
    local = np.searchsorted(heavy_rows, rows[heavy]).astype(np.uint64)
    order = _random_order(local, heavy_rows.size, bits)
    starts = np.searchsorted(local[order], np.arange(heavy_rows.size, dtype=np.uint64))
    rank = np.arange(heavy.size) - np.repeat(starts, counts[heavy_rows])
    keep[heavy[order[rank >= max_events]]] = False
    out = sp.csr_matrix(
        (csr.data[keep], csr.indices[keep], np.r_[0, np.cumsum(np.minimum(counts, max_events))]),
        shape=csr.shape,
    )
    out.has_sorted_indices = True
    return out


def clip_values(X: sp.spmatrix | sp.sparray, max_value: float, *,
                signed: bool = False) -> sp.csr_matrix:
    """Clip every stored value to ``[0, max_value]`` (negative values become 0 and are
    dropped), or to ``[-max_value, max_value]`` with ``signed=True``.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> clip_values(sp.csr_matrix([[5.0, -1.0, 0.5]]), 1.0).toarray().tolist()
    [[1.0, 0.0, 0.5]]
    >>> clip_values(sp.csr_matrix([[5.0, -3.0, 0.5]]), 1.0, signed=True).toarray().tolist()
    [[1.0, -1.0, 0.5]]
    """
    csr = _as_csr(X)
    low = -float(max_value) if signed else 0.0
    np.clip(csr.data, low, float(max_value), out=csr.data)
    csr.eliminate_zeros()
    return csr


def clip_rows(M: NDArray[np.float64], max_norm: float) -> NDArray[np.float64]:
    """Scale down every row whose L2 norm exceeds ``max_norm`` to norm ``max_norm``.

    Examples
    --------
    >>> clip_rows(np.array([[3.0, 4.0], [0.3, 0.4]]), 1.0).round(3).tolist()
    [[0.6, 0.8], [0.3, 0.4]]
    """
    M = np.asarray(M, dtype=np.float64)
    norms = np.linalg.norm(M, axis=1)
    factor = np.minimum(1.0, float(max_norm) / np.maximum(norms, 1e-300))
    # guard the float product against landing a hair above the bound
    out: NDArray[np.float64] = M * factor[:, None]
    over = np.linalg.norm(out, axis=1) > max_norm
    if np.any(over):
        out[over] *= np.nextafter(1.0, 0.0) ** 8
    return out


def bound_contributions(
    X: sp.spmatrix | sp.sparray, max_events: int, max_value: float,
    *, signed: bool = False, bits: RandomBits = OS_BITS,
) -> sp.csr_matrix:
    """Clip values to ``[0, max_value]`` (``[-max_value, max_value]`` with ``signed=True``)
    and cap each person to ``max_events`` entries.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> B = bound_contributions(sp.csr_matrix(np.full((1, 4), 3.0)), 2, 1.0)
    >>> B.getnnz(), float(B.max())
    (2, 1.0)
    """
    return cap_events(clip_values(X, max_value, signed=signed), max_events, bits=bits)
