"""Scoped reads with lineage: every event usable for a purpose now (:func:`events`), one
person's (:func:`history`, :func:`history_with_lineage`), their lineage alone
(:func:`person_lineage`), their not-interested items (:func:`not_interested`), or both for
a serving request (:func:`person_for_serving`, :func:`serving_fields`). Each checks consent,
allowed features and retention at the time of the read and is recorded in the audit log
(a serving request's entry is group-committed by its caller)."""

from __future__ import annotations

import bisect
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from persona._columns import EventColumns
from persona.schema import (
    Lineage,
    PersonLineage,
    check_id,
)
from persona.store._common import (
    to_us,
)
from persona.store._consent import CONSENT_COLUMNS_CE
from persona.store._decode import (
    decode,
    no_events,
    person_columns,
    time_ordered,
    time_ordered_tuples,
)
from persona.store._definitions import cutoffs, feature_plan, feature_uses
from persona.store._ingest_rules import held_outside_retention
from persona.store._lineage import consent_snapshot, person_lineage_fields
from persona.store._sql import (
    EVENT_DTYPE,
    MEMBER_MASK,
    bucket_of,
    load_segments,
)
from persona.store._subjects import subject_code

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = [
    "events",
    "excluded_keys",
    "history",
    "history_with_lineage",
    "not_interested",
    "person_blob",
    "person_events",
    "person_feedback",
    "person_for_serving",
    "person_lineage",
    "person_read",
    "read_events",
    "read_plan",
    "scoped_events",
    "serving_fields",
]

_MEMBER_AT = EVENT_DTYPE.fields["member"][1] // 2  # type: ignore[index]  # in int16 units (a structured dtype has fields)
_RECORD_SHORTS = EVENT_DTYPE.itemsize // 2
_LITTLE = sys.byteorder == "little"
# one person's reads decode up to this many records as Python tuples, more with numpy (the
# two cost the same at about 40 records, measured in a loop *(one-off)*)
_FEW_RECORDS = 48

def events(db: Db, purpose: str) -> tuple[EventColumns, Lineage]:
    """All events usable for ``purpose`` now and the read's lineage (``ScopedView.events``);
    recorded in the audit log."""
    return read_events(db, purpose)


def history(db: Db, purpose: str, user: str) -> EventColumns:
    """One person's events usable for ``purpose`` now (``ScopedView.history``)."""
    return _read_person(db, purpose, user, lineage=False)[0]


def history_with_lineage(db: Db, purpose: str, user: str) -> tuple[EventColumns, PersonLineage]:
    """One person's usable events and their lineage, in one read."""
    cols, lineage, _ = _read_person(db, purpose, user, lineage=True)
    assert lineage is not None
    return cols, lineage


def person_lineage(db: Db, purpose: str, user: str) -> PersonLineage:
    """What a read for ``purpose`` uses and leaves out of ``user``'s data (no event arrays)."""
    _, lineage, _ = _read_person(db, purpose, user, lineage=True, events=False)
    assert lineage is not None
    return lineage


def person_for_serving(db: Db, purpose: str, user: str) -> tuple[PersonLineage, set[str]]:
    """:func:`person_lineage` and :func:`not_interested` in one read and one audit entry."""
    _, lineage, not_interested_items = _read_person(db, purpose, user, lineage=True, events=False)
    assert lineage is not None
    return lineage, not_interested_items


def not_interested(db: Db, purpose: str, user: str) -> set[str]:
    """The items ``user`` said they are not interested in (a read with no events)."""
    return _read_person(db, purpose, user, lineage=False, events=False)[2]


def serving_fields(
    db: Db, purpose: str, user: str
) -> tuple[dict[str, Any], set[str], int | None]:
    """Inside the caller's snapshot and lock, with no audit entry: the fields of ``user``'s
    lineage for ``purpose``, their not-interested items and their subject code (``None``:
    not held). What a serving request reads (:mod:`persona.store._serving`)."""
    _, fields, not_interested_items, code = person_read(
        db, purpose, user, lineage=True, events=False
    )
    assert fields is not None
    return fields, not_interested_items, code


