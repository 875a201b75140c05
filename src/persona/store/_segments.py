"""Segments of events: writing them per bucket, merging them (compaction), and deleting
what is past retention or erased."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from persona.store._common import (
    to_us,
)
from persona.store._definitions import cutoffs
from persona.store._shown import purge as purge_shown
from persona.store._sql import (
    BUCKET_BITS,
    EVENT_DTYPE,
    FANOUT,
    MAX_SEGMENTS,
    load_segments,
    merge_plan,
    person_time_order,
    segment_rows,
)

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = [
    "apply_retention",
    "compact",
    "compact_buckets",
    "distinct_sorted",
    "drop_orphan_items",
    "insert_segments",
    "merge",
    "purge_eids",
]



def insert_segments(
    db: Db, subj: np.ndarray, rec: np.ndarray, levels: dict[int, int] | None = None
) -> None:
    """Write one segment per bucket, of level ``levels[bucket]`` (0 by default); ``subj``
    and ``rec`` sorted by person, then time."""
    db.con.executemany(
        "INSERT INTO segments(bucket, level, n, data) VALUES (?, ?, ?, ?)",
        segment_rows(subj, rec, levels),
    )


def compact_buckets(db: Db, buckets: list[int]) -> None:
    """Merge segments of the touched ``buckets`` as :func:`merge_plan` says."""
    db.temp_ids("_touched", buckets)
    due = [
        r[0]
        for r in db.con.execute(
            "SELECT bucket FROM segments WHERE bucket IN (SELECT id FROM temp._touched) "
            "GROUP BY bucket HAVING sum(level = 0) >= ? OR count(*) > ?",
            (FANOUT, MAX_SEGMENTS),
        )
    ]
    if not due:
        return
    db.temp_ids("_touched", due)
    levels: dict[int, list[tuple[int, int]]] = {}
    for bucket, seg, level in db.con.execute(
        "SELECT bucket, id, level FROM segments WHERE bucket IN (SELECT id FROM temp._touched)"
    ):
        levels.setdefault(bucket, []).append((seg, level))
    ids: list[int] = []
    for segs in levels.values():
        top = merge_plan([lv for _, lv in segs])
        if top is not None:
            ids.extend(seg for seg, lv in segs if lv < top)
    merge(db, ids, bump=True)


def merge(
    db: Db,
    ids: list[int],
    keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    *,
    bump: bool = False,
) -> tuple[int, int]:
    """Merge the listed segments into one per bucket, keeping the events where
    ``keep(records, subject codes)`` is true (all by default; with ``keep``, only the
    buckets that lose events are rewritten). The merged segment's level is the highest
    merged, plus one if ``bump``. Returns the number of events deleted and of people whose
    events were rewritten."""
    if not ids:
        return 0, 0
    db.temp_ids("_merge", ids)
    rows = db.con.execute(
        "SELECT bucket, n, data, id, level FROM segments "
        "WHERE id IN (SELECT id FROM temp._merge) ORDER BY id"
    ).fetchall()
    rec, subj = load_segments(rows)
    deleted = 0
    if keep is not None:
        mask = keep(rec, subj)
        deleted = int(mask.size - np.count_nonzero(mask))
        if not deleted:
            return 0, 0
        hit = np.unique(subj[~mask] >> BUCKET_BITS)
        chosen = np.isin(np.fromiter((r[0] for r in rows), np.int64, len(rows)), hit)
        rows = [r for r, c in zip(rows, chosen.tolist(), strict=True) if c]
        rec, subj = load_segments(rows)
        mask = keep(rec, subj)
        rec, subj = rec[mask], subj[mask]
        db.temp_ids("_merge", [r[3] for r in rows])
    levels: dict[int, int] = {}
    for r in rows:
        levels[r[0]] = max(levels.get(r[0], 0), r[4] + bump)
    order = person_time_order(subj, rec["at"])
    rec, subj = rec[order], subj[order]
    db.con.execute("DELETE FROM segments WHERE id IN (SELECT id FROM temp._merge)")
    insert_segments(db, subj, rec, levels)
    return deleted, int(distinct_sorted(subj).size)


def compact(db: Db) -> int:
    """Merge each bucket's segments into one (faster reads after many small batches).
    Returns the number of people whose events were rewritten."""
    with db.lock, db.transaction():
        ids = [
            r[0]
            for r in db.con.execute(
                "SELECT id FROM segments WHERE bucket IN "
                "(SELECT bucket FROM segments GROUP BY bucket HAVING count(*) > 1)"
            )
        ]
        return merge(db, ids, bump=True)[1]


def apply_retention(db: Db) -> int:
    """Delete events that are past their feature's retention window from the file,
    and shown records past theirs (:meth:`set_shown_retention`)."""
    with db.lock:
        db.refresh()
        cutoff = cutoffs(db, None, to_us(db.now()))
        with db.transaction():
            ids = [r[0] for r in db.con.execute("SELECT id FROM segments")]
            deleted, _ = merge(db, ids, lambda rec, _: rec["at"] >= cutoff[rec["feature"]])
            shown = purge_shown(db, db.now())
            db.audit.append(
                "apply_retention", {"events_deleted": deleted, "shown_deleted": shown}
            )
        return deleted


def drop_orphan_items(db: Db, candidates: set[int]) -> None:
    """After an erasure: delete the rows of ``candidates`` (the erased person's items)
    that no remaining event or feedback uses and that are not declared in the
    catalogue, so an item only they had leaves no trace. Scans the segments until
    every candidate is found in use (at most once over all events)."""
    if not candidates:
        return
    db.temp_ids("_cand", sorted(candidates))
    left = np.array(
        [
            r[0]
            for r in db.con.execute(
                "SELECT id FROM temp._cand WHERE id NOT IN (SELECT item_id FROM catalogue) "
                "AND id NOT IN (SELECT item_id FROM feedback) ORDER BY id"
            )
        ],
        dtype=np.int64,
    )
    if left.size:
        for (data,) in db.con.execute("SELECT data FROM segments"):
            left = left[~np.isin(left, np.frombuffer(data, dtype=EVENT_DTYPE)["item"])]
            if not left.size:
                break
    if left.size:
        db.con.executemany("DELETE FROM items WHERE id = ?", [(c,) for c in left.tolist()])


def purge_eids(db: Db, eids: np.ndarray) -> None:
    if eids.size == 0:
        return
    for chunk_id, blob in db.con.execute("SELECT id, eids FROM eid_chunks").fetchall():
        arr = np.frombuffer(blob, dtype="<u8")
        hit = np.isin(arr, eids, assume_unique=False)
        if hit.any():
            db.con.execute(
                "UPDATE eid_chunks SET eids = ? WHERE id = ?", (arr[~hit].tobytes(), chunk_id)
            )


def distinct_sorted(values: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array (``np.unique`` without its sort)."""
    return values[np.r_[True, values[1:] != values[:-1]]] if values.size else values
