"""Ingest: a validated batch of events written in one transaction (new people and items,
suppressed people refused, duplicates dropped, events past retention counted)."""

from __future__ import annotations

from datetime import tzinfo
from itertools import compress, repeat
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from persona._gc import no_gc_pauses
from persona._times import check_unit, check_zone
from persona.errors import (
    SuppressedSubjectError,
    ValidationError,
)
from persona.schema import (
    IngestReport,
)
from persona.store._common import (
    from_us,
    to_us,
)
from persona.store._definitions import cutoffs
from persona.store._eidindex import EventIdIndex
from persona.store._ingest_rules import (
    check_dedupe,
    count_by_feature,
    number_copies,
    outside_retention,
    warn_outside_retention,
)
from persona.store._segments import compact_buckets, distinct_sorted, insert_segments
from persona.store._sql import (
    BUCKET_BITS,
    EVENT_DTYPE,
    person_time_order,
)
from persona.store._subjects import create_subjects, uncached_subjects
from persona.store._validate import event_ids, raise_for, validate_batch

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = ["drop_unused_new_items", "ingest", "write_batch"]



def ingest(
    db: Db,
    events: Any,
    *,
    on_invalid: Literal["raise", "skip"] = "raise",
    at_unit: Literal["s", "ms", "us", "ns"] | None = None,
    tz: str | tzinfo | None = None,
    dedupe: Literal["none", "exact"] = "none",
) -> IngestReport:
    """Validate and store a batch of events, all or nothing."""
    if on_invalid not in ("raise", "skip"):
        raise ValidationError(
            f"on_invalid must be 'raise' or 'skip', not {on_invalid!r}",
            errors=[{"row": None, "field": "on_invalid", "message": "invalid"}],
        )
    unit = None if at_unit is None else check_unit(at_unit)
    zone = None if tz is None else check_zone(tz)
    check_dedupe(dedupe)
    with db.lock:
        db.refresh()
        now_us = to_us(db.now())
        codes = {name: fid for name, (fid, _) in db.features.items()}
        bounds = {
            name: spec.max_value
            for name, (_, spec) in db.features.items()
            if spec.max_value is not None
        }
        # validation builds ~10 objects per row, with no cycles: the collector is held
        # for that alone (not for the write transaction and its commit)
        with no_gc_pauses():
            batch, problems = validate_batch(
                events, now_us=now_us, features=codes, max_values=bounds,
                at_unit=unit, tz=zone,
            )
        if problems and on_invalid == "raise":
            raise_for(problems, batch.n)
        old = outside_retention(batch, codes, cutoffs(db, None, now_us))
        try:
            with db.transaction():
                report = write_batch(db, batch, problems, codes, on_invalid, dedupe, old)
        except BaseException:
            db.clear_subjects()  # may hold codes of rows that were rolled back
            db.eids = EventIdIndex()
            raise
    if report.outside_retention:
        retention = {n: spec.retention_days for n, spec in db.feature_specs().items()}
        warn_outside_retention(report.outside_retention, batch.n, retention,
                               from_us(now_us), stacklevel=4)
    return report


