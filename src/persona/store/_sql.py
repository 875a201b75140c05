"""SQLite layout of the store and connection set-up.

Events are stored as *segments*: one row per person per ingest batch, whose ``data`` blob is
a packed array of :data:`EVENT_DTYPE` records (item code, feature code, value, time, event
id). A scoped read fetches a few blobs per person instead of one row per event, which is
what lets it run at millions of events per second; a person's segments are merged when they
grow past :data:`MAX_SEGMENTS`. String ids live once, in ``subjects`` and ``items``, so
erasing a person deletes one row holding their id (``secure_delete`` zeroes it on disk).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from persona.errors import StoreError

SCHEMA_VERSION = 1
MAX_SEGMENTS = 8

EVENT_DTYPE = np.dtype(
    [
        ("item", "<i4"),
        ("feature", "<i2"),
        ("pad", "<i2"),
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
    id INTEGER PRIMARY KEY, subject_id INTEGER NOT NULL, n INTEGER NOT NULL,
    data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS segments_subject ON segments(subject_id);
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
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS shown_explanations (
    seq INTEGER PRIMARY KEY, subject_id INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS shown_explanations_subject ON shown_explanations(subject_id);
CREATE TABLE IF NOT EXISTS privacy_ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, purpose TEXT,
    charge TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS privacy_ledger_no_update BEFORE UPDATE ON privacy_ledger
    BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS privacy_ledger_no_delete BEFORE DELETE ON privacy_ledger
    BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
CREATE TABLE IF NOT EXISTS privacy_budget (
    purpose TEXT PRIMARY KEY, epsilon REAL NOT NULL, delta REAL NOT NULL, at TEXT NOT NULL);
"""


def connect(path: str, *, timeout: float, synchronous: str) -> sqlite3.Connection:
    """Open ``path`` with the pragmas the store relies on."""
    try:
        con = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:  # pragma: no cover - depends on the file system
        raise StoreError(
            f"cannot open the store file {path!r}: {exc}. Check that the folder exists and "
            "is writable."
        ) from exc
    con.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
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
