"""Holding the cyclic garbage collector while a call builds many short-lived objects."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Hold the cyclic garbage collector for the duration of the block.

    The objects built inside (validated rows, id maps, explanations) form no reference
    cycles and are freed by reference counting; without the hold, CPython < 3.12 re-scans
    every live object of the process (a caller's million-row list included) again and
    again while they are built, which makes one call several times slower.

    Holds nest and may overlap across threads: the collector's state before the first
    hold is restored when the last one ends, also on errors, so a caller who disabled
    the collector themselves keeps it disabled.

    CPython has one collector per process, so while a hold lasts no thread's cyclic
    garbage is collected: hold it around the loop that builds the objects, not around
    I/O, commits or waits for a lock.
    """
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
