"""Shared helpers for persona's benchmarks: machine description, alternating timings and
RESULTS.md sections."""

from __future__ import annotations

import gc
import platform
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = re.search(r"Model name:\s*(.+)", out)
        cpu = model.group(1).strip() if model else platform.processor()
    except (OSError, subprocess.CalledProcessError):
        cpu = platform.processor() or "unknown CPU"
    import os

    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, {datetime.now(UTC):%Y-%m-%d}"
    )


def alternating(
    pairs: Sequence[tuple[Callable[[], object], Callable[[], object]]],
    *,
    collect_garbage: bool = False,
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Run each ``(a, b)`` pair back to back, taking turns at going first, so that both
    sides see the same moments of this VM (its speed changes from one second to the next,
    and the first of a back-to-back pair of fits was measured up to 10% slower, whichever
    it was). Returns the wall times of the a's and the b's, then their process CPU times
    (all threads). ``collect_garbage`` runs the collector before each call."""
    wall: tuple[list[float], list[float]] = ([], [])
    cpu: tuple[list[float], list[float]] = ([], [])
    for k, pair in enumerate(pairs):
        for side in (0, 1) if k % 2 == 0 else (1, 0):
            if collect_garbage:
                gc.collect()
            c = time.process_time()
            t = time.perf_counter()
            pair[side]()
            wall[side].append(time.perf_counter() - t)
            cpu[side].append(time.process_time() - c)
    return wall[0], wall[1], cpu[0], cpu[1]


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> tuple[float, tuple[float, float]]:
    """The median of the per-pair ratios ``a[k] / b[k]`` of two :func:`alternating` runs,
    and its 95% confidence interval (:func:`median_ci`)."""
    ratios = np.asarray(a, dtype=float) / np.asarray(b, dtype=float)
    return float(np.median(ratios)), median_ci(ratios)


def median_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """A distribution-free confidence interval for the median of ``values``: the order
    statistics ``x_(j)`` and ``x_(n+1-j)`` with the largest ``j`` for which
    ``P(Binomial(n, 1/2) < j) <= (1 - level) / 2`` (each value lies below the median with
    probability 1/2, whatever the distribution). NaNs when ``n`` is too small for it."""
    from scipy.stats import binom

    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    j = 0
    while j + 1 <= n and binom.cdf(j, n, 0.5) <= (1.0 - level) / 2.0:
        j += 1  # P(Bin < j + 1) = cdf(j)
    if j == 0:
        return float("nan"), float("nan")
    return float(x[j - 1]), float(x[n - j])


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1000.0, q))


def write_section(title: str, body: str) -> None:
    """Replace (or add) the section ``## title`` in benchmarks/RESULTS.md."""
    text = RESULTS.read_text() if RESULTS.exists() else "# persona benchmark results\n"
    header = f"## {title}"
    pattern = re.compile(rf"^{re.escape(header)}\n.*?(?=^## |\Z)", re.S | re.M)
    section = f"{header}\n\n{body.strip()}\n\n"
    text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)