def write_batch(
    db: Db,
    batch: Any,
    problems: list[dict[str, Any]],
    feature_codes: dict[str, int],
    on_invalid: str,
    dedupe: str = "none",
    old: np.ndarray | None = None,
) -> IngestReport:
    """Store ``batch`` (in the caller's transaction); ``old`` marks its rows already
    outside retention: counted, never stored, and no person or item row is made for
    them (an erased person's rows are refused first, as any of their rows)."""
    generation = db.generation  # checked when the transaction began
    keep = np.ones(len(batch.user), dtype=bool)
    new, complete = uncached_subjects(db, batch.user)
    if new:
        pseudonyms = dict(zip(new, map(db.pseudonym, new), strict=True))
        blocked_ps: set[str] = set()
        if db.con.execute("SELECT 1 FROM suppressed LIMIT 1").fetchone():
            db.con.execute("CREATE TEMP TABLE IF NOT EXISTS _ps(p TEXT PRIMARY KEY)")
            db.con.execute("DELETE FROM temp._ps")
            db.con.executemany(
                "INSERT INTO temp._ps(p) VALUES (?)", zip(pseudonyms.values())
            )
            blocked_ps = {
                r[0]
                for r in db.con.execute(
                    "SELECT s.pseudonym FROM suppressed s JOIN temp._ps t ON t.p = s.pseudonym"
                )
            }
        if blocked_ps:
            blocked = {u for u, p in pseudonyms.items() if p in blocked_ps}
            rows = [i for i, u in enumerate(batch.user) if u in blocked]
            if on_invalid == "raise":
                raise SuppressedSubjectError(
                    f"the batch was rejected and nothing was stored: {len(rows)} event(s) "
                    f"(first at row {int(batch.rows[rows[0]])}, field 'user') belong to "
                    f"{len(blocked)} person(s) who were erased. Events for an erased person "
                    "are refused until they grant consent again (store.grant(...)).",
                    errors=[
                        {
                            "row": int(batch.rows[i]),
                            "field": "user",
                            "message": "erased person",
                            "input": "(withheld)",
                        }
                        for i in rows
                    ],
                )
            keep[rows] = False
            problems = [
                *problems,
                *({"row": int(batch.rows[i]), "field": "user"} for i in rows),
            ]
            new = [u for u in new if u not in blocked]
        if new and old is not None:  # no person row for someone whose rows all expired
            wanted = set(compress(batch.user, (keep & ~old).tolist()))
            new = [u for u in new if u in wanted]
        if new:
            create_subjects(db, new, pseudonyms, complete)
    outside: dict[str, int] = {}
    if old is not None:
        outside = count_by_feature(batch.feature, keep & old)
        keep &= ~old
    m_all = len(batch.user)
    subj = np.fromiter(map(db.subjects.get, batch.user, repeat(0)), np.int64, m_all)

    db.sync_items()
    # item rows for the events that may be stored (not a suppressed person's); those
    # that end up unused (duplicates) are removed again below, in this transaction
    maybe = batch.item if keep.all() else list(compress(batch.item, keep.tolist()))
    unknown = set(maybe).difference(db.item_code)
    if unknown:
        db.con.executemany(
            "INSERT OR IGNORE INTO items(ext) VALUES (?)",
            zip(dict.fromkeys(filter(unknown.__contains__, maybe))),
        )
        db.sync_items()
    # refused rows may name items without a row: code 0, never stored
    item = np.fromiter(map(db.item_code.get, batch.item, repeat(0)), np.int64, m_all)
    feature = np.fromiter(map(feature_codes.__getitem__, batch.feature), np.int64, m_all)

    eids = event_ids(subj, item, feature, batch.value, batch.at_us, batch.event_id)
    if dedupe == "none":
        eids = number_copies(eids, batch.event_id)
    db.eids.sync(db.con, generation)
    uniq, first = np.unique(eids, return_index=True)  # sorted: cache-friendly lookups
    kept = keep[first]
    uniq, first = uniq[kept], first[kept]
    new_ids = ~db.eids.contains(uniq)
    fresh = np.zeros(m_all, dtype=bool)
    fresh[first[new_ids]] = True
    new_eids = uniq[new_ids]  # sorted
    duplicates = int(keep.sum() - fresh.sum())
    idx = np.flatnonzero(fresh)
    m = idx.size
    if unknown:
        drop_unused_new_items(db, {db.item_code[i] for i in unknown}, item[idx])
    people = 0
    if m:
        s, it, fe = subj[idx], item[idx], feature[idx]
        val, at, eid = batch.value[idx], batch.at_us[idx], eids[idx]
        order = person_time_order(s, at)
        rec = np.zeros(m, dtype=EVENT_DTYPE)
        rec["item"], rec["feature"] = it[order], fe[order]
        rec["value"], rec["at"], rec["eid"] = val[order], at[order], eid[order]
        s_sorted = s[order]
        insert_segments(db, s_sorted, rec)
        db.eids.append(db.con, new_eids)
        compact_buckets(db, distinct_sorted(s_sorted >> BUCKET_BITS).tolist())
        people = int(distinct_sorted(s_sorted).size)
    rejected_by_field: dict[str, int] = {}
    for p in problems:
        rejected_by_field[p["field"]] = rejected_by_field.get(p["field"], 0) + 1
    rejected = len({p["row"] for p in problems})
    per_feature = {
        name: int(np.count_nonzero(feature[idx] == code))
        for name, code in feature_codes.items()
        if np.any(feature[idx] == code)
    }
    seq = db.audit.append(
        "ingest",
        {
            "received": batch.n,
            "inserted": m,
            "duplicates": duplicates,
            "rejected": rejected,
            "people": people,
            "by_feature": per_feature,
            **({"outside_retention": outside} if outside else {}),
        },
    )
    return IngestReport(
        received=batch.n,
        inserted=m,
        duplicates=duplicates,
        rejected=rejected,
        rejected_by_field=rejected_by_field,
        outside_retention=outside or {},
        audit_seq=seq,
    )


def drop_unused_new_items(db: Db, new: set[int], stored: np.ndarray) -> None:
    """Delete the item rows this batch created that none of its stored events uses
    (an item row exists only for a stored event or a declared item)."""
    unused = sorted(new.difference(np.unique(stored).tolist()))
    if unused:
        db.con.executemany("DELETE FROM items WHERE id = ?", [(c,) for c in unused])
        db.clear_items()  # their ids may be given again
