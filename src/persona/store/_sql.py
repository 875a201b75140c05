"""SQLite layout of the store and connection set-up.

Events are stored as *segments*. People are grouped in *buckets* of
``2 ** BUCKET_BITS`` consecutive subject codes; an ingest batch writes one row per bucket it
touches, whose ``data`` blob is a packed array of :data:`EVENT_DTYPE` records (item code,
feature code, the person's place in the bucket, value, time, event id), sorted by person and
time (every segment keeps that order: a person's records are found by bisecting it). A
scoped read fetches a few large blobs instead of one row per event, and a person's history
is one index lookup of their bucket, which is what lets both run at millions of events per
second. Writing per bucket rather than per person keeps the number of rows (and of index
entries, deletions and dirty pages) per batch small however many people it touches. A
bucket's segments are merged in levels, like the digits of a counter in base
:data:`FANOUT` (see :func:`merge_plan`), so each event is rewritten only a few times and
a bucket holds at most :data:`MAX_SEGMENTS`.
String ids live once, in ``subjects`` and ``items``, so erasing a person deletes one row
holding their id (``secure_delete`` zeroes it on disk).
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from persona.errors import StoreError

SCHEMA_VERSION = 5  # 3: privacy_budget.period_days; ledger lines of several kinds;
# 4: what people were shown (``shown``) and their non-profiling choice (``profiling``);
# 5: the serving state every worker shares (``curation``, ``model_versions``, ``live_model``)
BUCKET_BITS = 6  # 64 people per bucket
MEMBER_MASK = (1 << BUCKET_BITS) - 1  # a person's place in their bucket: code & MEMBER_MASK
FANOUT = 4
MAX_SEGMENTS = 10

EVENT_DTYPE = np.dtype(
    [
        ("item", "<i4"),
        ("feature", "<i2"),
        ("member", "<i2"),  # subject code modulo the bucket size
        ("value", "<f8"),
        ("at", "<i8"),  # microseconds since the Unix epoch, UTC
        ("eid", "<u8"),
    ]
)
assert EVENT_DTYPE.itemsize == 32

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS purposes (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS features (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ext TEXT NOT NULL UNIQUE,
    pseudonym TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY, ext TEXT NOT NULL UNIQUE, label TEXT);
CREATE TABLE IF NOT EXISTS catalogue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, item_id INTEGER NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS consent_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, subject_id INTEGER NOT NULL,
    purpose_id INTEGER NOT NULL, action TEXT NOT NULL, at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL, source TEXT NOT NULL, notice_version TEXT, signal TEXT);
CREATE INDEX IF NOT EXISTS consent_events_subject ON consent_events(subject_id);
CREATE TABLE IF NOT EXISTS consent_state (
    purpose_id INTEGER NOT NULL, subject_id INTEGER NOT NULL, action TEXT NOT NULL,
    at INTEGER NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (purpose_id, subject_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS consent_state_subject ON consent_state(subject_id);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY, bucket INTEGER NOT NULL, level INTEGER NOT NULL,
    n INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS segments_bucket ON segments(bucket, level);
CREATE TABLE IF NOT EXISTS feedback (
    subject_id INTEGER NOT NULL, item_id INTEGER NOT NULL, kind TEXT NOT NULL,
    at INTEGER NOT NULL, source TEXT NOT NULL,
    PRIMARY KEY (subject_id, item_id, kind)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS feedback_kind ON feedback(kind);
CREATE TABLE IF NOT EXISTS eid_chunks (id INTEGER PRIMARY KEY, eids BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS suppressed (pseudonym TEXT PRIMARY KEY, at INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, action TEXT NOT NULL, subject TEXT,
    detail TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_subject ON audit(subject) WHERE subject IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_privacy ON audit(seq)
    WHERE action IN ('privacy_budget', 'privacy_charge', 'privacy_reservation',
                     'privacy_settlement');
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS shown_explanations (
    seq INTEGER PRIMARY KEY, subject_id INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS shown_explanations_subject ON shown_explanations(subject_id);
-- what a serving request showed one person (one row per request: its items as JSON),
-- keyed by the audit entry that recorded the request; erased with the person
CREATE TABLE IF NOT EXISTS shown (
    seq INTEGER PRIMARY KEY, subject_id INTEGER NOT NULL, at INTEGER NOT NULL,
    body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS shown_subject ON shown(subject_id, at);
CREATE INDEX IF NOT EXISTS shown_at ON shown(at);
-- people who asked for lists not based on them (DSA Art. 38), since when
CREATE TABLE IF NOT EXISTS profiling (
    subject_id INTEGER PRIMARY KEY, at INTEGER NOT NULL, source TEXT NOT NULL);
-- one row per ledger line: a charge, a reservation or a settlement (``charge`` holds its
-- JSON; reservations and settlements carry a ``kind``), only ever appended
CREATE TABLE IF NOT EXISTS privacy_ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, purpose TEXT,
    charge TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS privacy_ledger_no_update BEFORE UPDATE ON privacy_ledger
    BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS privacy_ledger_no_delete BEFORE DELETE ON privacy_ledger
    BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
-- period_days NULL: a lifetime total; else a budget per rolling period of that many days
CREATE TABLE IF NOT EXISTS privacy_budget (
    purpose TEXT PRIMARY KEY, epsilon REAL NOT NULL, delta REAL NOT NULL, at TEXT NOT NULL,
    period_days INTEGER);
-- the serving state every worker shares (see _curation and _registry); no person's data.
-- per purpose, the latest curation (its JSON) and the count of curations (``version``)
CREATE TABLE IF NOT EXISTS curation (
    purpose TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL, at TEXT NOT NULL);
-- every published model version: a saved folder and the checksum of its personalizer.json
CREATE TABLE IF NOT EXISTS model_versions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, purpose TEXT NOT NULL, version TEXT NOT NULL,
    folder TEXT NOT NULL, sha256 TEXT NOT NULL, model_class TEXT NOT NULL, at TEXT NOT NULL,
    UNIQUE (purpose, version));
-- per purpose, the version every worker serves and the count of its changes
CREATE TABLE IF NOT EXISTS live_model (
    purpose TEXT PRIMARY KEY, version TEXT NOT NULL, changes INTEGER NOT NULL,
    at TEXT NOT NULL);
"""


