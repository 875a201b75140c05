"""The append-only, hash-chained audit log."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict

from persona.errors import AuditError, ValidationError
from persona.schema import check_id

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = ["AuditEntry", "AuditLog", "record"]

GENESIS = "0" * 64


class TableObserver(Protocol):
    """Fed every entry in chain order during :meth:`AuditLog.problems`; then says where the
    tables it checks differ from what the entries recorded."""

    def entry(self, seq: int, action: str, subject: str | None, detail: str) -> None: ...

    def problems(self) -> list[str]: ...


class AuditEntry(BaseModel):
    """One audit-log entry. ``subject`` is a pseudonym, never a person's id."""

    model_config = ConfigDict(frozen=True)

    seq: int
    at: datetime
    action: str
    subject: str | None
    detail: dict[str, Any]
    prev: str
    hash: str


# made once: json.dumps with options builds a new encoder on every call
_DETAIL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
_STR = json.encoder.encode_basestring_ascii  # what json.dumps(ensure_ascii=True) uses
encode_str = _STR  # a str as the JSON of an entry's detail writes it


def _canonical(seq: int, at: str, action: str, subject: str | None, detail: str) -> bytes:
    """``json.dumps([seq, at, action, subject, detail], separators=(",", ":"),
    ensure_ascii=True).encode()``, the bytes every entry's hash covers, written out
    directly (the same bytes; a test checks them against json.dumps)."""
    who = "null" if subject is None else _STR(subject)
    return f"[{int(seq)},{_STR(at)},{_STR(action)},{who},{_STR(detail)}]".encode()


def _chain(prev: str, payload: bytes) -> str:
    return hashlib.sha256(prev.encode() + payload).hexdigest()