def read_plan(db: Db, purpose: str) -> tuple[int, datetime, np.ndarray, np.ndarray, list[str]]:
    """For a read for ``purpose`` now: its id, the time, per feature code the oldest
    readable time and its column in the result (-1: not allowed), and the allowed
    features' names."""
    pid = db.purpose_id(purpose)
    now = db.now()
    local, _, _, _, allowed = feature_plan(db, purpose)
    return pid, now, cutoffs(db, purpose, to_us(now)), local, list(allowed)


def read_events(db: Db, purpose: str) -> tuple[EventColumns, Lineage]:
    """All consented events for ``purpose``, recorded in the audit log in one transaction."""
    with db.lock:
        with db.read_transaction():
            cols, fields = scoped_events(db, purpose)
            detail = {
                "purpose": purpose,
                "rows": len(cols),
                "people": int(cols.users.size),
                "items": int(cols.items.size),
                "features": list(cols.features),
            }
            seq = db.audit.append("scoped_read", detail)
        return cols, Lineage(**fields, audit_seq=seq)


def scoped_events(db: Db, purpose: str) -> tuple[EventColumns, dict[str, Any]]:
    """Inside the caller's read transaction and lock, with no audit entry: all events
    usable for ``purpose`` now and the fields of the read's :class:`Lineage` (all but its
    audit entry). The one body of every whole-purpose read (:func:`read_events`, the
    Parquet export of :mod:`persona.store._parquet`)."""
    pid, now, cutoff, local, allowed = read_plan(db, purpose)
    granted = np.array(
        db.con.execute(
            "SELECT subject_id FROM consent_state "
            "WHERE purpose_id = ? AND action = 'grant'",
            (pid,),
        ).fetchall(),
        dtype=np.int64,
    ).reshape(-1)
    rec, subj = load_segments(
        db.con.execute("SELECT bucket, n, data FROM segments").fetchall()
        if granted.size
        else []
    )
    if subj.size:
        active = np.zeros(max(int(subj.max()), int(granted.max())) + 1, dtype=bool)
        active[granted] = True
        consented = active[subj]
        rec, subj = rec[consented], subj[consented]
    cols = decode(db, rec, subj, cutoff, local, tuple(allowed), excluded=excluded_keys(db))
    held = {} if len(cols) == rec.size else held_outside_retention(
        rec, cutoff, local, tuple(allowed))
    fields = {
        "store_id": db.store_id,
        "purpose": purpose,
        "purpose_description": db.purposes[purpose][1].description,
        "read_at": now,
        "features": feature_uses(db, purpose),
        "consent": consent_snapshot(db, purpose),
        "people": int(cols.users.size),
        "items": int(cols.items.size),
        "rows": len(cols),
        "outside_retention": held,
    }
    return cols, fields


def _read_person(
    db: Db, purpose: str, user: str, *, lineage: bool, events: bool = True
) -> tuple[EventColumns, PersonLineage | None, set[str]]:
    """One person's events usable for ``purpose`` (and, if asked, what was left out and
    why) and the items they said they are not interested in, recorded in the audit log
    in one transaction. ``events=False`` skips the event arrays: with ``lineage`` when
    only the lineage is wanted, without it when only the not-interested items are (no
    event is read then, and the audit entry says 0 rows)."""
    user = check_id(user, "user")
    with db.lock:
        with db.read_transaction():
            cols, fields, not_interested, _ = person_read(
                db, purpose, user, lineage=lineage, events=events
            )
            used_rows = len(cols) if fields is None else fields["rows"]
            seq = db.audit.append(
                "scoped_history_read",
                {"purpose": purpose, "rows": used_rows, "lineage": lineage},
                subject=db.pseudonym(user),
            )
        person = None if fields is None else PersonLineage(**fields, audit_seq=seq)
        return cols, person, not_interested