MMAP_BYTES = 1 << 30  # address space only: pages are mapped as they are read


def check_path(path: str) -> None:
    """Refuse a store path that cannot hold a store file, before SQLite touches it: empty,
    a folder, in a missing folder, not a regular file (``/dev/null``), read-only."""
    if path == ":memory:":
        return
    if not path.strip():
        raise StoreError(
            "the store path is empty; give a file name such as 'persona.db', or ':memory:' "
            "for a store that lives only in memory."
        )
    if os.path.isdir(path):
        raise StoreError(
            f"{path!r} is a folder, not a store file; give a file name inside it, e.g. "
            f"{os.path.join(path, 'persona.db')!r}."
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise StoreError(
            f"the folder of the store file {path!r} does not exist; create {folder!r} first "
            "or give a path in an existing folder."
        )
    if os.path.exists(path):
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise StoreError(
                f"{path!r} is not a regular file (a device, pipe or socket); give the path "
                "of a store file, e.g. 'persona.db'."
            )
        writable = info.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        if not writable or not os.access(path, os.W_OK):
            raise StoreError(
                f"the store file {path!r} is read-only; persona writes to its store (consent, "
                "audit log, reads' entries). Make it writable (chmod u+w) or open a copy."
            )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(
            f"the folder {folder!r} is not writable, and a store needs to write its "
            "write-ahead log next to the file; make the folder writable or move the file."
        )


def _own_tables() -> frozenset[str]:
    return frozenset(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", DDL))


def check_own(con: sqlite3.Connection, path: str) -> None:
    """Refuse an SQLite database that is not a persona store: one with tables but no
    ``meta`` naming a store id and a format (persona never adds its tables next to
    another application's). A file whose tables are all persona's and whose ``meta`` is
    still empty is a store whose creation was interrupted: it is ours."""
    tables = {
        r[0]
        for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not r[0].startswith("sqlite_")
    }
    if not tables:
        return
    if "meta" in tables:
        columns = [r[1] for r in con.execute("PRAGMA table_info(meta)")]
        if columns == ["key", "value"]:
            keys = {r[0] for r in con.execute("SELECT key FROM meta")}
            if {"store_id", "schema_version"} <= keys:
                return
            if not keys and tables <= _own_tables() | {"segments_v1"}:
                return
    shown = ", ".join(sorted(tables)[:5]) + (" …" if len(tables) > 5 else "")
    raise StoreError(
        f"{path!r} is an SQLite database but not a persona store (it holds the tables "
        f"{shown}); persona does not add its tables to another application's database. "
        "Give the store a new file, e.g. 'persona.db'."
    )


def connect(path: str, *, timeout: float, synchronous: str) -> sqlite3.Connection:
    """Open ``path`` with the pragmas the store relies on.

    Refuses (with a :class:`~persona.StoreError`) a path that cannot hold a store, a file
    that is not an SQLite database, and an SQLite database that is not a persona store,
    before anything is written to it."""
    check_path(path)
    try:
        con = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    except (sqlite3.Error, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise StoreError(
            f"cannot open the store file {path!r}: {exc}. Check that the folder exists and "
            "is writable."
        ) from exc
    try:
        con.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        check_own(con, path)
        if path != ":memory:":
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":  # pragma: no cover - e.g. network file systems
                raise StoreError(
                    f"the store file {path!r} cannot use write-ahead logging (got {mode!r}); "
                    "put it on a local disk."
                )
        con.execute(f"PRAGMA synchronous = {synchronous}")
        con.execute("PRAGMA secure_delete = ON")
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA temp_store = MEMORY")
        # Read the file through a memory map (writes still go through the WAL): a person's
        # history reads a few segment blobs of several overflow pages each, and without the
        # map each page is one read() call. SQLite caps this at its compile-time limit.
        con.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    except sqlite3.DatabaseError as exc:
        con.close()
        if "not a database" in str(exc):
            raise StoreError(
                f"{path!r} is not an SQLite database, so not a persona store; give the store "
                "a new file, e.g. 'persona.db' (persona never overwrites another file)."
            ) from exc
        raise StoreError(
            f"cannot open the store file {path!r}: {exc}. Check that it is a persona store "
            "on a local, writable disk, or give a new file name."
        ) from exc
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def write_transaction(con: sqlite3.Connection, *, timeout: float) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, retrying while another process holds the lock.

    Everything inside either commits whole or rolls back whole, also if the process dies.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            con.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise StoreError(
                    "the store is busy: another process has held its write lock for "
                    f"{timeout:.0f} s. Retry later, or raise Store(..., timeout=...)."
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    else:
        con.execute("COMMIT")


# ---------------------------------------------------------------------- segments
def bucket_of(code: int) -> int:
    """The bucket that holds the events of the person with subject code ``code``."""
    return code >> BUCKET_BITS


def subjects_of(buckets: np.ndarray, counts: np.ndarray, rec: np.ndarray) -> np.ndarray:
    """Subject codes of the records of concatenated segments of ``buckets`` (``counts``
    records each)."""
    base = np.repeat(buckets.astype(np.int64) << BUCKET_BITS, counts)
    return base | rec["member"].astype(np.int64)


def load_segments(rows: list[tuple[int, int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    """Records and their subject codes from ``(bucket, n, data)`` rows."""
    if not rows:
        return np.zeros(0, dtype=EVENT_DTYPE), np.zeros(0, dtype=np.int64)
    buckets = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    counts = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    rec = np.frombuffer(b"".join([r[2] for r in rows]), dtype=EVENT_DTYPE)
    return rec, subjects_of(buckets, counts, rec)


def person_time_order(subj: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``np.lexsort((at, subj))``: the stable order by person, then time.

    Done as one stable sort of a combined integer key (person above, time below) when both
    ranges fit in 63 bits together, as they do for events spanning years: faster than the
    two-key lexsort, and much faster on concatenated sorted runs (a merge of segments),
    which the stable sort detects."""
    if subj.size < 2:
        return np.arange(subj.size)
    s0, a0 = int(subj.min()), int(at.min())
    sbits = (int(subj.max()) - s0).bit_length()
    abits = (int(at.max()) - a0).bit_length()
    if sbits + abits > 63:
        return np.lexsort((at, subj))
    key = ((subj.astype(np.int64) - s0) << abits) | (at.astype(np.int64) - a0)
    return np.argsort(key, kind="stable")


def segment_rows(
    subj: np.ndarray, rec: np.ndarray, levels: dict[int, int] | None = None
) -> list[tuple[int, int, int, bytes]]:
    """``(bucket, level, n, data)`` rows, one per bucket, of records sorted by person then
    time; the level is ``levels[bucket]`` (0 by default).

    Sets each record's ``member`` field from ``subj``; ``rec`` must be writable.
    """
    m = rec.size
    if m == 0:
        return []
    rec["member"] = subj & MEMBER_MASK
    bucket = subj >> BUCKET_BITS
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], m]
    buf = rec.tobytes()
    w = EVENT_DTYPE.itemsize
    get = (levels or {}).get
    return [
        (b, get(b, 0), e - s, buf[s * w : e * w])
        for b, s, e in zip(bucket[starts].tolist(), starts.tolist(), ends.tolist(), strict=True)
    ]


def merge_plan(levels: list[int]) -> int | None:
    """The level below which a bucket's segments are to be merged into one, or None.

    ``levels`` are the levels of the bucket's segments. A batch writes segments of level 0;
    :data:`FANOUT` segments of one level are merged into one of the next level, like the
    digits of a counter in base ``FANOUT`` (the merged segment takes the place of the
    ``FANOUT - 1`` of the next level, and so on up). So each event is rewritten once per
    level, about log_FANOUT(batches) times, and a bucket holds at most ``FANOUT - 1``
    segments per level, and never more than :data:`MAX_SEGMENTS` (beyond that all of its
    segments are merged).
    """
    counts: dict[int, int] = {}
    for lv in levels:
        counts[lv] = counts.get(lv, 0) + 1
    if counts.get(0, 0) >= FANOUT:
        top = 1
        while counts.get(top, 0) + 1 >= FANOUT:
            top += 1
        if 1 + sum(c for lv, c in counts.items() if lv >= top) <= MAX_SEGMENTS:
            return top
    elif len(levels) <= MAX_SEGMENTS:
        return None
    return max(levels) + 1


def statements(script: str) -> Iterator[str]:
    """The complete SQL statements of ``script``, one at a time."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""
    if buf.strip():  # pragma: no cover - DDL is ours
        yield buf.strip()


def create_or_migrate(con: sqlite3.Connection, path: str) -> int | None:
    """Create the tables (inside the caller's write transaction), migrating a store file of
    format 1 (one segment per person) or 2 (budgets without a period) to this format (the
    tables added since, e.g. format 5's curation and model registry, are created empty).
    Returns the number of events migrated from format 1, or None if there were none to
    migrate. Refuses a file of a newer format."""
    legacy = False
    older = False
    if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise StoreError(
                f"{path!r} was written by a newer persona (store format {row[0]}, this one "
                f"reads {SCHEMA_VERSION}); upgrade persona."
            )
        legacy = row is not None and row[0] == "1"
        older = row is not None and int(row[0]) < SCHEMA_VERSION
    if legacy:
        con.execute("ALTER TABLE segments RENAME TO segments_v1")
    had_items = con.execute("SELECT 1 FROM sqlite_master WHERE name = 'items'").fetchone()
    had_catalogue = con.execute("SELECT 1 FROM sqlite_master WHERE name = 'catalogue'").fetchone()
    for stmt in statements(DDL):
        con.execute(stmt)
    if had_items and not had_catalogue:
        # a file from before the declared catalogue: its labelled items were declared then
        con.execute(
            "INSERT INTO catalogue(item_id) SELECT id FROM items WHERE label IS NOT NULL "
            "ORDER BY id"
        )
    columns = {r[1] for r in con.execute("PRAGMA table_info(privacy_budget)")}
    if "period_days" not in columns:  # format 1 or 2: every budget so far is a lifetime total
        con.execute("ALTER TABLE privacy_budget ADD COLUMN period_days INTEGER")
    if older and not legacy:
        con.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
        )
    if not legacy:
        return None
    rows = con.execute("SELECT subject_id, n, data FROM segments_v1").fetchall()
    migrated = 0
    if rows:
        subj = np.repeat(
            np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
            np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows)),
        )
        rec = np.frombuffer(b"".join([r[2] for r in rows]), dtype=EVENT_DTYPE).copy()
        order = person_time_order(subj, rec["at"])
        rec, subj = rec[order], subj[order]
        con.executemany(
            "INSERT INTO segments(bucket, level, n, data) VALUES (?, ?, ?, ?)",
            segment_rows(subj, rec, dict.fromkeys((subj >> BUCKET_BITS).tolist(), 1)),
        )
        migrated = int(rec.size)
    del rows
    con.execute("DROP TABLE segments_v1")  # secure_delete zeroes its pages
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
    return migrated
