"""OpenDP's "contrib" constructors, switched on only while persona builds a measurement.

The measurements persona asks for its costs (``make_gaussian``, ``make_laplace``,
``make_gaussian_threshold``, ``make_zCDP_to_approxDP``, ``make_fix_delta``) are in OpenDP's
"contrib" feature set, which OpenDP keeps behind the process-wide opt-in
``dp.enable_features("contrib")``. persona must not opt the host application in: each
construction runs inside :func:`contrib`, which enables the feature if it was off and
disables it again when the outermost construction (in any thread) has finished. A host that
enabled "contrib" itself keeps it. Only the *construction* needs the feature: a built
measurement's ``map`` works with it off.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import opendp.prelude as dp
from opendp.mod import GLOBAL_FEATURES

__all__ = ["contrib"]

_LOCK = threading.Lock()
_depth = 0  # constructions under way, in every thread
_added = False  # whether the outermost one switched "contrib" on (so must switch it off)


@contextmanager
def contrib() -> Iterator[None]:
    """OpenDP's "contrib" features on for the block, then as they were.

    Examples
    --------
    >>> from opendp.mod import GLOBAL_FEATURES
    >>> before = set(GLOBAL_FEATURES)
    >>> with contrib():
    ...     "contrib" in GLOBAL_FEATURES
    True
    >>> set(GLOBAL_FEATURES) == before
    True
    """
    global _depth, _added
    with _LOCK:
        if _depth == 0:
            _added = "contrib" not in GLOBAL_FEATURES
            if _added:
                dp.enable_features("contrib")
        _depth += 1
    try:
        yield
    finally:
        with _LOCK:
            _depth -= 1
            if _depth == 0 and _added:
                dp.disable_features("contrib")
                _added = False