def person_read(
    db: Db, purpose: str, user: str, *, lineage: bool, events: bool
) -> tuple[EventColumns, dict[str, Any] | None, set[str], int | None]:
    """The body of :func:`_read_person`, inside the caller's transaction and lock, with
    no audit entry: the events, the lineage's fields (if asked), the not-interested
    items and the person's subject code (``None``: not held)."""
    pid, now, cutoff, local, allowed = read_plan(db, purpose)
    code = subject_code(db, user, create=False)
    state = None
    blob, parts = b"", 0
    excluded = None
    not_interested: set[str] = set()
    if code is not None:
        # the consent state, with its consent event for the lineage
        state = db.con.execute(
            f"SELECT cs.action, cs.seq, {CONSENT_COLUMNS_CE} "
            "FROM consent_state cs JOIN consent_events ce ON ce.seq = cs.seq "
            "WHERE cs.purpose_id = ? AND cs.subject_id = ?"
            if lineage
            else "SELECT action FROM consent_state "
            "WHERE purpose_id = ? AND subject_id = ?",
            (pid, code),
        ).fetchone()
        if lineage or (events and state is not None and state[0] == "grant"):
            blob, parts = person_blob(db, code)
        excluded, not_interested = person_feedback(db, code)
    active = state is not None and state[0] == "grant"
    # a few records decode fastest as Python tuples, more as numpy arrays
    few = len(blob) <= _FEW_RECORDS * EVENT_DTYPE.itemsize
    rec = time_ordered(blob, parts) if lineage or not few else None
    features = tuple(allowed)
    if not active or not events:
        cols = no_events(features)
    elif few:
        records = time_ordered_tuples(blob, parts) if rec is None else rec.tolist()
        cols = person_columns(db, records, cutoff, local, features, user, excluded)
    else:
        assert rec is not None  # (read above when there are more than a few)
        cols = decode(
            db, rec, np.full(rec.size, code, dtype=np.int64), cutoff, local, features,
            user, excluded,
        )
    fields = None
    if lineage:
        assert rec is not None  # lineage reads always decode with numpy
        fields = person_lineage_fields(db, purpose, code, state, rec, now, excluded)
    return cols, fields, not_interested, code


def person_feedback(db: Db, code: int) -> tuple[np.ndarray | None, set[str]]:
    """The person's ``dont_use`` items as sorted (person << 32 | item) keys (None if
    none; the form :func:`excluded_keys` gives for everyone) and their
    ``not_interested`` item ids."""
    rows = db.con.execute(
        "SELECT kind, item_id FROM feedback WHERE subject_id = ? "
        "AND kind IN ('dont_use', 'not_interested')",
        (code,),
    ).fetchall()
    dont = [i for k, i in rows if k == "dont_use"]
    excluded = np.sort((np.int64(code) << 32) | np.array(dont, np.int64)) if dont else None
    wanted = [i for k, i in rows if k == "not_interested"]
    if wanted and max(wanted) >= len(db.item_ext):
        db.sync_items()
    return excluded, {db.item_ext[i] for i in wanted}


def person_events(db: Db, code: int) -> np.ndarray:
    """The records of the person with subject code ``code``, oldest first."""
    return time_ordered(*person_blob(db, code))


def person_blob(db: Db, code: int) -> tuple[bytes, int]:
    """The raw records of the person with subject code ``code``: each segment's run of
    them, joined in segment order, and the number of runs (each run is in time order).

    Each segment is sorted by person, so their records are found by bisecting the
    ``member`` field of the raw blob, without decoding the rest of the bucket."""
    member = code & MEMBER_MASK
    parts = []
    for (data,) in db.con.execute(
        "SELECT data FROM segments WHERE bucket = ?", (bucket_of(code),)
    ):
        if _LITTLE:
            col = memoryview(data).cast("h")[_MEMBER_AT::_RECORD_SHORTS]
            lo = bisect.bisect_left(col, member)
            hi = bisect.bisect_right(col, member, lo)
        else:  # pragma: no cover - big-endian machines
            arr = np.frombuffer(data, dtype=EVENT_DTYPE)["member"]
            lo, hi = int(arr.searchsorted(member)), int(arr.searchsorted(member, "right"))
        if hi > lo:
            parts.append(data[lo * EVENT_DTYPE.itemsize : hi * EVENT_DTYPE.itemsize])
    return b"".join(parts), len(parts)


def excluded_keys(db: Db) -> np.ndarray | None:
    """Sorted (person << 32 | item) keys of events people asked not to be used."""
    rows = db.con.execute(
        "SELECT subject_id, item_id FROM feedback WHERE kind = 'dont_use'"
    ).fetchall()
    if not rows:
        return None
    arr = np.array(rows, dtype=np.int64)
    return np.sort((arr[:, 0] << 32) | arr[:, 1])
