"""Exact integer sums over people, computed in chunks whose size comes from public bounds.

A private statistic is a sum over people of integer contributions (values truncated onto a
fine binary grid). One person's effect on the sum is bounded only if the sum is exact, and a
guard such as "too many people for 64-bit sums" would itself depend on the data. So every
sum here is taken over chunks of people small enough that a chunk's sum cannot overflow
(the chunk size depends only on public per-person bounds), and the chunks are added up
exactly in two 64-bit limbs, with Python integers as the last resort. Nothing raises on the
number of people, and an empty matrix gives zeros.

How many people fit? A CSR matrix of ``n`` people holds an ``n + 1`` index array; the two
limbs stay exact for fewer than ``2^33`` chunks, far beyond any matrix a machine can hold.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

__all__ = ["ExactSum", "chunk_people", "people_chunks"]

MAX_CHUNK_PEOPLE = 1 << 22
"""Upper bound on the people per chunk (public; tests lower it to exercise many chunks)."""

_LIMIT = 1 << 62  # a chunk's sum stays below this in magnitude
_MASK = np.int64((1 << 32) - 1)


def chunk_people(per_person: int, limit: int = _LIMIT) -> int:
    """People per chunk so that a chunk's sum of per-person contributions, each at most
    ``per_person`` in magnitude per entry, stays below ``limit``.

    Examples
    --------
    >>> chunk_people(1 << 30, limit=1 << 53) == min(MAX_CHUNK_PEOPLE, 1 << 23)
    True
    >>> chunk_people(1 << 70)
    1
    """
    return max(1, min(MAX_CHUNK_PEOPLE, (limit - 1) // max(1, int(per_person))))


def people_chunks(n_people: int, size: int) -> Iterator[tuple[int, int]]:
    """Consecutive ``(start, stop)`` row ranges of at most ``size`` people; one empty range
    when there are no people, so every sum is taken at least once.

    Examples
    --------
    >>> list(people_chunks(5, 2)), list(people_chunks(0, 2))
    ([(0, 2), (2, 4), (4, 5)], [(0, 0)])
    """
    if n_people == 0:
        yield 0, 0
        return
    for start in range(0, n_people, size):
        yield start, min(n_people, start + size)


class ExactSum:
    """Exact running sum of int64 arrays whose entries are each below ``2^62`` in magnitude.

    One chunk is kept as it is; from the second on, the sum is held in two int64 limbs
    (``hi · 2^32 + lo`` with ``0 <= lo < 2^32``), so no addition can overflow.

    Examples
    --------
    >>> s = ExactSum()
    >>> for _ in range(8):
    ...     s.add(np.array([2**61, -(2**61), 3], dtype=np.int64))
    >>> [int(v) for v in s.values()] == [2**64, -(2**64), 24]
    True
    >>> s.rounded(60).tolist()  # nearest multiple of 2^60, ties up
    [16, -16, 0]
    """

    def __init__(self) -> None:
        self._n = 0
        self._single: NDArray[np.int64] | None = None
        self._lo: NDArray[np.int64] | None = None
        self._hi: NDArray[np.int64] | None = None

    def add(self, part: NDArray[np.int64]) -> None:
        """Add one chunk's sum (entries below ``2^62`` in magnitude); the sum may keep
        ``part`` itself, so do not change it afterwards."""
        part = np.asarray(part, dtype=np.int64)
        if self._n == 0:
            self._single = part
        else:
            if self._lo is None:
                assert self._single is not None
                self._lo = self._single & _MASK
                self._hi = self._single >> 32
                self._single = None
            assert self._hi is not None
            self._lo += part & _MASK
            self._hi += part >> 32
            self._hi += self._lo >> 32
            self._lo &= _MASK
        self._n += 1

    def values(self) -> NDArray[np.int64] | NDArray[np.object_]:
        """The exact sums: int64 when every one fits, else Python integers."""
        if self._n == 0:
            raise ValueError("nothing was added")
        if self._lo is None:
            assert self._single is not None
            return self._single
        assert self._hi is not None
        if self._hi.size == 0 or np.abs(self._hi).max() < (1 << 29):
            small: NDArray[np.int64] = (self._hi << 32) + self._lo
            return small
        large: NDArray[np.object_] = self._hi.astype(object) * (1 << 32) + self._lo.astype(object)
        return large

    def rounded(self, e: int) -> NDArray[np.int64] | NDArray[np.object_]:
        """Index of the nearest multiple of ``2^e`` for every sum (ties up, as OpenDP's
        ``find_nearest_multiple_of_2k``), exactly: int64 when every index fits."""
        return _round_shift(self.values(), e)

    def as_float(self, shift: int, k: int) -> NDArray[np.float64] | None:
        """The sums times ``2^-shift`` as float64 when that is exact and their index on the
        grid ``2^k`` stays below ``2^61`` (what :func:`round_to_grid` accepts); else
        ``None``."""
        v = self.values()
        if v.dtype == object:
            return None
        top = int(np.abs(v).max()) if v.size else 0
        if top > (1 << 53) or top.bit_length() - shift - k > 60:
            return None
        return np.ldexp(v.astype(np.float64), -shift)


def _round_shift(
    S: NDArray[np.int64] | NDArray[np.object_], e: int
) -> NDArray[np.int64] | NDArray[np.object_]:
    """Nearest multiple index of 2^e for integers S (ties up), exactly."""
    if S.dtype != object:
        top = int(np.abs(S).max()) if S.size else 0
        if 1 <= e <= 61 and top < (1 << 62):
            return (S + (1 << (e - 1))) >> e
        if e <= 0 and top.bit_length() - e <= 61:
            return S << (-e)
        S = S.astype(object)
    out = (S + (1 << (e - 1))) >> e if e >= 1 else S * (1 << (-e))
    top = max((abs(int(x)) for x in out), default=0)
    return out.astype(np.int64) if top < (1 << 61) else out