class AuditLog:
    """Append-only, hash-chained record of every consent change, ingest batch, scoped read,
    export and erasure.

    Each entry's hash covers the previous entry's hash, so editing, reordering or deleting
    any entry breaks the chain; the head (last sequence number and hash) is also kept apart
    from the entries, so cutting entries off the end is detected as well. For protection
    against someone who can rewrite the whole file, record :meth:`head` somewhere else (a
    ticket, a second system) and pass it to :meth:`verify`.

    :meth:`verify` also checks the tables whose every change the log records: consent
    records and state, the privacy ledger and the budgets must be exactly what the entries
    say (an edit made with the file's SQL triggers dropped is found). This reads each of
    those tables once, streaming, in the same pass as the chain; ``tables=False`` checks
    the chain alone.

    Examples
    --------
    >>> import persona
    >>> store = persona.Store(":memory:")
    >>> store.define_purpose("personalization", description="Suggest products")
    >>> store.audit.verify()
    True
    >>> _ = store.grant("u1", "personalization", source="signup form")
    >>> _ = store._con.execute("UPDATE consent_events SET source = 'forged'")  # in the file
    >>> store.audit.verify(), store.audit.verify(tables=False)
    (False, True)
    >>> [e.action for e in store.audit.entries()][:1]
    ['define_purpose']
    """

    def __init__(
        self,
        con: sqlite3.Connection,
        lock: AbstractContextManager[Any],
        clock: Callable[[], datetime],
        tables: Callable[[], TableObserver] | None = None,
        flush: Callable[[], None] | None = None,
    ) -> None:
        self._con = con
        # writes the entries still waiting in the store's journal (serving reads, group-
        # committed), so every read of the log sees them
        self._flush = flush
        self._lock = lock
        self._clock = clock
        self._tables = tables  # makes the check of the tables the chain vouches for
        # the head as read when the current write transaction began (kept current by each
        # append inside it); None outside one, or when it was not read
        self._tx_head: tuple[int, str] | None = None

    def _pending(self) -> None:
        if self._flush is not None and not self._con.in_transaction:
            self._flush()

    def _begin(self, head: str | None) -> None:
        """The store began a write transaction in which the head row read ``head``."""
        self._tx_head = (0, GENESIS) if head is None else _parse_head(head)

    def _end(self) -> tuple[int, str]:
        """The transaction ended; returns the head it left (its last entry, if any)."""
        head = self._tx_head
        self._tx_head = None
        return (0, GENESIS) if head is None else head

    def append(self, action: str, detail: dict[str, Any], subject: str | None = None) -> int:
        """Append an entry. Must be called inside the store's write transaction."""
        if self._tx_head is not None:
            seq, prev = self._tx_head
        else:
            row = self._con.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchone()
            seq, prev = (0, GENESIS) if row is None else _parse_head(row[0])
        seq += 1
        at = self._clock().isoformat()
        detail_json = _DETAIL.encode(detail)
        digest = _chain(prev, _canonical(seq, at, action, subject, detail_json))
        self._con.execute(
            "INSERT INTO audit(seq, at, action, subject, detail, prev, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, at, action, subject, detail_json, prev, digest),
        )
        # an upsert changes the row in place; REPLACE would delete and re-insert it,
        # rewriting the key's index page too (one more page in every commit)
        self._con.execute(
            "INSERT INTO meta(key, value) VALUES ('audit_head', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (f"{seq}:{digest}",),
        )
        if self._tx_head is not None:
            self._tx_head = (seq, digest)
        return seq

    def append_many(self, entries: list[tuple[str, str, str]]) -> None:
        """Append ``(action, subject, detail JSON)`` entries in order, as :meth:`append`
        does one at a time but with one clock reading and one statement for all of them.
        Every entry names its subject (a pseudonym); the details are JSON already, encoded
        as :meth:`append` encodes (sorted keys, no spaces, ASCII). Must be called inside
        the store's write transaction."""
        if not entries:
            return
        head = self._tx_head
        assert head is not None  # (inside the store's write transaction, as documented)
        seq, prev = head
        at = self._clock().isoformat()
        at_json = _STR(at)
        rows = []
        sha256 = hashlib.sha256
        for action, subject, detail_json in entries:
            seq += 1
            # the bytes of _canonical, the time encoded once for every entry
            payload = f"[{seq},{at_json},{_STR(action)},{_STR(subject)},{_STR(detail_json)}]"
            digest = sha256((prev + payload).encode()).hexdigest()
            rows.append((seq, at, action, subject, detail_json, prev, digest))
            prev = digest
        self._con.executemany(
            "INSERT INTO audit(seq, at, action, subject, detail, prev, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        self._con.execute(
            "INSERT INTO meta(key, value) VALUES ('audit_head', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (f"{seq}:{prev}",),
        )
        self._tx_head = (seq, prev)

    def head(self) -> tuple[int, str]:
        """The last sequence number and its hash: record it elsewhere to anchor the log."""
        self._pending()
        with self._lock:
            row = self._con.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchone()
        return (0, GENESIS) if row is None else _parse_head(row[0])

    def problems(
        self, anchor: tuple[int, str] | None = None, *, tables: bool = True
    ) -> list[str]:
        """Every inconsistency found, in plain words; empty when the log is intact.

        With ``tables`` (the default), the tables whose every change the log records
        (consent events and state, the privacy ledger and budgets) are compared with it
        too, in the same pass; see :mod:`persona.store._rows`.
        """
        self._pending()
        found: list[str] = []
        expected_seq, prev = 1, GENESIS
        anchored = False
        with self._lock, self._snapshot():
            observer = self._tables() if tables and self._tables is not None else None
            head_row = self._con.execute(
                "SELECT value FROM meta WHERE key = 'audit_head'"
            ).fetchone()
            for seq, at, action, subject, detail, stored_prev, stored_hash in self._con.execute(
                "SELECT seq, at, action, subject, detail, prev, hash FROM audit ORDER BY seq"
            ):
                if seq != expected_seq:
                    found.append(f"entry {expected_seq} is missing (next entry is {seq})")
                if stored_prev != prev:
                    found.append(f"entry {seq} does not follow the entry before it")
                digest = _chain(stored_prev, _canonical(seq, at, action, subject, detail))
                if digest != stored_hash:
                    found.append(f"entry {seq} was changed after it was written")
                if anchor is not None and seq == anchor[0]:
                    anchored = stored_hash == anchor[1]
                if observer is not None:
                    observer.entry(seq, action, subject, detail)
                expected_seq, prev = seq + 1, stored_hash
            if observer is not None:
                found.extend(observer.problems())
        last = (expected_seq - 1, prev)
        head = (0, GENESIS) if head_row is None else _parse_head(head_row[0])
        if head != last:
            found.append(
                f"the log ends at entry {last[0]} but its head says {head[0]}: entries were "
                "removed from the end, or the head was altered"
            )
        if anchor is not None and not anchored:
            found.append(f"entry {anchor[0]} does not match the recorded anchor")
        return found

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction, so the chain and the tables are read as of one moment
        (inside the caller's transaction, if there is one)."""
        if self._con.in_transaction:
            yield
            return
        self._con.execute("BEGIN")
        try:
            yield
        finally:
            self._con.execute("COMMIT")  # nothing was written

    def verify(
        self, anchor: tuple[int, str] | None = None, *, tables: bool = True
    ) -> bool:
        """True while the hash chain is intact (and matches ``anchor``, if given) and, with
        ``tables``, the consent, privacy ledger, budget, non-profiling and shared serving
        (curation, model registry) tables match what it recorded."""
        return not self.problems(anchor, tables=tables)

    def check(self, anchor: tuple[int, str] | None = None, *, tables: bool = True) -> None:
        """Raise :class:`~persona.AuditError` listing what is wrong, if anything."""
        found = self.problems(anchor, tables=tables)
        if found:
            raise AuditError(
                "the audit log failed verification: " + "; ".join(found) + ". Restore the "
                "store file from a backup and investigate who had write access to it.",
                problems=found,
            )

    def entries(
        self, *, action: str | None = None, subject: str | None = None, since: int = 0
    ) -> list[AuditEntry]:
        """Entries in order, optionally only one ``action`` or one pseudonymous ``subject``."""
        self._pending()
        return list(self._iter(action=action, subject=subject, since=since))

    def _iter(self, *, action: str | None, subject: str | None, since: int) -> Iterator[AuditEntry]:
        sql = "SELECT seq, at, action, subject, detail, prev, hash FROM audit WHERE seq > ?"
        args: list[Any] = [since]
        if action is not None:
            sql += " AND action = ?"
            args.append(action)
        if subject is not None:
            sql += " AND subject = ?"
            args.append(subject)
        with self._lock:
            rows = self._con.execute(sql + " ORDER BY seq", args).fetchall()
        for seq, at, act, subj, detail, prev, digest in rows:
            yield AuditEntry(
                seq=seq,
                at=datetime.fromisoformat(at),
                action=act,
                subject=subj,
                detail=json.loads(detail),
                prev=prev,
                hash=digest,
            )

    def __len__(self) -> int:
        return self.head()[0]


def _parse_head(value: str) -> tuple[int, str]:
    seq, digest = value.split(":", 1)
    return int(seq), digest


# ------------------------------------------------------------------ application entries
def record(db: Db, action: str, detail: Mapping[str, Any], *, user: str | None = None) -> int:
    """Append an application event (a model fit, a curation change, an explanation shown)
    to the audit log. ``user`` is stored only as their pseudonym. Returns its number."""
    if not isinstance(action, str) or not action.startswith("app.") or len(action) < 5:
        raise ValidationError(
            f"field 'action': {action!r} must start with 'app.', e.g. 'app.curation'",
            errors=[{"row": None, "field": "action", "message": "invalid"}],
        )
    if not isinstance(detail, Mapping):
        raise ValidationError(
            f"field 'detail': give a dict, not a {type(detail).__name__}",
            errors=[{"row": None, "field": "detail", "message": "not a dict"}],
        )
    try:  # as the audit log writes it (sorted keys): keys of one kind at each level
        json.dumps(dict(detail), default=_json_time, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"field 'detail' must be JSON-serialisable: {exc}",
            errors=[{"row": None, "field": "detail", "message": "not JSON"}],
        ) from None
    if user is not None:
        user = check_id(user, "user")
        if _names(detail, user):
            raise ValidationError(
                "field 'detail' contains the person's id, which the append-only audit "
                "log would keep after an erasure; pass the person as user= (stored as a "
                "pseudonym) and keep the id out of detail",
                errors=[{"row": None, "field": "detail", "message": "holds the user id"}],
            )
    with db.lock:
        db.check_open()
        with db.read_transaction():
            return db.audit.append(
                action, dict(detail), subject=None if user is None else db.pseudonym(user)
            )


def _json_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _names(value: Any, user: str) -> bool:
    """Whether ``value`` (JSON-like: mappings, lists, strings) holds ``user`` (in NFC) as a
    string or a key."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value) == user
    if isinstance(value, Mapping):
        return any(_names(k, user) or _names(v, user) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_names(v, user) for v in value)
    return False
