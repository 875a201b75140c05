"""The threads a model uses: the process-wide batch-scoring pool, BLAS held at one thread
while fitting, and how many people a scoring block holds.

One pool serves every model of the process (made on first use, grown when a batch asks for
more threads, forgotten in a forked child); :func:`run_blocks` spreads a batch's blocks
over it. :func:`_one_blas_thread` reuses one ``threadpoolctl`` controller. None of this
changes a result, only how fast it comes.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import numpy as np
from threadpoolctl import ThreadpoolController

from persona.errors import ValidationError

__all__ = ["run_blocks"]

T = TypeVar("T")

_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()
_IN_POOL = threading.local()


def _mark_worker() -> None:
    _IN_POOL.worker = True


def _forget_pool() -> None:  # in a forked child: the parent's threads do not exist there
    global _POOL, _POOL_SIZE
    _POOL, _POOL_SIZE = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _scoring_pool(threads: int) -> ThreadPoolExecutor | None:
    """The process's batch-scoring threads, kept between calls (None for one thread).

    A fresh thread's first large arrays come from memory the process has not touched yet:
    its first block product and its first partition each took about 2.5 ms longer than
    the next ones (*one-off*; a MovieLens batch of 610 people takes about 12 ms), so the
    threads are made once and grown when a call asks for more. Inside one of them
    (a batch started from a batch's thread) it is None and the batch runs in that thread:
    a worker never waits for the pool it belongs to."""
    global _POOL, _POOL_SIZE
    if threads < 2 or getattr(_IN_POOL, "worker", False):
        return None
    with _POOL_LOCK:
        if _POOL is None or threads > _POOL_SIZE:
            # the smaller pool is dropped, not shut down: a batch in another thread may
            # still be submitting to it; its threads end once nothing refers to it
            _POOL = ThreadPoolExecutor(
                threads, thread_name_prefix="persona-scoring", initializer=_mark_worker
            )
            _POOL_SIZE = threads
        return _POOL


_BLAS: ThreadpoolController | None = None


def _one_blas_thread() -> AbstractContextManager[Any]:
    """A context that holds BLAS at one thread (threadpoolctl), as implicit advises for
    its kernels and as persona's many small solves want.

    The loaded BLAS libraries are found once per process, on first use, and the one
    controller is reused: a fresh ``threadpool_limits`` scans every loaded library again,
    about 2 ms a call (*one-off*), which a fit or a forget would pay each time. A BLAS
    first loaded after that first use is not limited by it.
    """
    global _BLAS
    if _BLAS is None:
        _BLAS = ThreadpoolController()
    limit: AbstractContextManager[Any] = _BLAS.limit(limits=1, user_api="blas")
    return limit


def _block_size(block_size: int | None, items: int, people: int, threads: int) -> int:
    """People per scoring block: as given, or about 2**20 scores per block in the first
    pass over ``items`` items (64 to 256 people), evened out so that every thread gets the
    same number of blocks. Larger blocks make fewer, larger numpy calls (and fewer hand-overs
    of the GIL between the threads); the result never depends on the block size."""
    if block_size is not None:
        if (
            not isinstance(block_size, int | np.integer)
            or isinstance(block_size, bool)
            or block_size < 1
        ):
            raise ValidationError(f"block_size must be a positive integer, not {block_size!r}")
        return int(block_size)
    if people <= 64:  # one block: threads would cost more than they save
        return max(1, people)
    target = 1 << max(6, min(8, round(math.log2((1 << 20) / max(items, 1)))))
    threads = max(1, threads)
    blocks = threads * max(1, -(-people // (threads * target)))
    return max(1, -(-people // blocks))

def run_blocks(starts: Sequence[int], run: Callable[[int], T], threads: int,
               pooled: bool = True) -> list[T]:
    """``[run(start) for start in starts]``, on the scoring pool when there are several
    blocks, ``threads`` > 1 and ``pooled``: ``threads`` tasks, each running every
    ``threads``-th block, so at most ``threads`` blocks run at once however many threads
    the shared pool has. The results come back in the order of ``starts``."""
    pool = _scoring_pool(threads) if len(starts) > 1 and pooled else None
    if pool is None:
        return [run(st) for st in starts]
    ways = min(threads, len(starts))
    tasks = [pool.submit(lambda t: [run(st) for st in starts[t::ways]], t)
             for t in range(ways)]
    done = [f.result() for f in tasks]
    return [done[i % ways][i // ways] for i in range(len(starts))]
