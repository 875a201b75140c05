"""Two rules of ``Store.ingest`` kept apart from the store's façade: which rows are the
same event (``dedupe``), and events already outside their feature's retention.

Identity of an event
--------------------
An event with an ``id`` is identified by it (per person): sending it again, or twice in a
batch, stores it once. An event without one is identified by its content (person, item,
feature, value, time) and, with ``dedupe="none"`` (the default), by its *occurrence* among
identical id-less rows of the batch: the first copy has the content id (the one
``dedupe="exact"`` gives every copy, and every earlier persona version gave), the k-th
copy the content id mixed with k. So

- identical rows of one batch are all stored (two of the same item in the same second
  are two purchases), and
- sending the same batch again stores nothing new; a later batch with more copies of a
  row stores only the extra copies.

What ``"none"`` cannot tell apart: identical rows split over two batches (both are a
"first copy"). Give events an id (order and line number) when a file is sent in pieces
that may split them; ``persona ingest`` never splits a run of rows of one person at one
time. ``dedupe="exact"`` collapses identical id-less rows (within the batch and against
what is held): for sources that repeat rows that are not real (at-least-once delivery).

Retention at ingest
-------------------
An event older than its feature's retention (``retention_days`` before the store's clock)
is not stored: no read would use it, and :meth:`Store.apply_retention` would delete it.
The rule is the read rule (an event exactly at the cut-off is kept). Such events are
counted by feature in the report (``outside_retention``) and in the ingest's audit entry,
and a :class:`~persona.errors.RetentionWarning` says what to do. No store-wide tally is
kept: a purpose's reads must not report counts of people outside its consent scope (or
erased since), and the audit entries already hold each ingest's count.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from itertools import compress
from typing import Any

import numpy as np

from persona.errors import RetentionWarning, ValidationError
from persona.store._validate import Batch, _mix

__all__ = [
    "DEDUPE",
    "check_dedupe",
    "count_by_feature",
    "held_outside_retention",
    "number_copies",
    "outside_retention",
    "warn_outside_retention",
]

DEDUPE = ("none", "exact")
_COPY = np.uint64(0x2545F4914F6CDD1D)  # keeps the k-th copy's id apart from content ids


def check_dedupe(value: Any) -> str:
    """``value`` if it is one of :data:`DEDUPE`, else a :class:`ValidationError`."""
    if type(value) is not str or value not in DEDUPE:
        raise ValidationError(
            f"dedupe must be 'none' (keep identical rows without an id: repeat purchases) "
            f"or 'exact' (store identical rows without an id once), not {value!r}",
            errors=[{"row": None, "field": "dedupe", "message": "invalid",
                     "input": repr(value)[:80]}],
        )
    return value


def number_copies(eids: np.ndarray, explicit: list[str | None] | None) -> np.ndarray:
    """Event ids with the k-th copy (k ≥ 1, in batch order) of identical id-less content
    given an id of its own; rows with an explicit id keep theirs.

    >>> e = np.array([7, 7, 9, 7], dtype=np.uint64)
    >>> out = number_copies(e, None)
    >>> bool(out[0] == 7 and out[2] == 9), len(set(out.tolist()))
    (True, 4)
    >>> bool((number_copies(e, ["a", "a", None, None]) == [7, 7, 9, 7]).all())
    True
    """
    free = (
        np.arange(eids.size)
        if explicit is None
        else np.flatnonzero(np.fromiter((e is None for e in explicit), bool, eids.size))
    )
    content = eids[free]
    order = np.argsort(content, kind="stable")
    ranked = content[order]
    starts = np.ones(ranked.size, dtype=bool)
    starts[1:] = ranked[1:] != ranked[:-1]
    if starts.all():
        return eids
    position = np.arange(ranked.size)
    copy = position - np.maximum.accumulate(np.where(starts, position, 0))
    k = np.empty_like(copy)
    k[order] = copy
    later = k > 0
    out = eids.copy()
    with np.errstate(over="ignore"):
        out[free[later]] = _mix(content[later] ^ _mix(k[later].astype(np.uint64) + _COPY))
    return out


def outside_retention(
    batch: Batch, codes: Mapping[str, int], cutoff: np.ndarray
) -> np.ndarray | None:
    """Which rows of ``batch`` are older than their feature's ``cutoff`` (per feature code,
    as ``Store._cutoffs`` gives it), as a mask; ``None`` when the whole batch is at or
    after every cut-off (the usual case, found without a look at each row)."""
    if not batch.user or not codes:
        return None
    if int(batch.at_us.min()) >= max(int(cutoff[c]) for c in codes.values()):
        return None  # the usual case, without a look at each row's feature
    feature = np.fromiter(map(codes.__getitem__, batch.feature), np.int64, len(batch.user))
    return batch.at_us < cutoff[feature]


def count_by_feature(features: list[str], rows: np.ndarray) -> dict[str, int]:
    """How many of the ``rows`` (a mask) have each feature, in name order.

    >>> count_by_feature(["b", "a", "b"], np.array([True, False, True]))
    {'b': 2}
    """
    counts: dict[str, int] = {}
    for name in compress(features, rows.tolist()):
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def held_outside_retention(
    rec: np.ndarray, cutoff: np.ndarray, local: np.ndarray, features: tuple[str, ...]
) -> dict[str, int]:
    """Per allowed feature: the records of ``rec`` older than its cut-off (held until the
    next retention pass, invisible to reads)."""
    if not rec.size:
        return {}
    code = rec["feature"].astype(np.intp)  # (every record's feature is defined)
    old = (local[code] >= 0) & (rec["at"] < cutoff[code])
    counts = np.bincount(local[code[old]].astype(np.intp))
    return {features[i]: int(n) for i, n in enumerate(counts.tolist()) if n}


def warn_outside_retention(
    outside: Mapping[str, int], received: int, retention: Mapping[str, int | None],
    now: datetime, *, stacklevel: int = 3,
) -> None:
    """A :class:`RetentionWarning` saying how many events ingest did not store, per
    feature with its retention and cut-off, and what to do."""
    total = sum(outside.values())
    parts = []
    for name, n in outside.items():
        days = retention.get(name)
        if days is None:  # pragma: no cover - only features with a retention count
            continue
        cut = (now - timedelta(days=days)).astimezone(UTC)
        parts.append(f"{name!r} keeps {days} days, so nothing before {cut:%Y-%m-%d %H:%M} "
                     f"UTC: {n:,} event{'s' if n != 1 else ''}")
    warnings.warn(
        f"{total:,} of {received:,} events were not stored: they are already older than "
        f"their feature's retention ({'; '.join(parts)}). No read would use them, and "
        "store.apply_retention() deletes such events anyway. To use them, raise the "
        "feature's retention_days (store.define_feature(name, ..., retention_days=N), or "
        "None to keep events until the person is erased) and ingest them again. "
        "IngestReport.outside_retention counts them by feature.",
        RetentionWarning,
        stacklevel=stacklevel,
    )
