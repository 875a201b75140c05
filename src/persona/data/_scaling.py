"""The rescalings of summed confidences (``scaling=``): ``"none"``, ``"log"``, ``"row"``
and ``"bm25"``."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

from persona.errors import ValidationError

__all__ = ["SCALINGS", "Scaling", "bm25", "check_scaling", "row_scaled"]

Scaling = Literal["none", "log", "row", "bm25"]
SCALINGS = ("none", "log", "row", "bm25")


def check_scaling(scaling: object) -> None:
    """Raise :class:`~persona.ValidationError` unless ``scaling`` is one of :data:`SCALINGS`."""
    if scaling not in SCALINGS:
        raise ValidationError(f"scaling must be one of {SCALINGS}, not {scaling!r}")


def row_scaled(m: sp.csr_matrix) -> sp.csr_matrix:
    """Each row divided by its own largest value (reads that person's row only)."""
    m = m.copy()
    if m.nnz:
        counts = np.diff(m.indptr)
        nonempty = counts > 0
        peak = np.zeros(m.shape[0])
        peak[nonempty] = np.maximum.reduceat(m.data, m.indptr[:-1][nonempty])
        m.data = m.data / np.repeat(peak, counts)
    return m


def bm25(m: sp.csr_matrix, k1: float = 100.0, b: float = 0.8) -> sp.csr_matrix:
    """Okapi BM25 weighting of each row (as ``implicit.nearest_neighbours.bm25_weight``)."""
    m = m.copy()
    n = m.shape[0]
    df = np.bincount(m.indices, minlength=m.shape[1])
    idf = np.log(n) - np.log1p(df)
    row_sums = np.asarray(m.sum(axis=1)).ravel()
    avg = row_sums.mean() if n else 1.0
    length_norm = (1.0 - b) + b * row_sums / (avg or 1.0)
    rows = np.repeat(np.arange(n), np.diff(m.indptr))
    m.data = m.data * (k1 + 1.0) / (k1 * length_norm[rows] + m.data) * idf[m.indices]
    m.data = np.maximum(m.data, 0.0)  # zeros are dropped by Interactions (with their times)
    return m
