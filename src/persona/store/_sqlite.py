"""The SQLite database handle (:class:`SqliteDb`): the one implementation of
:class:`~persona.store._db.Db`, and the one place with SQLite's own machinery: opening,
creating and migrating the file (with :mod:`persona.store._sql`), the ``synchronous``
pragma per transaction, ``data_version`` to skip re-reading ``meta``, and checkpoints of
the write-ahead log."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from persona.errors import StoreError, UnknownPurposeError, ValidationError
from persona.schema import FeatureSpec, PurposeSpec, check_id
from persona.store import _keys, _shown
from persona.store._audit import AuditLog
from persona.store._eidindex import EventIdIndex
from persona.store._rows import RowMemo, TableCheck
from persona.store._sql import SCHEMA_VERSION, connect, create_or_migrate, write_transaction

__all__ = ["MAX_TIMEOUT_S", "WAL_TRIM_BYTES", "SqliteDb"]

_TX_META = "SELECT key, value FROM meta WHERE key IN ('generation', 'defs_version', 'audit_head')"
#: A write-ahead log this large after an ingest is checkpointed and truncated (twice the
#: size at which SQLite's own automatic checkpoints start).
WAL_TRIM_BYTES = 8 << 20
MAX_TIMEOUT_S = 86_400.0


class SqliteDb:
    """A store file opened: its connection, lock, transactions, caches and pseudonym key
    (the arguments are :class:`~persona.Store`'s, checked here)."""

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        timeout: float = 30.0,
        durability: Literal["full", "normal"] = "full",
        clock: Callable[[], datetime] | None = None,
        pseudonym_key: bytes | str | None = None,
    ) -> None:
        given_key = _keys.pseudonym_key(pseudonym_key)
        if durability not in ("full", "normal"):
            raise ValidationError(
                f"durability must be 'full' or 'normal', not {durability!r}",
                errors=[{"row": None, "field": "durability", "message": "invalid"}],
            )
        self.path = store_path(path)
        self.timeout = store_timeout(timeout)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.lock = threading.RLock()
        self.con = connect(self.path, timeout=self.timeout, synchronous=durability.upper())
        self.closed = False
        self.sync = durability.upper()
        self.sync_now = self.sync  # the connection's current ``PRAGMA synchronous``
        self.generation = -1
        self.tx_meta: dict[str, str] | None = None  # meta rows read when the transaction began
        self.meta_after: dict[str, str] | None = None  # and as the last one committed them
        self.version_after = -1  # PRAGMA data_version in the last committed transaction
        self.plans: dict[str | None, tuple[Any, ...]] = {}  # see _definitions.feature_plan
        self.subjects: dict[str, int] = {}  # person id -> code, see _subjects.uncached_subjects
        self.subjects_upto = 0  # every subject with a code up to this one is cached
        self.privacy_memo = RowMemo()  # privacy rows this handle has checked already
        # serving reads' audit entries and shown records, group-committed (see _shown)
        self.journal = _shown.ShownJournal(self)
        self.writer: SqliteDb | None = None  # the journal's own connection (flush_background)
        self.audit = AuditLog(
            self.con, self.lock, self.now, lambda: TableCheck(self.con, self.pseudonym),
            flush=self.flush,
        )
        try:
            with self.lock, write_transaction(self.con, timeout=self.timeout):
                migrated = create_or_migrate(self.con, self.path)
            with self.lock, self.transaction():
                meta = dict(self.con.execute("SELECT key, value FROM meta").fetchall())
                if "store_id" not in meta:
                    meta = {
                        "store_id": str(uuid.uuid4()),
                        "schema_version": str(SCHEMA_VERSION),
                        "generation": "0",
                        "defs_version": "0",
                    }
                    if given_key is None:  # kept in the file
                        meta["pseudonym_key"] = secrets.token_hex(32)
                    else:  # held outside: only a fingerprint, to refuse a wrong key
                        meta["pseudonym_key_check"] = _keys.key_check(given_key)
                    self.con.executemany(
                        "INSERT INTO meta(key, value) VALUES (?, ?)", list(meta.items())
                    )
            self.store_id: str = meta["store_id"]
            self.key = _keys.open_key(meta, given_key, self.path)
            self.hmac = hmac.new(self.key, digestmod=hashlib.sha256)  # copied per id
            if migrated is not None:
                with self.lock, self.transaction():
                    self.audit.append(
                        "migrate",
                        {"from_format": 1, "to_format": SCHEMA_VERSION, "events": migrated},
                    )
            self.defs_version = -1
            self.item_ext: list[str] = []
            self.item_code: dict[str, int] = {}
            self.item_last = 0
            self.item_table = np.array([], dtype=object)
            self.eids = EventIdIndex()
            self.purposes: dict[str, tuple[int, PurposeSpec]] = {}
            self.features: dict[str, tuple[int, FeatureSpec]] = {}
            self.refresh()
        except sqlite3.DatabaseError as exc:  # a damaged file, found while opening it
            self.con.close()
            raise StoreError(
                f"cannot open the store file {self.path!r}: {exc}. The file is damaged or not "
                "a persona store; restore it from a backup, or give a new file name."
            ) from exc
        except BaseException:
            self.con.close()
            raise

    def now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise StoreError("the store's clock returned a time without a time zone")
        return now

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[None]:
        """A write transaction in which the id caches are known to be current: an erasure
        by another process between our last look and this transaction clears them.

        Its commit is synced to disk as the store's ``durability`` says, or, when not
        ``durable`` (a read's audit entry), only written (``synchronous = NORMAL``). The
        pragma is changed only when it differs, so runs of reads or writes pay nothing."""
        sync = self.sync if durable else "NORMAL"
        if sync != self.sync_now:
            self.con.execute(f"PRAGMA synchronous = {sync}")
            self.sync_now = sync
        drained: list[Any] = []
        try:
            with write_transaction(self.con, timeout=self.timeout):
                # what every transaction checks: the erasure generation, the definitions'
                # version (for reads) and the audit log's head (for its entry). They are
                # read again only when another connection has committed since this one's
                # last transaction (SQLite's data_version changes then, and only then);
                # this connection's own changes to them are carried over from that one.
                version = self.con.execute("PRAGMA data_version").fetchone()[0]
                meta = self.meta_after if version == self.version_after else None
                self.meta_after = None  # until this transaction has committed
                if meta is None:
                    meta = dict(self.con.execute(_TX_META).fetchall())
                generation = meta.get("generation")
                if generation is not None and int(generation) != self.generation:
                    self.clear_subjects()
                    self.generation = int(generation)
                self.tx_meta = meta
                self.audit._begin(meta.get("audit_head"))
                try:
                    # serving requests waiting to be committed go first, in their order
                    drained = self.journal.write(self)
                    yield
                finally:
                    seq, digest = self.audit._end()
                    self.tx_meta = None
        except BaseException:
            self.journal.requeue(drained)  # not committed: they wait for the next one
            raise
        if "generation" in meta and "defs_version" in meta:  # (not yet when a file is new)
            self.meta_after = {**meta, "audit_head": f"{seq}:{digest}"}
            self.version_after = version
        self.trim_wal()

    @contextmanager
    def large_write(self, rows: int) -> Iterator[None]:
        """A page cache of about 0.5 KiB per row (64 MiB at most) around a large write, so
        that its index pages (people's ids, pseudonyms: random keys) are not written out
        and read back while the transaction runs; the cache is as before afterwards."""
        kib = min(rows // 2, 65536)
        if kib <= 2000:  # SQLite's default cache is 2,000 KiB
            yield
            return
        before = self.con.execute("PRAGMA cache_size").fetchone()[0]
        self.con.execute(f"PRAGMA cache_size = {-kib}")
        try:
            yield
        finally:
            self.con.execute(f"PRAGMA cache_size = {int(before)}")

    @contextmanager
    def read_transaction(self) -> Iterator[None]:
        """A transaction for a read and its audit entry; the entry needs no fsync. The id
        and definition caches are refreshed inside it, so they match what it reads."""
        self.check_open()
        with self.transaction(durable=False):
            self.refresh()
            yield

    def check_open(self) -> None:
        if self.closed:
            raise StoreError("the store is closed; open it again with persona.Store(path)")

    def refresh(self) -> None:
        """Reload caches that another process (or an erasure) may have made stale."""
        self.check_open()
        meta = self.tx_meta
        if meta is None:
            meta = dict(
                self.con.execute(
                    "SELECT key, value FROM meta WHERE key IN ('generation', 'defs_version')"
                ).fetchall()
            )
        generation, defs_version = int(meta["generation"]), int(meta["defs_version"])
        if generation != self.generation:
            self.clear_subjects()
            self.generation = generation
        if defs_version != self.defs_version:
            self.purposes = {
                name: (pid, PurposeSpec.model_validate_json(spec))
                for pid, name, spec in self.con.execute("SELECT id, name, spec FROM purposes")
            }
            self.features = {
                name: (fid, FeatureSpec.model_validate_json(spec))
                for fid, name, spec in self.con.execute("SELECT id, name, spec FROM features")
            }
            self.plans.clear()
            self.defs_version = defs_version

    def bump(self, key: str) -> None:
        self.con.execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = ?",
            (key,),
        )
        meta = self.tx_meta  # as the transaction will leave it, for this handle's next one
        if meta is not None and key in meta:
            meta[key] = str(int(meta[key]) + 1)

    def sync_items(self) -> None:
        rows = self.con.execute(
            "SELECT id, ext FROM items WHERE id > ? ORDER BY id", (self.item_last,)
        ).fetchall()
        for code, ext in rows:
            while len(self.item_ext) <= code:
                self.item_ext.append("")
            self.item_ext[code] = ext
            self.item_code[ext] = code
            self.item_last = code
        if rows or self.item_table.size != len(self.item_ext):
            self.item_table = np.array(self.item_ext, dtype=object)

    def pseudonym(self, user: str) -> str:
        """The pseudonym under which the audit log refers to ``user`` (a keyed hash)."""
        user = check_id(user, "user")
        h = self.hmac.copy()  # the key is absorbed once, not again for every id
        h.update(user.encode())
        return h.hexdigest()[:32]

    def pseudonyms(self, users: list[str]) -> list[str]:
        """:meth:`pseudonym` of each of ``users``, ids already checked."""
        out = []
        key = self.hmac
        for user in users:
            h = key.copy()
            h.update(user.encode())
            out.append(h.hexdigest()[:32])
        return out

    def purpose_id(self, purpose: str) -> int:
        if not isinstance(purpose, str):
            raise ValidationError(
                f"field 'purpose': give a purpose's name (a str), not a "
                f"{type(purpose).__name__}, e.g. 'personalization'",
                errors=[{"row": None, "field": "purpose", "message": "not a str"}],
            )
        entry = self.purposes.get(purpose)
        if entry is None:
            known = ", ".join(sorted(self.purposes)) or "none yet"
            raise UnknownPurposeError(
                f"unknown purpose {purpose!r} (defined: {known}); define it first with "
                f"store.define_purpose({purpose!r}, description=...)",
                purpose=purpose,
            )
        return entry[0]

    def feature_specs(self) -> dict[str, FeatureSpec]:
        """Features by name as the caches hold them (current after a ``_refresh``)."""
        return {name: spec for name, (_, spec) in self.features.items()}

    def clear_subjects(self) -> None:
        """Forget the cached person and item codes (an erasure deletes both kinds of rows,
        and a deleted item's id may be given to a new item)."""
        self.subjects.clear()
        self.subjects_upto = 0
        self.clear_items()

    def clear_items(self) -> None:
        self.item_ext, self.item_code, self.item_last = [], {}, 0
        self.item_table = np.array([], dtype=object)

    def temp_ids(self, name: str, codes: list[int]) -> None:
        self.con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name}(id INTEGER PRIMARY KEY)")
        self.con.execute(f"DELETE FROM temp.{name}")
        self.con.executemany(f"INSERT INTO temp.{name}(id) VALUES (?)", [(c,) for c in codes])

    def trim_wal(self) -> None:
        """After a write transaction that left a large write-ahead log (a bulk ingest, a
        retention pass over many people), move the log into the file and truncate it, so
        that reads find their pages through the memory map again. A large log left behind
        (SQLite's own checkpoints copy it but never shrink it while readers follow it)
        made every serving read 50% slower on Online Retail after loading it (measured
        with ``benchmarks/bench_personalizer.py``). Best effort: when another connection
        holds an older snapshot the log is left for SQLite's own checkpoints, without
        waiting for it. Costs one ``stat`` of the log per transaction otherwise."""
        if self.path == ":memory:" or self.con.in_transaction:
            return
        try:
            size = os.path.getsize(f"{self.path}-wal")
        except OSError:
            return
        if size < WAL_TRIM_BYTES:
            return
        waits = self.con.execute("PRAGMA busy_timeout").fetchone()[0]
        self.con.execute("PRAGMA busy_timeout = 0")
        try:
            self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError:  # pragma: no cover - busy: left for later
            pass
        finally:
            self.con.execute(f"PRAGMA busy_timeout = {int(waits)}")

    def checkpoint(self) -> None:
        """Move the write-ahead log into the file and truncate it, so no old page survives."""
        if self.path == ":memory:":
            return
        busy, _, _ = self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise StoreError(
                "the erasure is committed, but another connection is still reading an older "
                "snapshot, so the write-ahead log could not be emptied yet; close other "
                "readers and call store.erase(...) again to finish scrubbing the file"
            )

    def flush(self) -> None:
        """Commit now the audit entries of serving reads and the shown records that wait
        in this handle's journal (they are group-committed within 0.05 s anyway, and
        before anything reads them back; see :meth:`shown`)."""
        journal = self.journal
        if not len(journal) and not journal.writing.locked():
            return
        with self.lock:
            self.check_open()
            if self.con.in_transaction:  # (the transaction under way drains the journal)
                return
            # a batch the background writer has taken is committed before this returns
            with journal.writing:
                if len(journal):
                    with self.transaction(durable=False):
                        pass

    def flush_background(self) -> None:
        """:meth:`flush` as the journal's background writer does it: on a connection of
        the writer's own (opened at its first flush), so that this handle's lock is not
        held while SQLite's write lock is awaited: while another process writes, this
        process's serving reads go on. The batch is taken inside the write transaction,
        as every write transaction of this handle takes it, so batches are committed in
        the order they were queued. An in-memory store has one connection: :meth:`flush`."""
        if not len(self.journal):
            return
        writer = self.writer
        if writer is None:
            if self.closed or self.path == ":memory:":
                self.flush()  # (a closed store: StoreError, the batch kept waiting)
                return
            # opened outside this handle's lock: opening writes (it checks the file's
            # format in a write transaction), so it may wait for another process too
            writer = SqliteDb(
                self.path, timeout=self.timeout,
                durability="full" if self.sync == "FULL" else "normal",
                clock=self.clock, pseudonym_key=self.key,
            )
            with self.lock:
                if self.writer is None and not self.closed:
                    self.writer = writer
                else:  # (closed meanwhile)
                    writer.close()
                    writer = self.writer
            if writer is None:
                return
        drained: list[Any] = []
        with self.journal.writing, writer.lock:
            writer.check_open()  # (closed with this handle: StoreError, the batch kept)
            try:
                with writer.transaction(durable=False):
                    drained = self.journal.write(writer)
            except BaseException:
                self.journal.requeue(drained)
                raise

    def close(self) -> None:
        """Commit what waits in the journal (:meth:`flush`), then close the file. The store
        cannot be used afterwards."""
        with self.lock:
            if not self.closed:
                try:
                    self.flush()
                finally:
                    self.journal.stop()
                    self.con.close()
                    self.closed = True
                    if self.writer is not None:
                        self.writer.close()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction in which the id and definition caches are current (the read
        counterpart of :meth:`transaction`: an erasure by another process clears them);
        nothing is written and nothing is synced."""
        self.check_open()
        con = self.con
        con.execute("BEGIN")
        try:
            version = con.execute("PRAGMA data_version").fetchone()[0]
            meta = self.meta_after if version == self.version_after else None
            if meta is None:
                meta = dict(con.execute(_TX_META).fetchall())
            self.tx_meta = dict(meta)
            self.refresh()
            yield
        finally:
            self.tx_meta = None
            con.execute("COMMIT")  # nothing was written


def store_path(path: Any) -> str:
    """The store's path as a ``str``; a :class:`~persona.StoreError` for anything else."""
    try:
        value = os.fspath(path)
    except TypeError:
        value = None
    if not isinstance(value, str):
        raise StoreError(
            f"the store path must be a str or a pathlib.Path, not {type(path).__name__}; "
            "e.g. persona.Store('persona.db'), or persona.Store(':memory:')"
        )
    return value


def store_timeout(timeout: Any) -> float:
    """``timeout`` as seconds: a finite number from 0 to a day, else a StoreError."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 <= timeout <= MAX_TIMEOUT_S  # also refuses NaN
    ):
        raise StoreError(
            f"timeout must be a number of seconds from 0 to {MAX_TIMEOUT_S:g} (how long to "
            f"wait for another process's write lock), not {timeout!r}; e.g. timeout=30"
        )
    return float(timeout)
