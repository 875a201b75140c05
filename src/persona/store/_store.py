"""The consent-scoped feature store on SQLite."""

from __future__ import annotations

import bisect
import hashlib
import hmac
import json
import operator
import os
import secrets
import sqlite3
import struct
import sys
import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from itertools import compress, repeat
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import ValidationError as PydanticValidationError

from persona._columns import EventColumns
from persona._gc import no_gc_pauses
from persona._times import check_unit, check_zone
from persona.errors import (
    AuditError,
    PersonaError,
    StoreError,
    SuppressedSubjectError,
    UnknownPurposeError,
    ValidationError,
)
from persona.schema import (
    BudgetLedger,
    ConsentAction,
    ConsentRecord,
    ConsentSnapshot,
    EraseReport,
    FeatureNotUsed,
    FeatureSpec,
    FeatureUse,
    FeatureUsed,
    FeedbackKind,
    FeedbackRecord,
    IngestReport,
    Lineage,
    PersonLineage,
    PrivacyBudgetPolicy,
    PrivacyCharge,
    PurposeSpec,
    check_id,
)
from persona.store import _ledger, _profiling, _serving, _shown
from persona.store._audit import AuditLog
from persona.store._catalogue import catalogue_items, declare_items
from persona.store._eidindex import EventIdIndex
from persona.store._ingest_rules import (
    check_dedupe,
    count_by_feature,
    held_outside_retention,
    number_copies,
    outside_retention,
    warn_outside_retention,
)
from persona.store._ledger import StoreChargeStorage
from persona.store._rows import RowMemo, TableCheck, privacy_row_problems
from persona.store._serving import Served
from persona.store._sql import (
    BUCKET_BITS,
    EVENT_DTYPE,
    FANOUT,
    MAX_SEGMENTS,
    MEMBER_MASK,
    SCHEMA_VERSION,
    bucket_of,
    connect,
    create_or_migrate,
    load_segments,
    merge_plan,
    person_time_order,
    segment_rows,
    write_transaction,
)
from persona.store._suppression import refuse_if_erased
from persona.store._validate import FIX, event_ids, raise_for, validate_batch

if TYPE_CHECKING:
    from persona.store._view import ScopedView

__all__ = ["Store", "StoreChargeStorage"]

_INT64_MAX = np.iinfo(np.int64).max
_TX_META = "SELECT key, value FROM meta WHERE key IN ('generation', 'defs_version', 'audit_head')"
_US = 1_000_000
_DAY_US = 86_400 * _US
EXPORT_FORMAT_VERSION = 1
#: A write-ahead log this large after an ingest is checkpointed and truncated (twice the
#: size at which SQLite's own automatic checkpoints start).
WAL_TRIM_BYTES = 8 << 20
_REASON = {"withdraw": "withdrawn", "decline": "declined"}
_MEMBER_AT = EVENT_DTYPE.fields["member"][1] // 2  # in int16 units
_RECORD_SHORTS = EVENT_DTYPE.itemsize // 2
_LITTLE = sys.byteorder == "little"
_RECORD = struct.Struct("<ihhdqQ")  # EVENT_DTYPE's fields, as tuples
_RecordTuple = tuple[int, int, int, float, int, int]  # item, feature, member, value, at, eid
_AT = operator.itemgetter(4)  # a record tuple's time
# one person's reads decode up to this many records as Python tuples, more with numpy (the
# two cost the same at about 40 records, measured in a loop *(one-off)*)
_FEW_RECORDS = 48
_CONSENT_COLUMNS = "purpose_id, action, at, recorded_at, source, notice_version, signal"
_CONSENT_COLUMNS_CE = ", ".join(f"ce.{c.strip()}" for c in _CONSENT_COLUMNS.split(","))


_KEY_CHECK_LABEL = b"persona pseudonym key check, v1"
_KEY_FIELD = [{"row": None, "field": "pseudonym_key", "message": "invalid"}]


def _pseudonym_key(value: object) -> bytes | None:
    """``Store(pseudonym_key=...)`` as bytes: 32 bytes or more, or their hex string."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        key = bytes(value)
    elif isinstance(value, str):
        try:
            key = bytes.fromhex(value)
        except ValueError:
            raise ValidationError(
                "pseudonym_key given as a str must be hex digits (e.g. secrets.token_hex(32)); "
                "pass bytes or a hex string of 32 bytes or more",
                errors=_KEY_FIELD,
            ) from None
    else:
        raise ValidationError(
            f"pseudonym_key must be bytes or a hex str, not {type(value).__name__}; "
            "make one with secrets.token_bytes(32) and keep it outside the store file",
            errors=_KEY_FIELD,
        )
    if len(key) < 32:
        raise ValidationError(
            f"pseudonym_key has {len(key)} bytes; give 32 bytes or more "
            "(secrets.token_bytes(32))",
            errors=_KEY_FIELD,
        )
    return key


def _key_check(key: bytes) -> str:
    """What the file keeps of a key held outside it: a keyed hash of a fixed label, which
    tells a wrong key from the right one and reveals nothing of either."""
    return hmac.new(key, _KEY_CHECK_LABEL, hashlib.sha256).hexdigest()


def _open_key(meta: Mapping[str, str], given: bytes | None, path: str) -> bytes:
    """The pseudonym key of a store: from the file, or the one given, checked."""
    stored = meta.get("pseudonym_key")
    if stored is not None:
        key = bytes.fromhex(stored)
        if given is not None and not hmac.compare_digest(given, key):
            raise StoreError(
                f"the pseudonym_key given does not match the key kept in the store file "
                f"{path!r}; open it without pseudonym_key (its key is in the file)"
            )
        return key
    check = meta.get("pseudonym_key_check")
    if check is None:
        raise StoreError(
            f"the store file {path!r} has no pseudonym key and no key fingerprint: it is "
            "damaged; restore it from a backup"
        )
    if given is None:
        raise StoreError(
            f"the store file {path!r} keeps its pseudonym key outside the file; pass it as "
            "persona.Store(path, pseudonym_key=...)"
        )
    if not hmac.compare_digest(_key_check(given), check):
        raise StoreError(
            f"the pseudonym_key given does not match the one the store file {path!r} was "
            "created with; pass the key it was created with"
        )
    return given


def _to_us(dt: datetime) -> int:
    return round(dt.timestamp() * _US)


def _from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / _US, tz=UTC)


_CHOICE_FIELDS = frozenset({"user", "purpose", "action", "source", "at", "notice_version"})


class Store:
    """A consent-scoped feature store in one SQLite file.

    Every feature is tagged with the purposes it may serve. A read for a purpose
    (:meth:`scope`) sees only people whose consent to that purpose is active at read time,
    only the features allowed for it, and only events inside each feature's retention window.
    Withdrawal and erasure take effect at the next read. Every consent change, ingest batch,
    scoped read, export and erasure is written to a hash-chained audit log (:attr:`audit`).

    Parameters
    ----------
    path:
        The store file, created if absent (``":memory:"`` for a throw-away store).
        Several processes may open the same file at once. A path that cannot hold a
        store (empty, a folder, a missing folder, a device, a read-only file), a file that
        is not SQLite, or an SQLite database that is not a persona store (another
        application's tables) is refused with a ``StoreError`` before anything is written.
    timeout:
        Seconds (0 to 86400) to wait for another process's write lock before raising
        ``StoreError``.
    durability:
        ``"full"`` (default) syncs every change (events, consent, erasure, definitions)
        to disk; ``"normal"`` survives a crash of the process but may lose the last
        changes on power loss. The audit entries that record *reads* are always written
        without a sync: a power loss (not a process crash) may drop the last of them.
        Those of a Personalizer's serving reads, with the records of what it showed, are
        group-committed (:meth:`flush`): a crash of the process may drop the last 0.05 s
        of them.
    clock:
        Returns the current time (timezone-aware). For tests; defaults to the system clock.
    pseudonym_key:
        The key of the pseudonyms under which the audit log names people (32 bytes or
        more, or their hex string). Without it a new store makes one and keeps it in the
        file, so anyone holding the file and a person's id can find the pseudonymous audit
        entries about them, also after an erasure. Given when a store is created, the key
        is held outside: the file keeps only a fingerprint of it, and every later opening
        must pass the same key (a missing or wrong key is a ``StoreError``). Keys cannot
        be rotated yet: the hash chain covers the pseudonyms.

    Examples
    --------
    >>> import persona
    >>> store = persona.Store(":memory:")
    >>> store.define_purpose("personalization", description="Recommend products from what you buy")
    >>> store.define_feature("purchases", purposes=["personalization"],
    ...                      category="purchase history", retention_days=730)
    >>> _ = store.grant("u1", "personalization", source="signup form v3")
    >>> store.ingest([{"user": "u1", "item": "sku-9", "feature": "purchases",
    ...                "value": 2.0, "at": "2026-11-01T10:00:00Z"}]).inserted
    1
    >>> len(store.scope("personalization").events())
    1
    >>> _ = store.withdraw("u1", "personalization")
    >>> len(store.scope("personalization").events())
    0
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        timeout: float = 30.0,
        durability: Literal["full", "normal"] = "full",
        clock: Callable[[], datetime] | None = None,
        pseudonym_key: bytes | str | None = None,
    ) -> None:
        given_key = _pseudonym_key(pseudonym_key)
        if durability not in ("full", "normal"):
            raise ValidationError(
                f"durability must be 'full' or 'normal', not {durability!r}",
                errors=[{"row": None, "field": "durability", "message": "invalid"}],
            )
        self.path = _store_path(path)
        self._timeout = _store_timeout(timeout)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._con = connect(self.path, timeout=self._timeout, synchronous=durability.upper())
        self._closed = False
        self._sync = durability.upper()
        self._sync_now = self._sync  # the connection's current ``PRAGMA synchronous``
        self._generation = -1
        self._tx_meta: dict[str, str] | None = None  # meta rows read when the transaction began
        self._meta_after: dict[str, str] | None = None  # and as the last one committed them
        self._version_after = -1  # PRAGMA data_version in the last committed transaction
        self._plans: dict[str | None, tuple[Any, ...]] = {}  # see _feature_plan
        self._subjects: dict[str, int] = {}  # person id -> code, see _uncached_subjects
        self._subjects_upto = 0  # every subject with a code up to this one is cached
        self._privacy_memo = RowMemo()  # privacy rows this handle has checked already
        # serving reads' audit entries and shown records, group-committed (see _shown)
        self._journal = _shown.ShownJournal(self)
        self.audit = AuditLog(
            self._con, self._lock, self._now, lambda: TableCheck(self._con, self.pseudonym),
            flush=self.flush,
        )
        try:
            with self._lock, write_transaction(self._con, timeout=self._timeout):
                migrated = create_or_migrate(self._con, self.path)
            with self._lock, self._tx():
                meta = dict(self._con.execute("SELECT key, value FROM meta").fetchall())
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
                        meta["pseudonym_key_check"] = _key_check(given_key)
                    self._con.executemany(
                        "INSERT INTO meta(key, value) VALUES (?, ?)", list(meta.items())
                    )
            self.store_id: str = meta["store_id"]
            self._key = _open_key(meta, given_key, self.path)
            self._hmac = hmac.new(self._key, digestmod=hashlib.sha256)  # copied per id
            if migrated is not None:
                with self._lock, self._tx():
                    self.audit.append(
                        "migrate",
                        {"from_format": 1, "to_format": SCHEMA_VERSION, "events": migrated},
                    )
            self._defs_version = -1
            self._item_ext: list[str] = []
            self._item_code: dict[str, int] = {}
            self._item_last = 0
            self._item_table = np.array([], dtype=object)
            self._eids = EventIdIndex()
            self._purposes: dict[str, tuple[int, PurposeSpec]] = {}
            self._features: dict[str, tuple[int, FeatureSpec]] = {}
            self._refresh()
        except sqlite3.DatabaseError as exc:  # a damaged file, found while opening it
            self._con.close()
            raise StoreError(
                f"cannot open the store file {self.path!r}: {exc}. The file is damaged or not "
                "a persona store; restore it from a backup, or give a new file name."
            ) from exc
        except BaseException:
            self._con.close()
            raise

    # ------------------------------------------------------------------ plumbing
    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise StoreError("the store's clock returned a time without a time zone")
        return now

    @contextmanager
    def _tx(self, *, durable: bool = True) -> Iterator[None]:
        """A write transaction in which the id caches are known to be current: an erasure
        by another process between our last look and this transaction clears them.

        Its commit is synced to disk as the store's ``durability`` says, or, when not
        ``durable`` (a read's audit entry), only written (``synchronous = NORMAL``). The
        pragma is changed only when it differs, so runs of reads or writes pay nothing."""
        sync = self._sync if durable else "NORMAL"
        if sync != self._sync_now:
            self._con.execute(f"PRAGMA synchronous = {sync}")
            self._sync_now = sync
        drained: list[Any] = []
        try:
            with write_transaction(self._con, timeout=self._timeout):
                # what every transaction checks: the erasure generation, the definitions'
                # version (for reads) and the audit log's head (for its entry). They are
                # read again only when another connection has committed since this one's
                # last transaction (SQLite's data_version changes then, and only then);
                # this connection's own changes to them are carried over from that one.
                version = self._con.execute("PRAGMA data_version").fetchone()[0]
                meta = self._meta_after if version == self._version_after else None
                self._meta_after = None  # until this transaction has committed
                if meta is None:
                    meta = dict(self._con.execute(_TX_META).fetchall())
                generation = meta.get("generation")
                if generation is not None and int(generation) != self._generation:
                    self._clear_subjects()
                    self._generation = int(generation)
                self._tx_meta = meta
                self.audit._begin(meta.get("audit_head"))
                try:
                    # serving requests waiting to be committed go first, in their order
                    drained = self._journal.write(self)
                    yield
                finally:
                    seq, digest = self.audit._end()
                    self._tx_meta = None
        except BaseException:
            self._journal.requeue(drained)  # not committed: they wait for the next one
            raise
        if "generation" in meta and "defs_version" in meta:  # (not yet when a file is new)
            self._meta_after = {**meta, "audit_head": f"{seq}:{digest}"}
            self._version_after = version
        self._trim_wal()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed; open it again with persona.Store(path)")

    def _refresh(self) -> None:
        """Reload caches that another process (or an erasure) may have made stale."""
        self._check_open()
        meta = self._tx_meta
        if meta is None:
            meta = dict(
                self._con.execute(
                    "SELECT key, value FROM meta WHERE key IN ('generation', 'defs_version')"
                ).fetchall()
            )
        generation, defs_version = int(meta["generation"]), int(meta["defs_version"])
        if generation != self._generation:
            self._clear_subjects()
            self._generation = generation
        if defs_version != self._defs_version:
            self._purposes = {
                name: (pid, PurposeSpec.model_validate_json(spec))
                for pid, name, spec in self._con.execute("SELECT id, name, spec FROM purposes")
            }
            self._features = {
                name: (fid, FeatureSpec.model_validate_json(spec))
                for fid, name, spec in self._con.execute("SELECT id, name, spec FROM features")
            }
            self._plans.clear()
            self._defs_version = defs_version

    def _bump(self, key: str) -> None:
        self._con.execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = ?",
            (key,),
        )
        meta = self._tx_meta  # as the transaction will leave it, for this handle's next one
        if meta is not None and key in meta:
            meta[key] = str(int(meta[key]) + 1)

    def _sync_items(self) -> None:
        rows = self._con.execute(
            "SELECT id, ext FROM items WHERE id > ? ORDER BY id", (self._item_last,)
        ).fetchall()
        for code, ext in rows:
            while len(self._item_ext) <= code:
                self._item_ext.append("")
            self._item_ext[code] = ext
            self._item_code[ext] = code
            self._item_last = code
        if rows or self._item_table.size != len(self._item_ext):
            self._item_table = np.array(self._item_ext, dtype=object)

    def pseudonym(self, user: str) -> str:
        """The pseudonym under which the audit log refers to ``user`` (a keyed hash)."""
        user = _check_id(user, "user")
        h = self._hmac.copy()  # the key is absorbed once, not again for every id
        h.update(user.encode())
        return h.hexdigest()[:32]

    def close(self) -> None:
        """Commit what waits in the journal (:meth:`flush`), then close the file. The store
        cannot be used afterwards."""
        with self._lock:
            if not self._closed:
                try:
                    self.flush()
                finally:
                    self._journal.stop()
                    self._con.close()
                    self._closed = True

    def flush(self) -> None:
        """Commit now the audit entries of serving reads and the shown records that wait
        in this handle's journal (they are group-committed within 0.05 s anyway, and
        before anything reads them back; see :meth:`shown`)."""
        if not len(self._journal):
            return
        with self._lock:
            self._check_open()
            if not self._con.in_transaction:
                with self._tx(durable=False):
                    pass

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    # ------------------------------------------------------------------ definitions
    @property
    def purposes(self) -> dict[str, PurposeSpec]:
        """Defined purposes by name."""
        with self._lock:
            self._refresh()
            return {name: spec for name, (_, spec) in self._purposes.items()}

    @property
    def features(self) -> dict[str, FeatureSpec]:
        """Defined features by name."""
        with self._lock:
            self._refresh()
            return self._feature_specs()

    def _feature_specs(self) -> dict[str, FeatureSpec]:
        """Features by name as the caches hold them (current after a ``_refresh``)."""
        return {name: spec for name, (_, spec) in self._features.items()}

    def define_purpose(
        self,
        name: str,
        *,
        description: str,
        sharing: bool = False,
        tcf_purposes: Iterable[int] = (),
        consent_mode: Iterable[str] = (),
    ) -> None:
        """Define (or update) a purpose people can consent to.

        ``sharing=True`` marks purposes that sell or share data; a "do not sell or share" /
        Global Privacy Control signal (:meth:`do_not_sell`) withdraws all of them.
        ``tcf_purposes`` and ``consent_mode`` map the purpose to IAB TCF v2.2 purpose ids and
        Google Consent Mode signals (see :meth:`apply_tcf`, :meth:`apply_consent_mode`).
        """
        spec = _validated(
            PurposeSpec,
            name=name,
            description=description,
            sharing=sharing,
            tcf_purposes=_as_tuple(tcf_purposes, "tcf_purposes", "[1, 3]"),
            consent_mode=_as_tuple(consent_mode, "consent_mode", "['ad_user_data']"),
        )
        self._define("purposes", "purpose", spec)

    def define_feature(
        self,
        name: str,
        *,
        purposes: Iterable[str],
        category: str,
        retention_days: int | None,
        description: str = "",
        max_value: float | None = None,
    ) -> None:
        """Define (or update) a feature and the purposes it may serve.

        ``retention_days`` must be given: events older than that are invisible to every
        read (``None`` keeps them until the person is erased). ``max_value`` bounds the
        feature's event values at ingest (every value must be from 0 to it; ``None``: the
        store-wide bound, 1e9).
        """
        if isinstance(purposes, str | bytes) or not isinstance(purposes, Iterable):
            raise ValidationError(
                f"field 'purposes': give a list of purpose names, not a "
                f"{type(purposes).__name__}; e.g. purposes=['personalization']",
                errors=[{"row": None, "field": "purposes", "message": "not a list"}],
            )
        spec = _validated(
            FeatureSpec,
            name=name,
            purposes=tuple(purposes),
            category=category,
            retention_days=retention_days,
            description=description,
            max_value=max_value,
        )
        with self._lock:
            self._refresh()
            for p in spec.purposes:
                self._purpose_id(p)
            self._define("features", "feature", spec)

    def _define(self, table: str, kind: str, spec: PurposeSpec | FeatureSpec) -> None:
        with self._lock:
            self._check_open()
            with self._tx():
                row = self._con.execute(
                    f"SELECT spec FROM {table} WHERE name = ?", (spec.name,)
                ).fetchone()
                if row is not None:
                    old = type(spec).model_validate_json(row[0])
                    if old.model_copy(update={"created_at": None}) == spec:
                        return
                    spec = spec.model_copy(update={"created_at": old.created_at})
                    self._con.execute(
                        f"UPDATE {table} SET spec = ? WHERE name = ?",
                        (spec.model_dump_json(), spec.name),
                    )
                    action = f"redefine_{kind}"
                else:
                    spec = spec.model_copy(update={"created_at": self._now()})
                    self._con.execute(
                        f"INSERT INTO {table}(name, spec) VALUES (?, ?)",
                        (spec.name, spec.model_dump_json()),
                    )
                    action = f"define_{kind}"
                self._bump("defs_version")
                self.audit.append(action, spec.model_dump(mode="json"))
            self._refresh()

    def _purpose_id(self, purpose: str) -> int:
        if not isinstance(purpose, str):
            raise ValidationError(
                f"field 'purpose': give a purpose's name (a str), not a "
                f"{type(purpose).__name__}, e.g. 'personalization'",
                errors=[{"row": None, "field": "purpose", "message": "not a str"}],
            )
        entry = self._purposes.get(purpose)
        if entry is None:
            known = ", ".join(sorted(self._purposes)) or "none yet"
            raise UnknownPurposeError(
                f"unknown purpose {purpose!r} (defined: {known}); define it first with "
                f"store.define_purpose({purpose!r}, description=...)",
                purpose=purpose,
            )
        return entry[0]

    # ------------------------------------------------------------------ consent
    def grant(
        self,
        user: str,
        purpose: str,
        *,
        source: str,
        notice_version: str | None = None,
        at: datetime | str | None = None,
    ) -> ConsentRecord:
        """Record that ``user`` consented to ``purpose``.

        ``source`` says where (a form, a banner, an API); ``notice_version`` which privacy
        notice they saw; ``at`` when they chose (defaults to now; never in the future).
        A grant lifts the suppression left by an earlier erasure.
        """
        return self._consent(user, purpose, "grant", source, notice_version, at)

    def withdraw(
        self,
        user: str,
        purpose: str,
        *,
        source: str = "api",
        notice_version: str | None = None,
        at: datetime | str | None = None,
    ) -> ConsentRecord:
        """Record that ``user`` withdrew consent to ``purpose``. Effective at the next read."""
        return self._consent(user, purpose, "withdraw", source, notice_version, at)

    def decline(
        self,
        user: str,
        purpose: str,
        *,
        source: str,
        notice_version: str | None = None,
        at: datetime | str | None = None,
    ) -> ConsentRecord:
        """Record that ``user`` was asked and said no (distinct from withdrawing later)."""
        return self._consent(user, purpose, "decline", source, notice_version, at)

    def do_not_sell(
        self, user: str, *, source: str = "Global Privacy Control"
    ) -> list[ConsentRecord]:
        """Apply a "do not sell or share" / Global Privacy Control signal: withdraw every
        purpose defined with ``sharing=True``. Returns the records written."""
        with self._lock:
            self._refresh()
            names = [n for n, (_, spec) in self._purposes.items() if spec.sharing]
            return self._consent_many(user, [(n, "withdraw") for n in names], source, None, "gpc")

    def apply_tcf(
        self,
        user: str,
        purposes: Iterable[int],
        *,
        source: str = "IAB TCF v2.2 consent string",
        notice_version: str | None = None,
    ) -> list[ConsentRecord]:
        """Apply the purposes a TCF v2.2 consent string allows (``purposes``: TCF purpose ids).

        Each persona purpose mapped with ``tcf_purposes`` is granted when all its ids are
        allowed and withdrawn otherwise; only changes of state are recorded.
        """
        ids = _as_tuple(purposes, "purposes", "[1, 3, 4]")
        if any(isinstance(p, bool) or not isinstance(p, int) for p in ids):
            raise ValidationError(
                "field 'purposes': give TCF purpose ids as ints, e.g. [1, 3, 4]",
                errors=[{"row": None, "field": "purposes", "message": "not an int"}],
            )
        allowed = set(ids)
        with self._lock:
            self._refresh()
            plan = [
                (name, "grant" if set(spec.tcf_purposes) <= allowed else "withdraw")
                for name, (_, spec) in self._purposes.items()
                if spec.tcf_purposes
            ]
            return self._consent_many(user, plan, source, notice_version, "tcf", only_changes=True)

    def apply_consent_mode(
        self,
        user: str,
        signals: Mapping[str, str],
        *,
        source: str = "Google Consent Mode",
    ) -> list[ConsentRecord]:
        """Apply Google Consent Mode v2 signals (``{"ad_personalization": "denied", ...}``).

        A persona purpose mapped with ``consent_mode`` is granted when all its signals are
        ``"granted"`` and withdrawn when any is ``"denied"``; missing signals leave it as is.
        """
        if not isinstance(signals, Mapping):
            raise ValidationError(
                f"field 'signals': give a dict such as {{'ad_user_data': 'granted'}}, not a "
                f"{type(signals).__name__}",
                errors=[{"row": None, "field": "signals", "message": "not a dict"}],
            )
        for key, value in signals.items():
            if value not in ("granted", "denied"):
                raise ValidationError(
                    f"consent mode signal {key!r} must be 'granted' or 'denied', not {value!r}",
                    errors=[{"row": None, "field": key, "message": "invalid value"}],
                )
        with self._lock:
            self._refresh()
            plan = []
            for name, (_, spec) in self._purposes.items():
                if not spec.consent_mode:
                    continue
                states = [signals.get(s) for s in spec.consent_mode]
                if "denied" in states:
                    plan.append((name, "withdraw"))
                elif all(s == "granted" for s in states):
                    plan.append((name, "grant"))
            return self._consent_many(user, plan, source, None, "consent_mode", only_changes=True)

    def record_consents(self, choices: Iterable[Mapping[str, Any]]) -> list[ConsentRecord]:
        """Record many people's consent choices at once, all or none (e.g. a consent
        platform's export).

        Each choice is a mapping with ``user``, ``purpose``, ``action`` (``"grant"``,
        ``"withdraw"`` or ``"decline"``) and ``source``, and optionally ``at`` and
        ``notice_version``, as the arguments of :meth:`grant`. Every choice is checked
        first; one bad choice raises :class:`~persona.ValidationError` whose ``errors``
        name its index (``row``, from 0) and field, and nothing is recorded. Then all are
        written in one transaction, in the order given. Returns the records written.

        >>> import persona
        >>> store = persona.Store(":memory:")
        >>> store.define_purpose("marketing", description="Send offers")
        >>> records = store.record_consents([
        ...     {"user": "u1", "purpose": "marketing", "action": "grant", "source": "CMP"},
        ...     {"user": "u2", "purpose": "marketing", "action": "decline", "source": "CMP",
        ...      "at": "2026-01-05T10:00:00Z"}])
        >>> [r.action for r in records], store.has_consent("u1", "marketing")
        (['grant', 'decline'], True)
        """
        rows = _as_tuple(choices, "choices", "[{'user': 'u1', 'purpose': 'marketing', ...}]")
        with self._lock:
            self._refresh()
            now = self._now()
            plan = []
            for k, choice in enumerate(rows):
                try:
                    plan.append(self._checked_choice(choice, now))
                except PersonaError as exc:  # (an unknown purpose names no field)
                    field = (getattr(exc, "errors", None) or [{"field": "purpose"}])[0]["field"]
                    raise ValidationError(
                        f"the {len(rows)} consent choice(s) were rejected and nothing was "
                        f"recorded: choice {k} (from 0): {exc}",
                        errors=[{"row": k, "field": field, "message": str(exc)}],
                    ) from None
            with self._tx():
                return [
                    record
                    for user, pids, source, version, when in plan
                    for record in self._consent_write(
                        user, pids, source, version, None, when, now, False
                    )
                ]

    def _checked_choice(self, choice: Any, now: datetime) -> tuple[Any, ...]:
        """One choice of :meth:`record_consents`, checked, as the arguments of its write;
        a bad one raises an error whose first ``errors`` entry names the field."""

        def refuse(field: str, message: str) -> ValidationError:
            return ValidationError(message, errors=[{"field": field}])

        if not isinstance(choice, Mapping):
            raise refuse("choice", f"give a mapping, not a {type(choice).__name__}")
        extra = sorted(map(str, set(choice) - _CHOICE_FIELDS))
        if extra:
            raise refuse(extra[0], f"unknown field(s) {extra}; a choice has "
                                   f"{sorted(_CHOICE_FIELDS)}")
        action = choice.get("action")
        if action not in ("grant", "withdraw", "decline"):
            raise refuse("action", f"field 'action': {action!r} is not 'grant', 'withdraw' "
                                   "or 'decline'")
        purpose = choice.get("purpose")
        if not isinstance(purpose, str):
            raise refuse("purpose", f"field 'purpose': give a purpose's name (a str), not "
                                    f"{purpose!r}")
        version = choice.get("notice_version")
        user, when = self._consent_checked(
            choice.get("user"), choice.get("source"), version, choice.get("at"), now)
        pid = self._purpose_id(purpose)
        return user, [(pid, purpose, action)], choice["source"], version, when

    def _consent(
        self,
        user: str,
        purpose: str,
        action: ConsentAction,
        source: str,
        notice_version: str | None,
        at: datetime | str | None,
    ) -> ConsentRecord:
        """One person's choice made through the API (no machine signal behind it)."""
        with self._lock:
            self._refresh()
            return self._consent_many(
                user, [(purpose, action)], source, notice_version, None, at=at
            )[0]

    def _consent_many(
        self,
        user: str,
        plan: list[tuple[str, ConsentAction]],
        source: str,
        notice_version: str | None,
        signal: str | None,
        *,
        at: datetime | str | None = None,
        only_changes: bool = False,
    ) -> list[ConsentRecord]:
        now = self._now()
        user, when = self._consent_checked(user, source, notice_version, at, now)
        pids = [(self._purpose_id(p), p, a) for p, a in plan]
        with self._tx():
            return self._consent_write(
                user, pids, source, notice_version, signal, when, now, only_changes
            )

    def _consent_checked(
        self, user: Any, source: Any, notice_version: Any, at: Any, now: datetime
    ) -> tuple[str, datetime]:
        """The person's id and the time of a choice, once its fields are checked."""
        user = _check_id(user, "user")
        if not isinstance(source, str) or not source.strip():
            raise ValidationError(
                "source must say where the choice was made, e.g. source='signup form v3'",
                errors=[{"row": None, "field": "source", "message": "empty"}],
            )
        _check_utf8(source, "source")
        if notice_version is not None and (
            not isinstance(notice_version, str) or not notice_version.strip()
            or len(notice_version) > 200 or not _is_utf8(notice_version)
        ):
            raise ValidationError(
                f"field 'notice_version': {notice_version!r} is not a version; give the "
                "privacy notice's version as a non-empty str of at most 200 characters, "
                "e.g. notice_version='2026-11', or leave it out",
                errors=[{"row": None, "field": "notice_version", "message": "not a str"}],
            )
        when = now if at is None else _parse_time(at, "at")
        if when > now:
            raise ValidationError(
                f"consent time {when.isoformat()} is in the future; record choices when they "
                "are made, or pass the past time they were made",
                errors=[{"row": None, "field": "at", "message": "in the future"}],
            )
        return user, when

    def _consent_write(
        self,
        user: str,
        pids: list[tuple[int, str, ConsentAction]],
        source: str,
        notice_version: str | None,
        signal: str | None,
        when: datetime,
        now: datetime,
        only_changes: bool,
    ) -> list[ConsentRecord]:
        """Write checked choices of one person; inside the caller's write transaction."""
        records: list[ConsentRecord] = []
        pseudonym = self.pseudonym(user)

        def make(purpose: str, action: ConsentAction) -> ConsentRecord:
            return ConsentRecord(
                purpose=purpose, action=action, at=when, recorded_at=now, source=source,
                notice_version=notice_version, signal=signal,
            )

        suppressed = self._con.execute(
            "SELECT 1 FROM suppressed WHERE pseudonym = ?", (pseudonym,)
        ).fetchone()
        if suppressed and all(a != "grant" for _, _, a in pids):
            # an erased person saying no: nothing is held, and nothing is stored now
            for _, name, action in pids:
                record = make(name, action)
                self.audit.append(
                    f"consent_{action}",
                    {"purpose": name, "stored": False, "reason": "erased person"},
                    subject=pseudonym,
                )
                records.append(record)
            return records
        code = self._subject_code(user, create=True)
        for pid, name, action in pids:
            state = self._con.execute(
                "SELECT action, at, seq FROM consent_state "
                "WHERE purpose_id = ? AND subject_id = ?",
                (pid, code),
            ).fetchone()
            # a signal records only changes; never asked counts as withdrawn
            if only_changes and (state[0] if state else "withdraw") == action:
                continue
            cur = self._con.execute(
                "INSERT INTO consent_events(subject_id, purpose_id, action, at, recorded_at, "
                "source, notice_version, signal) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (code, pid, action, _to_us(when), _to_us(now), source, notice_version, signal),
            )
            seq = int(cur.lastrowid or 0)
            if state is None or (_to_us(when), seq) >= (state[1], state[2]):
                self._con.execute(
                    "INSERT OR REPLACE INTO consent_state"
                    "(purpose_id, subject_id, action, at, seq) VALUES (?, ?, ?, ?, ?)",
                    (pid, code, action, _to_us(when), seq),
                )
            if action == "grant":
                self._con.execute("DELETE FROM suppressed WHERE pseudonym = ?", (pseudonym,))
            record = make(name, action)
            self.audit.append(
                f"consent_{action}", record.model_dump(mode="json"), subject=pseudonym
            )
            records.append(record)
        return records

    def consent_history(self, user: str) -> list[ConsentRecord]:
        """Every consent event recorded for ``user``, oldest first (empty if none)."""
        user = _check_id(user, "user")
        with self._lock:
            self._refresh()
            code = self._subject_code(user, create=False)
            if code is None:
                return []
            rows = self._con.execute(
                f"SELECT {_CONSENT_COLUMNS} FROM consent_events "
                "WHERE subject_id = ? ORDER BY at, seq",
                (code,),
            ).fetchall()
            return [self._consent_from_row(row) for row in rows]

    def consent_status(self, user: str) -> dict[str, ConsentRecord | None]:
        """The latest consent event for each defined purpose (``None``: never asked)."""
        latest: dict[str, ConsentRecord | None] = dict.fromkeys(self.purposes)
        for record in self.consent_history(user):
            latest[record.purpose] = record
        return latest

    def consented(self, purpose: str) -> set[str]:
        """Everyone whose latest consent event for ``purpose`` is a grant, now."""
        with self._lock:
            self._refresh()
            pid = self._purpose_id(purpose)
            return {
                r[0]
                for r in self._con.execute(
                    "SELECT s.ext FROM consent_state c JOIN subjects s ON s.id = c.subject_id "
                    "WHERE c.purpose_id = ? AND c.action = 'grant'",
                    (pid,),
                )
            }

    def has_consent(self, user: str, purpose: str) -> bool:
        """True when the latest consent event of ``user`` for ``purpose`` is a grant, now."""
        user = _check_id(user, "user")
        with self._lock:
            self._refresh()
            pid = self._purpose_id(purpose)
            code = self._subject_code(user, create=False)
            if code is None:
                return False
            row = self._con.execute(
                "SELECT action FROM consent_state WHERE purpose_id = ? AND subject_id = ?",
                (pid, code),
            ).fetchone()
            return row is not None and row[0] == "grant"

    # ------------------------------------------------------------------ subjects
    def _subject_code(self, user: str, *, create: bool) -> int | None:
        code = self._subjects.get(user)
        if code is not None:
            return code
        row = self._con.execute("SELECT id FROM subjects WHERE ext = ?", (user,)).fetchone()
        if row is None:
            if not create:
                return None
            cur = self._con.execute(
                "INSERT INTO subjects(ext, pseudonym, created_at) VALUES (?, ?, ?)",
                (user, self.pseudonym(user), _to_us(self._now())),
            )
            row = (int(cur.lastrowid or 0),)
        self._subjects[user] = row[0]
        return int(row[0])

    def _clear_subjects(self) -> None:
        """Forget the cached person and item codes (an erasure deletes both kinds of rows,
        and a deleted item's id may be given to a new item)."""
        self._subjects.clear()
        self._subjects_upto = 0
        self._clear_items()

    def _clear_items(self) -> None:
        self._item_ext, self._item_code, self._item_last = [], {}, 0
        self._item_table = np.array([], dtype=object)

    def _uncached_subjects(self, users: list[str]) -> tuple[list[str], bool]:
        """Cache the codes of held subjects among ``users``; return those not held (unique,
        in order of first appearance), and whether every held subject is now cached (then
        people created next in this transaction keep the cache complete).

        The cache is complete up to ``_subjects_upto``: codes only grow, and an erasure (the
        only delete) clears the cache through the generation. So when no code beyond it
        exists, an uncached person is a new one without asking the file; a short gap (codes
        created by another process) is read in one range query; a long one (a fresh handle
        on a large store) is answered by looking up just the uncached people."""
        cache = self._subjects
        unknown = set(users).difference(cache)
        if not unknown:
            return [], False
        missing = list(dict.fromkeys(filter(unknown.__contains__, users)))
        top = self._con.execute("SELECT max(id) FROM subjects").fetchone()[0] or 0
        upto = self._subjects_upto
        if top - upto <= max(4 * len(missing), 65536):
            if top > upto:
                cache.update(
                    self._con.execute("SELECT ext, id FROM subjects WHERE id > ?", (upto,))
                )
                self._subjects_upto = top
                missing = [u for u in missing if u not in cache]
            return missing, True
        self._con.execute("CREATE TEMP TABLE IF NOT EXISTS _ids(ext TEXT PRIMARY KEY)")
        self._con.execute("DELETE FROM temp._ids")
        self._con.executemany("INSERT INTO temp._ids(ext) VALUES (?)", zip(missing))
        cache.update(
            self._con.execute(
                "SELECT s.ext, s.id FROM subjects s JOIN temp._ids t ON t.ext = s.ext"
            )
        )
        return [u for u in missing if u not in cache], False

    # ------------------------------------------------------------------ ingest
    def ingest(
        self,
        events: Any,
        *,
        on_invalid: Literal["raise", "skip"] = "raise",
        at_unit: Literal["s", "ms", "us", "ns"] | None = None,
        tz: str | tzinfo | None = None,
        dedupe: Literal["none", "exact"] = "none",
    ) -> IngestReport:
        """Validate and store a batch of events, all or nothing.

        ``events`` is a list of dicts (or a pandas DataFrame) with fields ``user``, ``item``,
        ``feature``, ``at`` (ISO 8601 with a time zone, or an aware datetime), optional
        ``value`` (default 1.0) and optional ``id`` (an event id, e.g. order and line; a str,
        or an int, which is its decimal string).
        Re-sending an event changes nothing.

        ``user`` and ``item`` follow persona's id rule (:data:`persona.schema.ID_RULE`): a
        str, or an int (a numpy or pandas integer column too), which is the same id as its
        decimal string (``170`` is stored, consented and erased as ``"170"``); a bool or a
        float (``170.0``, from an integer column with missing values) is refused.

        Numeric times need ``at_unit``: what they count since 1970-01-01 UTC (``"s"`` for
        unix seconds, ``"ms"``, ``"us"`` or ``"ns"``); without it they are refused and the
        message names the unit their size suggests. Naive times (no offset) need ``tz``,
        the zone they were written in (``"UTC"``, ``"Europe/London"``); a wall time that a
        daylight-saving change skips or repeats there is refused.

        With ``on_invalid="raise"`` (default) any bad row rejects the whole batch with a
        :class:`~persona.ValidationError` naming each row and field, and the store is left
        exactly as it was. With ``on_invalid="skip"`` the valid rows are stored and the bad
        ones counted in the report (``rejected``, ``rejected_by_field``).

        ``dedupe`` says which rows without an ``id`` are the same event (rows with an id
        are one event per id, always). ``"none"`` (default): none of the batch's rows is
        merged with another, so two identical purchases in the same second are two events;
        the k-th identical row is the k-th copy, so sending the same batch again stores
        nothing new (but identical rows split over two batches count once: give them ids).
        ``"exact"``: identical rows are one event, within the batch and with what is held.

        Events already older than their feature's retention are not stored (no read would
        use them): the report counts them by feature (``outside_retention``) and a
        :class:`~persona.errors.RetentionWarning` says what to do.
        """
        if on_invalid not in ("raise", "skip"):
            raise ValidationError(
                f"on_invalid must be 'raise' or 'skip', not {on_invalid!r}",
                errors=[{"row": None, "field": "on_invalid", "message": "invalid"}],
            )
        unit = None if at_unit is None else check_unit(at_unit)
        zone = None if tz is None else check_zone(tz)
        check_dedupe(dedupe)
        with self._lock, no_gc_pauses():  # a batch builds ~10 objects per row, no cycles
            self._refresh()
            now_us = _to_us(self._now())
            codes = {name: fid for name, (fid, _) in self._features.items()}
            bounds = {
                name: spec.max_value
                for name, (_, spec) in self._features.items()
                if spec.max_value is not None
            }
            batch, problems = validate_batch(
                events, now_us=now_us, features=codes, max_values=bounds,
                at_unit=unit, tz=zone,
            )
            if problems and on_invalid == "raise":
                raise_for(problems, batch.n)
            old = outside_retention(batch, codes, self._cutoffs(None, now_us))
            try:
                with self._tx():
                    report = self._write_batch(batch, problems, codes, on_invalid, dedupe, old)
            except BaseException:
                self._clear_subjects()  # may hold codes of rows that were rolled back
                self._eids = EventIdIndex()
                raise
        if report.outside_retention:
            retention = {n: spec.retention_days for n, spec in self._feature_specs().items()}
            warn_outside_retention(report.outside_retention, batch.n, retention,
                                   _from_us(now_us))
        return report

    def _trim_wal(self) -> None:
        """After a write transaction that left a large write-ahead log (a bulk ingest, a
        retention pass over many people), move the log into the file and truncate it, so
        that reads find their pages through the memory map again. A large log left behind
        (SQLite's own checkpoints copy it but never shrink it while readers follow it)
        made every serving read 50% slower on Online Retail after loading it (measured
        with ``benchmarks/bench_personalizer.py``). Best effort: when another connection
        holds an older snapshot the log is left for SQLite's own checkpoints, without
        waiting for it. Costs one ``stat`` of the log per transaction otherwise."""
        if self.path == ":memory:" or self._con.in_transaction:
            return
        try:
            size = os.path.getsize(f"{self.path}-wal")
        except OSError:
            return
        if size < WAL_TRIM_BYTES:
            return
        waits = self._con.execute("PRAGMA busy_timeout").fetchone()[0]
        self._con.execute("PRAGMA busy_timeout = 0")
        try:
            self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError:  # pragma: no cover - busy: left for later
            pass
        finally:
            self._con.execute(f"PRAGMA busy_timeout = {int(waits)}")

    def _write_batch(
        self,
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
        generation = self._generation  # checked when the transaction began
        keep = np.ones(len(batch.user), dtype=bool)
        new, complete = self._uncached_subjects(batch.user)
        if new:
            pseudonyms = dict(zip(new, map(self.pseudonym, new), strict=True))
            blocked_ps: set[str] = set()
            if self._con.execute("SELECT 1 FROM suppressed LIMIT 1").fetchone():
                self._con.execute("CREATE TEMP TABLE IF NOT EXISTS _ps(p TEXT PRIMARY KEY)")
                self._con.execute("DELETE FROM temp._ps")
                self._con.executemany(
                    "INSERT INTO temp._ps(p) VALUES (?)", zip(pseudonyms.values())
                )
                blocked_ps = {
                    r[0]
                    for r in self._con.execute(
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
                created_at = _to_us(self._now())
                self._con.execute("CREATE TEMP TABLE IF NOT EXISTS _new(ext TEXT, p TEXT)")
                self._con.execute("DELETE FROM temp._new")
                self._con.executemany(
                    "INSERT INTO temp._new(ext, p) VALUES (?, ?)",
                    [(u, pseudonyms[u]) for u in new],
                )
                created = self._con.execute(
                    "INSERT INTO subjects(ext, pseudonym, created_at) "
                    "SELECT ext, p, ? FROM temp._new ORDER BY rowid RETURNING ext, id",
                    (created_at,),
                ).fetchall()
                self._subjects.update(created)
                if complete:  # codes after the watermark: the cache stays complete
                    self._subjects_upto = max(c for _, c in created)
        outside: dict[str, int] = {}
        if old is not None:
            outside = count_by_feature(batch.feature, keep & old)
            keep &= ~old
        m_all = len(batch.user)
        subj = np.fromiter(map(self._subjects.get, batch.user, repeat(0)), np.int64, m_all)

        self._sync_items()
        # item rows for the events that may be stored (not a suppressed person's); those
        # that end up unused (duplicates) are removed again below, in this transaction
        maybe = batch.item if keep.all() else list(compress(batch.item, keep.tolist()))
        unknown = set(maybe).difference(self._item_code)
        if unknown:
            self._con.executemany(
                "INSERT OR IGNORE INTO items(ext) VALUES (?)",
                zip(dict.fromkeys(filter(unknown.__contains__, maybe))),
            )
            self._sync_items()
        # refused rows may name items without a row: code 0, never stored
        item = np.fromiter(map(self._item_code.get, batch.item, repeat(0)), np.int64, m_all)
        feature = np.fromiter(map(feature_codes.__getitem__, batch.feature), np.int64, m_all)

        eids = event_ids(subj, item, feature, batch.value, batch.at_us, batch.event_id)
        if dedupe == "none":
            eids = number_copies(eids, batch.event_id)
        self._eids.sync(self._con, generation)
        uniq, first = np.unique(eids, return_index=True)  # sorted: cache-friendly lookups
        kept = keep[first]
        uniq, first = uniq[kept], first[kept]
        new_ids = ~self._eids.contains(uniq)
        fresh = np.zeros(m_all, dtype=bool)
        fresh[first[new_ids]] = True
        new_eids = uniq[new_ids]  # sorted
        duplicates = int(keep.sum() - fresh.sum())
        idx = np.flatnonzero(fresh)
        m = idx.size
        if unknown:
            self._drop_unused_new_items({self._item_code[i] for i in unknown}, item[idx])
        people = 0
        if m:
            s, it, fe = subj[idx], item[idx], feature[idx]
            val, at, eid = batch.value[idx], batch.at_us[idx], eids[idx]
            order = person_time_order(s, at)
            rec = np.zeros(m, dtype=EVENT_DTYPE)
            rec["item"], rec["feature"] = it[order], fe[order]
            rec["value"], rec["at"], rec["eid"] = val[order], at[order], eid[order]
            s_sorted = s[order]
            self._insert_segments(s_sorted, rec)
            self._eids.append(self._con, new_eids)
            self._compact(_distinct_sorted(s_sorted >> BUCKET_BITS).tolist())
            people = int(_distinct_sorted(s_sorted).size)
        rejected_by_field: dict[str, int] = {}
        for p in problems:
            rejected_by_field[p["field"]] = rejected_by_field.get(p["field"], 0) + 1
        rejected = len({p["row"] for p in problems})
        per_feature = {
            name: int(np.count_nonzero(feature[idx] == code))
            for name, code in feature_codes.items()
            if np.any(feature[idx] == code)
        }
        seq = self.audit.append(
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

    def _drop_unused_new_items(self, new: set[int], stored: np.ndarray) -> None:
        """Delete the item rows this batch created that none of its stored events uses
        (an item row exists only for a stored event or a declared item)."""
        unused = sorted(new.difference(np.unique(stored).tolist()))
        if unused:
            self._con.executemany("DELETE FROM items WHERE id = ?", [(c,) for c in unused])
            self._clear_items()  # their ids may be given again

    def _drop_orphan_items(self, candidates: set[int]) -> None:
        """After an erasure: delete the rows of ``candidates`` (the erased person's items)
        that no remaining event or feedback uses and that are not declared in the
        catalogue, so an item only they had leaves no trace. Scans the segments until
        every candidate is found in use (at most once over all events)."""
        if not candidates:
            return
        self._temp_ids("_cand", sorted(candidates))
        left = np.array(
            [
                r[0]
                for r in self._con.execute(
                    "SELECT id FROM temp._cand WHERE id NOT IN (SELECT item_id FROM catalogue) "
                    "AND id NOT IN (SELECT item_id FROM feedback) ORDER BY id"
                )
            ],
            dtype=np.int64,
        )
        if left.size:
            for (data,) in self._con.execute("SELECT data FROM segments"):
                left = left[~np.isin(left, np.frombuffer(data, dtype=EVENT_DTYPE)["item"])]
                if not left.size:
                    break
        if left.size:
            self._con.executemany("DELETE FROM items WHERE id = ?", [(c,) for c in left.tolist()])

    def _temp_ids(self, name: str, codes: list[int]) -> None:
        self._con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name}(id INTEGER PRIMARY KEY)")
        self._con.execute(f"DELETE FROM temp.{name}")
        self._con.executemany(f"INSERT INTO temp.{name}(id) VALUES (?)", [(c,) for c in codes])

    def _insert_segments(
        self, subj: np.ndarray, rec: np.ndarray, levels: dict[int, int] | None = None
    ) -> None:
        """Write one segment per bucket, of level ``levels[bucket]`` (0 by default); ``subj``
        and ``rec`` sorted by person, then time."""
        self._con.executemany(
            "INSERT INTO segments(bucket, level, n, data) VALUES (?, ?, ?, ?)",
            segment_rows(subj, rec, levels),
        )

    def _compact(self, buckets: list[int]) -> None:
        """Merge segments of the touched ``buckets`` as :func:`merge_plan` says."""
        self._temp_ids("_touched", buckets)
        due = [
            r[0]
            for r in self._con.execute(
                "SELECT bucket FROM segments WHERE bucket IN (SELECT id FROM temp._touched) "
                "GROUP BY bucket HAVING sum(level = 0) >= ? OR count(*) > ?",
                (FANOUT, MAX_SEGMENTS),
            )
        ]
        if not due:
            return
        self._temp_ids("_touched", due)
        levels: dict[int, list[tuple[int, int]]] = {}
        for bucket, seg, level in self._con.execute(
            "SELECT bucket, id, level FROM segments WHERE bucket IN (SELECT id FROM temp._touched)"
        ):
            levels.setdefault(bucket, []).append((seg, level))
        merge: list[int] = []
        for segs in levels.values():
            top = merge_plan([lv for _, lv in segs])
            if top is not None:
                merge.extend(seg for seg, lv in segs if lv < top)
        self._merge(merge, bump=True)

    def _merge(
        self,
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
        self._temp_ids("_merge", ids)
        rows = self._con.execute(
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
            self._temp_ids("_merge", [r[3] for r in rows])
        levels: dict[int, int] = {}
        for r in rows:
            levels[r[0]] = max(levels.get(r[0], 0), r[4] + bump)
        order = person_time_order(subj, rec["at"])
        rec, subj = rec[order], subj[order]
        self._con.execute("DELETE FROM segments WHERE id IN (SELECT id FROM temp._merge)")
        self._insert_segments(subj, rec, levels)
        return deleted, int(_distinct_sorted(subj).size)

    def compact(self) -> int:
        """Merge each bucket's segments into one (faster reads after many small batches).
        Returns the number of people whose events were rewritten."""
        with self._lock, self._tx():
            ids = [
                r[0]
                for r in self._con.execute(
                    "SELECT id FROM segments WHERE bucket IN "
                    "(SELECT bucket FROM segments GROUP BY bucket HAVING count(*) > 1)"
                )
            ]
            return self._merge(ids, bump=True)[1]

    def apply_retention(self) -> int:
        """Delete events that are past their feature's retention window from the file,
        and shown records past theirs (:meth:`set_shown_retention`).

        Reads already ignore such events and records; this also removes them from disk.
        Returns the number of events deleted. Run it on a schedule (e.g. daily).
        """
        with self._lock:
            self._refresh()
            cutoff = self._cutoffs(None, _to_us(self._now()))
            with self._tx():
                ids = [r[0] for r in self._con.execute("SELECT id FROM segments")]
                deleted, _ = self._merge(ids, lambda rec, _: rec["at"] >= cutoff[rec["feature"]])
                shown = _shown.purge(self, self._now())
                self.audit.append(
                    "apply_retention", {"events_deleted": deleted, "shown_deleted": shown}
                )
            return deleted

    # ------------------------------------------------------------------ feedback
    def feedback(
        self,
        user: str,
        item: str,
        kind: FeedbackKind,
        *,
        source: str = "api",
        at: datetime | str | None = None,
    ) -> FeedbackRecord:
        """Record a person's correction of what the system assumes about them.

        ``kind="dont_use"``: their events with ``item`` are left out of every read from now
        on (and so out of models fitted afterwards and of their explanations).
        ``kind="not_interested"``: the item should not be suggested to them; serving layers
        read these with :meth:`ScopedView.not_interested`.
        Feedback is personal data: it is exported, and erased with the person.
        """
        if kind not in ("not_interested", "dont_use"):
            raise ValidationError(
                f"field 'kind': {kind!r} is not a kind of feedback; use 'not_interested' or "
                "'dont_use'",
                errors=[{"row": None, "field": "kind", "message": "invalid"}],
            )
        user = _check_id(user, "user")
        item = _check_id(item, "item")
        now = self._now()
        when = now if at is None else _parse_time(at, "at")
        with self._lock:
            self._refresh()
            with self._tx():
                refuse_if_erased(self._con, self.pseudonym(user), "their feedback")
                code = self._subject_code(user, create=True)
                self._con.execute("INSERT OR IGNORE INTO items(ext) VALUES (?)", (item,))
                item_code = self._con.execute(
                    "SELECT id FROM items WHERE ext = ?", (item,)
                ).fetchone()[0]
                self._con.execute(
                    "INSERT OR REPLACE INTO feedback(subject_id, item_id, kind, at, source) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (code, item_code, kind, _to_us(when), source),
                )
                self.audit.append(
                    f"feedback_{kind}", {"source": source}, subject=self.pseudonym(user)
                )
            self._sync_items()
        return FeedbackRecord(item=item, kind=kind, at=when, source=source)

    def clear_feedback(
        self, user: str, item: str | None = None, kind: FeedbackKind | None = None
    ) -> int:
        """Undo feedback: all of the person's, one item's, or one kind's. Returns rows removed."""
        user = _check_id(user, "user")
        if item is not None:
            item = _check_id(item, "item")
        if kind is not None and (not isinstance(kind, str)
                                 or kind not in ("not_interested", "dont_use")):
            raise ValidationError(
                f"field 'kind': {kind!r:.80} is not a feedback kind; give 'not_interested', "
                "'dont_use' or None (every kind)",
                errors=[{"row": None, "field": "kind", "message": "invalid"}],
            )
        with self._lock:
            self._refresh()
            with self._tx():
                code = self._subject_code(user, create=False)
                if code is None:
                    return 0
                sql, args = "DELETE FROM feedback WHERE subject_id = ?", [code]
                if item is not None:
                    sql += " AND item_id = (SELECT id FROM items WHERE ext = ?)"
                    args.append(item)
                if kind is not None:
                    sql += " AND kind = ?"
                    args.append(kind)
                removed = self._con.execute(sql, args).rowcount
                self.audit.append(
                    "feedback_cleared", {"rows": removed}, subject=self.pseudonym(user)
                )
            return removed

    def feedback_of(self, user: str) -> list[FeedbackRecord]:
        """Every piece of feedback held for ``user``, oldest first."""
        user = _check_id(user, "user")
        with self._lock:
            self._refresh()
            code = self._subject_code(user, create=False)
            if code is None:
                return []
            rows = self._con.execute(
                "SELECT i.ext, f.kind, f.at, f.source FROM feedback f "
                "JOIN items i ON i.id = f.item_id WHERE f.subject_id = ? ORDER BY f.at",
                (code,),
            ).fetchall()
        return [
            FeedbackRecord(item=i, kind=k, at=_from_us(at), source=src) for i, k, at, src in rows
        ]

    def _excluded_keys(self) -> np.ndarray | None:
        """Sorted (person << 32 | item) keys of events people asked not to be used."""
        rows = self._con.execute(
            "SELECT subject_id, item_id FROM feedback WHERE kind = 'dont_use'"
        ).fetchall()
        if not rows:
            return None
        arr = np.array(rows, dtype=np.int64)
        return np.sort((arr[:, 0] << 32) | arr[:, 1])

    # ------------------------------------------------------------------ audit
    def record(self, action: str, detail: Mapping[str, Any], *, user: str | None = None) -> int:
        """Append an application event (a model fit, a curation change, an explanation shown)
        to the audit log. ``user`` is stored only as their pseudonym. Returns its number.

        ``action`` must start with ``"app."`` so it cannot be mistaken for the store's own
        entries (consent changes, reads, erasures). The log is append-only and erasure
        cannot remove an entry, so a ``detail`` holding the person's own id (any key or
        string value equal to ``user``, compared in Unicode NFC) is refused: pass the person
        as ``user=`` and keep their id out of ``detail``.
        """
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
            user = _check_id(user, "user")
            if _names(detail, user):
                raise ValidationError(
                    "field 'detail' contains the person's id, which the append-only audit "
                    "log would keep after an erasure; pass the person as user= (stored as a "
                    "pseudonym) and keep the id out of detail",
                    errors=[{"row": None, "field": "detail", "message": "holds the user id"}],
                )
        with self._lock:
            self._check_open()
            with self._read_tx():
                return self.audit.append(
                    action, dict(detail), subject=None if user is None else self.pseudonym(user)
                )

    # ------------------------------------------------------------------ privacy ledger
    def charge_storage(self) -> StoreChargeStorage:
        """The store's persisted privacy ledger, for :class:`persona.privacy.BudgetLedger`.

        Lines (charges, reservations, settlements) survive restarts, are append-only (SQL
        triggers refuse edits), are recorded in the audit log and appear in :meth:`export`
        for reviewers. Appends are atomic across processes (one ``BEGIN IMMEDIATE``
        transaction with the ledger's check).
        """
        return StoreChargeStorage(self)

    def set_privacy_budget(
        self, purpose: str, *, epsilon: float, delta: float, period_days: int | None = None
    ) -> PrivacyBudgetPolicy:
        """Set what private computations on ``purpose`` may spend; recorded in the audit log.

        ``period_days=None`` (default): ``(epsilon, delta)`` is a lifetime total, summed over
        every fit ever made. An integer: a budget per rolling period of that many days (for
        nightly refits); only charges of the last ``period_days`` days count. That is a
        weaker guarantee, and the reports say so: a person whose data stays through many
        periods is covered only by the sum over them (see
        :meth:`persona.schema.PrivacyBudgetPolicy.describe`). The new policy replaces the
        old one and applies to the charges already made. Returns it.

        When no budget is set, the first private fit on the purpose sets a lifetime total
        equal to its own (ε, δ) (see :meth:`privacy_ledger`), so a second fit is refused
        until a person raises the budget.

        >>> import persona
        >>> store = persona.Store(":memory:")
        >>> store.define_purpose("recs", description="Suggest products")
        >>> store.set_privacy_budget("recs", epsilon=2.0, delta=1e-6, period_days=30).period_days
        30
        >>> store.privacy_budget("recs")
        (2.0, 1e-06)
        """
        return _ledger.set_budget(self, purpose, epsilon, delta, period_days)

    def privacy_budget(self, purpose: str) -> tuple[float, float] | None:
        """The configured (ε, δ) for ``purpose`` (in total, or per period: see
        :meth:`privacy_budget_policy`), or ``None`` if none was set."""
        policy = _ledger.budget_policy(self, purpose)
        return None if policy is None else (policy.epsilon, policy.delta)

    def privacy_budget_policy(self, purpose: str) -> PrivacyBudgetPolicy | None:
        """``purpose``'s budget policy (ε, δ, ``period_days``, when it was set), or ``None``."""
        return _ledger.budget_policy(self, purpose)

    def privacy_ledger(
        self, purpose: str, *, default: tuple[float, float] | None = None
    ) -> BudgetLedger:
        """A :class:`persona.privacy.BudgetLedger` on this store's ledger, bound to
        ``purpose``'s budget policy: what a private fit reserves its spend with before it
        reads data (``ledger.reserve``), and settles afterwards (``ledger.settle``).

        With no budget set, ``default`` (the fit's own ``(epsilon, delta)``) becomes the
        purpose's lifetime total, recorded in the audit log; without a ``default`` the call
        raises :class:`~persona.PrivacyBudgetExceeded`. The policy is read now: make a
        ledger per fit.

        >>> import persona
        >>> store = persona.Store(":memory:")
        >>> store.define_purpose("recs", description="Suggest products")
        >>> ledger = store.privacy_ledger("recs", default=(1.0, 1e-6))
        >>> r = ledger.reserve("recs", (1.0, 1e-6))
        >>> store.privacy_charges("recs")[0].status
        'reserved'
        """
        return _ledger.privacy_ledger(self, purpose, default)

    def privacy_charges(self, purpose: str | None = None) -> list[PrivacyCharge]:
        """The privacy ledger's charges for ``purpose`` (every purpose if ``None``), oldest
        first: settled charges (``status="settled"``) and reservations not settled yet
        (``status="reserved"``, at their reserved amount; they count against the budget until
        settled, also when the process that made them stopped)."""
        return _ledger.privacy_charges(self, purpose)

    def _check_privacy_rows(self) -> None:
        """Refuse to act on ledger or budget rows that differ from their audit entries
        (edited with the triggers dropped): budget checks read them on every fit."""
        with self._lock, self.audit._snapshot():
            found = privacy_row_problems(self._con, self._privacy_memo)
        if found:
            raise AuditError(
                "the privacy ledger or budget does not match the audit log: "
                + "; ".join(found)
                + ". persona refuses to check budgets against it. Restore the store file "
                "from a backup and investigate who had write access to it.",
                problems=found,
            )

    # ------------------------------------------------------------------ catalogue
    def define_items(self, items: Iterable[str] | Mapping[str, str]) -> int:
        """Declare items of the public catalogue (product ids, optionally with their titles).

        The catalogue is what a shop sells, not personal data: it needs no events, and it is
        the item universe of every private fit (the items a differentially private model
        scores and releases noisy statistics for). Items without events get zero statistics
        plus noise; events on items that are not declared are not used by private fits.
        Declaring an item again keeps its place; a mapping also sets labels (as
        :meth:`label_items`). Returns the number of items given.

        >>> import persona
        >>> store = persona.Store(":memory:")
        >>> store.define_items(["sku-1", "sku-2"])
        2
        >>> store.define_items({"sku-3": "Trail Socks"})
        1
        >>> store.catalogue()
        ['sku-1', 'sku-2', 'sku-3']
        """
        if isinstance(items, Mapping):
            return self.label_items(items)
        if isinstance(items, str | bytes) or not isinstance(items, Iterable):
            raise ValidationError(
                f"field 'items': give a list of item ids (or a mapping id -> title), not "
                f"{type(items).__name__}",
                errors=[{"row": None, "field": "items", "message": "not a list"}],
            )
        ids = list(dict.fromkeys(_check_id(item, "item") for item in items))
        with self._lock:
            self._check_open()
            with self._tx():
                declare_items(self._con, [(i, None) for i in ids])
                self.audit.append("define_items", {"items": len(ids)})
            return len(ids)

    def catalogue(self) -> list[str]:
        """The declared catalogue (public item universe), in the order it was declared.

        Items are declared by :meth:`define_items` and :meth:`label_items`; items that only
        appear in events are not part of it.
        """
        with self._lock:
            self._check_open()
            return catalogue_items(self._con)

    def label_items(self, labels: Mapping[str, str]) -> int:
        """Give items human-readable labels (product titles), used in explanations.

        Items are catalogue data, not personal data; labelling an item declares it in the
        public catalogue (:meth:`catalogue`), with or without events. Returns the number of
        items labelled.

        >>> import persona
        >>> store = persona.Store(":memory:")
        >>> store.label_items({"sku-9": "Trail Socks"})
        1
        >>> store.item_labels(["sku-9", "sku-404"])
        {'sku-9': 'Trail Socks'}
        >>> store.catalogue()
        ['sku-9']
        """
        if not isinstance(labels, Mapping):
            raise ValidationError(
                f"field 'labels': give a mapping item id -> title, not {type(labels).__name__}",
                errors=[{"row": None, "field": "labels", "message": "not a mapping"}],
            )
        rows = []
        for item, label in labels.items():
            item = _check_id(item, "item")
            if (not isinstance(label, str) or not label.strip() or len(label) > 500
                    or not _is_utf8(label)):
                raise ValidationError(
                    f"field 'label' of item {item!r}: give a non-empty title of at most 500 "
                    f"characters, not {label!r}",
                    errors=[{"row": None, "field": "label", "message": "invalid label"}],
                )
            rows.append((item, label.strip()))
        with self._lock:
            self._check_open()
            with self._tx():
                declare_items(self._con, rows)
                self.audit.append("label_items", {"items": len(rows)})
            return len(rows)

    def item_labels(self, items: Iterable[str] | None = None) -> dict[str, str]:
        """Labels of ``items`` (all labelled items if ``None``); unlabelled items are left out."""
        with self._lock:
            self._check_open()
            if items is None:
                return dict(
                    self._con.execute("SELECT ext, label FROM items WHERE label IS NOT NULL")
                )
            items = _as_tuple(items, "items", "['sku-1']")
            wanted = list(dict.fromkeys(_check_id(i, "item") for i in items))
            self._con.execute("CREATE TEMP TABLE IF NOT EXISTS _ids(ext TEXT PRIMARY KEY)")
            self._con.execute("DELETE FROM temp._ids")
            self._con.executemany("INSERT INTO temp._ids(ext) VALUES (?)", [(i,) for i in wanted])
            return dict(
                self._con.execute(
                    "SELECT i.ext, i.label FROM items i JOIN temp._ids t ON t.ext = i.ext "
                    "WHERE i.label IS NOT NULL"
                )
            )

    # ------------------------------------------------------------------ reads
    def scope(self, purpose: str) -> ScopedView:
        """A read-only view of the data usable for ``purpose``: the only read path for models.

        Each read on the view checks consent and retention at the time of that read, so a
        withdrawal or erasure takes effect at the next read.
        """
        from persona.store._view import ScopedView

        with self._lock:
            self._refresh()
            self._purpose_id(purpose)
        return ScopedView(self, purpose)

    def _feature_plan(
        self, purpose: str | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
        """What reads for ``purpose`` (None: every purpose) take from the definitions, per
        feature code: its column in the result (-1: not allowed), whether it is kept for a
        time, the offset from now of its oldest readable time if so, its fixed bound
        otherwise; and the allowed features' names. Kept until the definitions change."""
        plan = self._plans.get(purpose)
        if plan is None:
            size = max((fid for fid, _ in self._features.values()), default=0) + 1
            allowed = tuple(
                name
                for name, (_, spec) in sorted(self._features.items())
                if purpose is None or purpose in spec.purposes
            )
            local = np.full(size, -1, dtype=np.int16)
            timed = np.zeros(size, dtype=bool)
            offset = np.zeros(size, dtype=np.int64)
            fixed = np.full(size, _INT64_MAX, dtype=np.int64)  # not allowed: never readable
            for i, name in enumerate(allowed):
                fid, spec = self._features[name]
                local[fid] = i
                if spec.retention_days is None:
                    fixed[fid] = np.iinfo(np.int64).min
                else:
                    timed[fid] = True
                    offset[fid] = -spec.retention_days * _DAY_US
            for arr in (local, timed, offset, fixed):
                arr.setflags(write=False)
            plan = self._plans[purpose] = (local, timed, offset, fixed, allowed)
        return plan

    def _cutoffs(self, purpose: str | None, now_us: int) -> np.ndarray:
        """Per feature code: the oldest time readable (INT64_MAX where not allowed)."""
        _, timed, offset, fixed, _ = self._feature_plan(purpose)
        return np.where(timed, offset + now_us, fixed)

    def _feature_uses(self, purpose: str) -> tuple[FeatureUse, ...]:
        uses = []
        for name, (_, spec) in sorted(self._features.items()):
            allowed = purpose in spec.purposes
            reason = (
                f"allowed for {purpose}"
                if allowed
                else f"not allowed for {purpose} (allowed for {', '.join(spec.purposes)})"
            )
            if allowed and spec.retention_days is not None:
                reason += f"; only the last {spec.retention_days} days"
            uses.append(
                FeatureUse(
                    feature=name,
                    category=spec.category,
                    used=allowed,
                    reason=reason,
                    retention_days=spec.retention_days,
                )
            )
        return tuple(uses)

    def _snapshot(self, purpose: str) -> ConsentSnapshot:
        pid = self._purpose_id(purpose)
        counts = dict(
            self._con.execute(
                "SELECT action, count(*) FROM consent_state WHERE purpose_id = ? GROUP BY action",
                (pid,),
            ).fetchall()
        )
        return ConsentSnapshot(
            purpose=purpose,
            granted=counts.get("grant", 0),
            withdrawn=counts.get("withdraw", 0),
            declined=counts.get("decline", 0),
        )

    def _read_plan(self, purpose: str) -> tuple[int, datetime, np.ndarray, np.ndarray, list[str]]:
        """For a read for ``purpose`` now: its id, the time, per feature code the oldest
        readable time and its column in the result (-1: not allowed), and the allowed
        features' names."""
        pid = self._purpose_id(purpose)
        now = self._now()
        local, _, _, _, allowed = self._feature_plan(purpose)
        return pid, now, self._cutoffs(purpose, _to_us(now)), local, list(allowed)

    @contextmanager
    def _read_tx(self) -> Iterator[None]:
        """A transaction for a read and its audit entry; the entry needs no fsync. The id
        and definition caches are refreshed inside it, so they match what it reads."""
        self._check_open()
        with self._tx(durable=False):
            self._refresh()
            yield

    def _read(self, purpose: str) -> tuple[EventColumns, Lineage]:
        """All consented events for ``purpose``, recorded in the audit log in one transaction."""
        with self._lock:
            with self._read_tx():
                pid, now, cutoff, local, allowed = self._read_plan(purpose)
                granted = np.array(
                    self._con.execute(
                        "SELECT subject_id FROM consent_state "
                        "WHERE purpose_id = ? AND action = 'grant'",
                        (pid,),
                    ).fetchall(),
                    dtype=np.int64,
                ).reshape(-1)
                rec, subj = load_segments(
                    self._con.execute("SELECT bucket, n, data FROM segments").fetchall()
                    if granted.size
                    else []
                )
                if subj.size:
                    active = np.zeros(max(int(subj.max()), int(granted.max())) + 1, dtype=bool)
                    active[granted] = True
                    consented = active[subj]
                    rec, subj = rec[consented], subj[consented]
                cols = self._decode(
                    rec, subj, cutoff, local, tuple(allowed), excluded=self._excluded_keys()
                )
                held = {} if len(cols) == rec.size else held_outside_retention(
                    rec, cutoff, local, tuple(allowed))
                snapshot = self._snapshot(purpose)
                detail = {
                    "purpose": purpose,
                    "rows": len(cols),
                    "people": int(cols.users.size),
                    "items": int(cols.items.size),
                    "features": allowed,
                }
                seq = self.audit.append("scoped_read", detail)
            lineage = Lineage(
                store_id=self.store_id,
                purpose=purpose,
                purpose_description=self._purposes[purpose][1].description,
                read_at=now,
                features=self._feature_uses(purpose),
                consent=snapshot,
                people=int(cols.users.size),
                items=int(cols.items.size),
                rows=len(cols),
                audit_seq=seq,
                outside_retention=held,
            )
            return cols, lineage

    def _read_person(
        self, purpose: str, user: str, *, lineage: bool, events: bool = True
    ) -> tuple[EventColumns, PersonLineage | None, set[str]]:
        """One person's events usable for ``purpose`` (and, if asked, what was left out and
        why) and the items they said they are not interested in, recorded in the audit log
        in one transaction. ``events=False`` skips the event arrays: with ``lineage`` when
        only the lineage is wanted, without it when only the not-interested items are (no
        event is read then, and the audit entry says 0 rows)."""
        user = _check_id(user, "user")
        with self._lock:
            with self._read_tx():
                cols, fields, not_interested, _ = self._person_read(
                    purpose, user, lineage=lineage, events=events
                )
                used_rows = len(cols) if fields is None else fields["rows"]
                seq = self.audit.append(
                    "scoped_history_read",
                    {"purpose": purpose, "rows": used_rows, "lineage": lineage},
                    subject=self.pseudonym(user),
                )
            person = None if fields is None else PersonLineage(**fields, audit_seq=seq)
            return cols, person, not_interested

    def _person_read(
        self, purpose: str, user: str, *, lineage: bool, events: bool
    ) -> tuple[EventColumns, dict[str, Any] | None, set[str], int | None]:
        """The body of :meth:`_read_person`, inside the caller's transaction and lock, with
        no audit entry: the events, the lineage's fields (if asked), the not-interested
        items and the person's subject code (``None``: not held)."""
        pid, now, cutoff, local, allowed = self._read_plan(purpose)
        code = self._subject_code(user, create=False)
        state = None
        blob, parts = b"", 0
        excluded = None
        not_interested: set[str] = set()
        if code is not None:
            # the consent state, with its consent event for the lineage
            state = self._con.execute(
                f"SELECT cs.action, cs.seq, {_CONSENT_COLUMNS_CE} "
                "FROM consent_state cs JOIN consent_events ce ON ce.seq = cs.seq "
                "WHERE cs.purpose_id = ? AND cs.subject_id = ?"
                if lineage
                else "SELECT action FROM consent_state "
                "WHERE purpose_id = ? AND subject_id = ?",
                (pid, code),
            ).fetchone()
            if lineage or (events and state is not None and state[0] == "grant"):
                blob, parts = self._person_blob(code)
            excluded, not_interested = self._person_feedback(code)
        active = state is not None and state[0] == "grant"
        # a few records decode fastest as Python tuples, more as numpy arrays
        few = len(blob) <= _FEW_RECORDS * EVENT_DTYPE.itemsize
        rec = _time_ordered(blob, parts) if lineage or not few else None
        features = tuple(allowed)
        if not active or not events:
            cols = _no_events(features)
        elif few:
            records = _time_ordered_tuples(blob, parts) if rec is None else rec.tolist()
            cols = self._person_columns(records, cutoff, local, features, user, excluded)
        else:
            cols = self._decode(
                rec, np.full(rec.size, code, dtype=np.int64), cutoff, local, features,
                user, excluded,
            )
        fields = None
        if lineage:
            assert rec is not None  # lineage reads always decode with numpy
            fields = self._person_lineage(purpose, code, state, rec, now, excluded)
        return cols, fields, not_interested, code

    def _person_feedback(self, code: int) -> tuple[np.ndarray | None, set[str]]:
        """The person's ``dont_use`` items as sorted (person << 32 | item) keys (None if
        none; the form :meth:`_excluded_keys` gives for everyone) and their
        ``not_interested`` item ids."""
        rows = self._con.execute(
            "SELECT kind, item_id FROM feedback WHERE subject_id = ? "
            "AND kind IN ('dont_use', 'not_interested')",
            (code,),
        ).fetchall()
        dont = [i for k, i in rows if k == "dont_use"]
        excluded = np.sort((np.int64(code) << 32) | np.array(dont, np.int64)) if dont else None
        wanted = [i for k, i in rows if k == "not_interested"]
        if wanted and max(wanted) >= len(self._item_ext):
            self._sync_items()
        return excluded, {self._item_ext[i] for i in wanted}

    def _person_events(self, code: int) -> np.ndarray:
        """The records of the person with subject code ``code``, oldest first."""
        return _time_ordered(*self._person_blob(code))

    def _person_blob(self, code: int) -> tuple[bytes, int]:
        """The raw records of the person with subject code ``code``: each segment's run of
        them, joined in segment order, and the number of runs (each run is in time order).

        Each segment is sorted by person, so their records are found by bisecting the
        ``member`` field of the raw blob, without decoding the rest of the bucket."""
        member = code & MEMBER_MASK
        parts = []
        for (data,) in self._con.execute(
            "SELECT data FROM segments WHERE bucket = ?", (bucket_of(code),)
        ):
            if _LITTLE:
                col = memoryview(data).cast("h")[_MEMBER_AT::_RECORD_SHORTS]
                lo = bisect.bisect_left(col, member)
                hi = bisect.bisect_right(col, member, lo)
            else:  # pragma: no cover - big-endian machines
                col = np.frombuffer(data, dtype=EVENT_DTYPE)["member"]
                lo, hi = int(col.searchsorted(member)), int(col.searchsorted(member, "right"))
            if hi > lo:
                parts.append(data[lo * EVENT_DTYPE.itemsize : hi * EVENT_DTYPE.itemsize])
        return b"".join(parts), len(parts)

    def _consent_record(self, seq: int) -> ConsentRecord:
        row = self._con.execute(
            f"SELECT {_CONSENT_COLUMNS} FROM consent_events WHERE seq = ?", (seq,)
        ).fetchone()
        return self._consent_from_row(row)

    def _consent_from_row(self, row: tuple[Any, ...]) -> ConsentRecord:
        pid, action, at, rec, source, notice, signal = row
        name = next(n for n, (i, _) in self._purposes.items() if i == pid)
        return ConsentRecord(
            purpose=name, action=action, at=_from_us(at), recorded_at=_from_us(rec),
            source=source, notice_version=notice, signal=signal,
        )

    def _person_lineage(
        self,
        purpose: str,
        code: int | None,
        state: tuple[Any, ...] | None,
        rec: np.ndarray,
        now: datetime,
        excluded: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """The fields of the person's :class:`PersonLineage` (all but its audit entry).
        ``state`` is the consent state row followed by its consent event's columns."""
        consent = None if state is None else self._consent_from_row(state[2:])
        active = consent is not None and consent.action == "grant"
        others: dict[int, tuple[str, int]] | None = None

        def other() -> dict[int, tuple[str, int]]:  # read only when a feature needs it
            nonlocal others
            if others is None:
                others = {}
                if code is not None:
                    others = {
                        p: (a, q)
                        for p, a, q in self._con.execute(
                            "SELECT purpose_id, action, seq FROM consent_state "
                            "WHERE subject_id = ?",
                            (code,),
                        )
                    }
            return others
        now_us = _to_us(now)
        used: list[FeatureUsed] = []
        not_used: list[FeatureNotUsed] = []
        for name, (fid, spec) in sorted(self._features.items()):
            mine = rec[rec["feature"] == fid]
            if mine.size == 0:
                continue
            if not active:
                reason = "no_consent" if consent is None else _REASON[consent.action]
                not_used.append(
                    FeatureNotUsed(
                        feature=name,
                        category=spec.category,
                        reason=reason,
                        events=int(mine.size),
                        purpose=purpose,
                        since=None if consent is None else consent.at,
                    )
                )
                continue
            if purpose not in spec.purposes:
                # the most telling consent choice about what this feature *may* serve
                choice = None
                for p in spec.purposes:
                    entry = other().get(self._purposes[p][0])
                    if entry is not None and entry[0] != "grant":
                        choice = self._consent_record(entry[1])
                not_used.append(
                    FeatureNotUsed(
                        feature=name,
                        category=spec.category,
                        reason="not_allowed_for_purpose",
                        events=int(mine.size),
                        purpose=purpose,
                        choice=choice,
                    )
                )
                continue
            if excluded is not None and code is not None:
                dropped = np.isin((np.int64(code) << 32) | mine["item"].astype(np.int64), excluded)
                if dropped.any():
                    not_used.append(
                        FeatureNotUsed(
                            feature=name,
                            category=spec.category,
                            reason="excluded_by_person",
                            events=int(dropped.sum()),
                            purpose=purpose,
                        )
                    )
                    mine = mine[~dropped]
            days = spec.retention_days
            inside = mine if days is None else mine[mine["at"] >= now_us - days * _DAY_US]
            if inside.size:
                used.append(
                    FeatureUsed(
                        feature=name,
                        category=spec.category,
                        events=int(inside.size),
                        first_at=_from_us(int(inside["at"].min())),
                        last_at=_from_us(int(inside["at"].max())),
                    )
                )
            if inside.size < mine.size:
                not_used.append(
                    FeatureNotUsed(
                        feature=name,
                        category=spec.category,
                        reason="outside_retention",
                        events=int(mine.size - inside.size),
                        purpose=purpose,
                        retention_days=days,
                    )
                )
        return {
            "store_id": self.store_id,
            "purpose": purpose,
            "purpose_description": self._purposes[purpose][1].description,
            "read_at": now,
            "consent": consent,
            "active": active,
            "used": tuple(used),
            "not_used": tuple(not_used),
            "rows": sum(u.events for u in used),
        }

    def _person_columns(
        self,
        records: list[_RecordTuple],
        cutoff: np.ndarray,
        local: np.ndarray,
        features: tuple[str, ...],
        user: str,
        excluded: np.ndarray | None,
    ) -> EventColumns:
        """What :meth:`_decode` gives for one person's records (tuples as
        :func:`_time_ordered_tuples` gives them), through Python lists: for a few dozen events
        that costs less than the twenty-odd numpy calls of the bulk decoder, each with its
        own set-up (they took about a quarter of a history read *(one-off)*)."""
        cut, loc = cutoff.tolist(), local.tolist()
        known = len(cut)
        skip = set() if excluded is None else {k & 0xFFFFFFFF for k in excluded.tolist()}
        keep = [r for r in records if r[1] < known and r[4] >= cut[r[1]] and r[0] not in skip]
        if not keep:
            return _no_events(features)
        codes = sorted({r[0] for r in keep})
        if codes[-1] >= self._item_table.size:
            self._sync_items()
        where = {c: i for i, c in enumerate(codes)}
        return EventColumns(
            users=np.array([user], dtype=object),
            items=self._item_table[codes],
            features=features,
            user=np.zeros(len(keep), dtype=np.int32),
            item=np.array([where[r[0]] for r in keep], dtype=np.int32),
            feature=np.array([loc[r[1]] for r in keep], dtype=np.int16),
            value=np.array([r[3] for r in keep], dtype=np.float64),
            at=np.array([r[4] for r in keep], dtype=np.int64).view("datetime64[us]"),
        )

    def _decode(
        self,
        rec: np.ndarray,
        subj: np.ndarray,
        cutoff: np.ndarray,
        local: np.ndarray,
        features: tuple[str, ...],
        user: str | None = None,
        excluded: np.ndarray | None = None,
    ) -> EventColumns:
        if rec.size:
            fcode = rec["feature"].astype(np.intp)
            in_range = fcode < cutoff.size
            fcode_safe = np.where(in_range, fcode, 0)
            mask = in_range & (rec["at"] >= cutoff[fcode_safe])
            if excluded is not None:
                keys = (subj << 32) | rec["item"].astype(np.int64)
                mask &= ~np.isin(keys, excluded)
            if not mask.all():
                rec, subj, fcode_safe = rec[mask], subj[mask], fcode_safe[mask]
        else:
            fcode_safe = np.zeros(0, dtype=np.intp)
        item_codes, item_idx = np.unique(rec["item"], return_inverse=True)
        if user is not None:  # one person's many records: no need to sort their codes
            user_idx = np.zeros(rec.size, dtype=np.intp)
            users = np.array([user] if rec.size else [], dtype=object)
        else:
            user_codes, user_idx = np.unique(subj, return_inverse=True)
            users = self._user_ids(user_codes)
        if item_codes.size and int(item_codes[-1]) >= self._item_table.size:
            self._sync_items()
        items = self._item_table[item_codes]
        return EventColumns(
            users=users,
            items=items,
            features=features,
            user=user_idx.astype(np.int32),
            item=item_idx.astype(np.int32),
            feature=local[fcode_safe].astype(np.int16),
            value=rec["value"].copy(),
            at=rec["at"].astype("datetime64[us]"),
        )

    def _user_ids(self, codes: np.ndarray) -> np.ndarray:
        """The string ids of the people with subject ``codes``."""
        if not codes.size:
            return np.array([], dtype=object)
        self._con.execute("CREATE TEMP TABLE IF NOT EXISTS _touched(id INTEGER PRIMARY KEY)")
        self._con.execute("DELETE FROM temp._touched")
        self._con.executemany(
            "INSERT INTO temp._touched(id) VALUES (?)", [(c,) for c in codes.tolist()]
        )
        ext = dict(
            self._con.execute(
                "SELECT s.id, s.ext FROM subjects s JOIN temp._touched t ON t.id = s.id"
            ).fetchall()
        )
        return np.array(list(map(ext.__getitem__, codes.tolist())), dtype=object)

    # ------------------------------------------------------------------ rights
    def export(self, user: str) -> dict[str, Any]:
        """Everything held about ``user``, as a JSON-serialisable dict (GDPR Art. 15 and 20).

        The shape (``format_version`` 1) is documented in ``docs/export-format.md``: the
        person's consent history and current state per purpose, every event held (with its
        feature, data category, allowed purposes and whether it is inside retention), the
        audit-log entries about them since their last erasure, and the definitions needed
        to read it. For a person erased (and not back since), ``erased`` is true and
        nothing about them is returned: no audit entries, no pseudonym, no times; the
        export itself is recorded under no one.
        """
        with self._lock:
            self._refresh()
            user = _check_id(user, "user")
            now = self._now()
            now_us = _to_us(now)
            code = self._subject_code(user, create=False)
            pseudonym = self.pseudonym(user)
            erased = code is None and self._con.execute(
                "SELECT 1 FROM suppressed WHERE pseudonym = ?", (pseudonym,)
            ).fetchone() is not None
            history = self.consent_history(user)
            events: list[dict[str, Any]] = []
            if code is not None:
                rec = self._person_events(code)
                self._sync_items()
                by_code = {fid: (name, spec) for name, (fid, spec) in self._features.items()}
                for r in rec.tolist():
                    item_code, fcode, _, value, at, _ = r
                    name, spec = by_code[fcode]
                    inside = (
                        spec.retention_days is None or at >= now_us - spec.retention_days * _DAY_US
                    )
                    events.append(
                        {
                            "item": self._item_ext[item_code],
                            "feature": name,
                            "category": spec.category,
                            "value": value,
                            "at": _from_us(at).isoformat(),
                            "purposes": list(spec.purposes),
                            "within_retention": inside,
                        }
                    )
            current = (
                {
                    p: (None if r is None else r.model_dump(mode="json"))
                    for p, r in self.consent_status(user).items()
                }
                if code is not None
                else dict.fromkeys(self._purposes)
            )
            with self._tx():
                # an erased person's export names no one: nothing new is linked to them
                seq = self.audit.append(
                    "export", {"events": len(events)}, subject=None if erased else pseudonym
                )
            profiling = _profiling.exported(self._con, code, _from_us)
            shown = [r.model_dump(mode="json") for r in self.shown(user)] if code else []
            audit = [] if erased else [
                e.model_dump(mode="json")
                for e in self.audit.entries(subject=pseudonym, since=self._erased_at(pseudonym))
            ]
            ledger = [
                {"seq": s, "at": at, "purpose": p, "charge": json.loads(c)}
                for s, at, p, c in self._con.execute(
                    "SELECT seq, at, purpose, charge FROM privacy_ledger ORDER BY seq"
                )
            ]
        return {
            "format": "persona.export",
            "format_version": EXPORT_FORMAT_VERSION,
            "store_id": self.store_id,
            "exported_at": now.isoformat(),
            "held": code is not None,
            "erased": erased,
            "subject": {"id": user, "pseudonym": None if erased else pseudonym},
            "consent": {
                "current": current,
                "history": [r.model_dump(mode="json") for r in history],
            },
            "events": events,
            "feedback": [f.model_dump(mode="json") for f in self.feedback_of(user)],
            "profiling": profiling,
            "shown": shown,
            "purposes": {n: s.model_dump(mode="json") for n, (_, s) in self._purposes.items()},
            "features": {n: s.model_dump(mode="json") for n, (_, s) in self._features.items()},
            "audit": audit,
            "audit_seq": seq,
            "privacy_ledger": ledger,
        }

    def _erased_at(self, pseudonym: str) -> int:
        """The audit entry of the person's last erasure (0 if never erased)."""
        row = self._con.execute(
            "SELECT max(seq) FROM audit WHERE action = 'erase' AND subject = ?", (pseudonym,)
        ).fetchone()
        return int(row[0] or 0)

    def erase(self, user: str) -> EraseReport:
        """Erase everything held about ``user``: events, consent history, feedback, the id
        itself and the items only they had (unless declared with :meth:`define_items`),
        also from the file's free pages and write-ahead log.

        The audit log keeps a pseudonymous record that an erasure happened. The id is then
        suppressed: later events for it are refused until the person grants consent again.
        Erasing someone not held still records the suppression.
        """
        with self._lock:
            self._refresh()
            user = _check_id(user, "user")
            pseudonym = self.pseudonym(user)
            try:
                with self._tx():
                    code = self._subject_code(user, create=False)
                    events = consents = 0
                    items: set[int] = set()
                    if code is not None:
                        rec = self._person_events(code)
                        events = int(rec.size)
                        items = set(np.unique(rec["item"]).tolist())
                        items.update(
                            r[0] for r in self._con.execute(
                                "SELECT item_id FROM feedback WHERE subject_id = ?", (code,)
                            )
                        )
                        self._purge_eids(np.sort(rec["eid"]))
                        self._merge(
                            [
                                r[0]
                                for r in self._con.execute(
                                    "SELECT id FROM segments WHERE bucket = ?", (bucket_of(code),)
                                )
                            ],
                            lambda _, subj: subj != code,
                        )
                        consents = self._con.execute(
                            "DELETE FROM consent_events WHERE subject_id = ?", (code,)
                        ).rowcount
                        self._con.execute("DELETE FROM consent_state WHERE subject_id = ?", (code,))
                        self._con.execute("DELETE FROM feedback WHERE subject_id = ?", (code,))
                        _shown.erase(self._con, code)  # shown records, profiling choice
                        self._con.execute("DELETE FROM subjects WHERE id = ?", (code,))
                        self._drop_orphan_items(items)
                    self._con.execute(
                        "INSERT OR REPLACE INTO suppressed(pseudonym, at) VALUES (?, ?)",
                        (pseudonym, _to_us(self._now())),
                    )
                    self._bump("generation")
                    seq = self.audit.append(
                        "erase",
                        {"events": events, "consent_events": consents, "held": code is not None},
                        subject=pseudonym,
                    )
            finally:
                self._clear_subjects()
                self._eids = EventIdIndex()
            self._checkpoint()
            self._refresh()
            return EraseReport(
                subject=pseudonym,
                events=events,
                consent_events=consents,
                held=code is not None,
                audit_seq=seq,
            )

    def _purge_eids(self, eids: np.ndarray) -> None:
        if eids.size == 0:
            return
        for chunk_id, blob in self._con.execute("SELECT id, eids FROM eid_chunks").fetchall():
            arr = np.frombuffer(blob, dtype="<u8")
            hit = np.isin(arr, eids, assume_unique=False)
            if hit.any():
                self._con.execute(
                    "UPDATE eid_chunks SET eids = ? WHERE id = ?", (arr[~hit].tobytes(), chunk_id)
                )

    def _checkpoint(self) -> None:
        """Move the write-ahead log into the file and truncate it, so no old page survives."""
        if self.path == ":memory:":
            return
        busy, _, _ = self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise StoreError(
                "the erasure is committed, but another connection is still reading an older "
                "snapshot, so the write-ahead log could not be emptied yet; close other "
                "readers and call store.erase(...) again to finish scrubbing the file"
            )

    # ------------------------------------------------------------------ explanations
    def record_explanation(self, user: str, explanation: Any) -> int:
        """Record that ``user`` was shown ``explanation`` (GDPR Art. 15 transparency).

        ``explanation`` is a :class:`persona.explain.Explanation` (or any JSON-serialisable
        mapping). The audit log gets an ``explanation_shown`` entry under the person's
        pseudonym whose detail holds only a keyed digest of the explanation; the
        explanation itself is kept apart and erased with the person, because it names
        items they chose. Returns the audit sequence number. A person who was erased is
        refused (:class:`~persona.errors.SuppressedSubjectError`) until they grant consent
        again, as their events and feedback are.

        Examples
        --------
        >>> import persona
        >>> store = persona.Store(":memory:")
        >>> seq = store.record_explanation("u1", {"item": "sku-9", "text": "We picked it."})
        >>> [e["explanation"]["item"] for e in store.shown_explanations("u1")]
        ['sku-9']
        """
        import json

        user = _check_id(user, "user")
        dump = getattr(explanation, "model_dump", None)
        if not callable(dump) and not isinstance(explanation, Mapping):
            raise ValidationError(
                f"field 'explanation': give an Explanation or a dict, not a "
                f"{type(explanation).__name__}",
                errors=[{"row": None, "field": "explanation", "message": "not a dict"}],
            )
        try:
            doc = dump(mode="json") if callable(dump) else dict(explanation)
            body = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
            digest = hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
        except (TypeError, ValueError) as exc:  # mixed keys, a lone surrogate, a cycle
            raise ValidationError(
                f"field 'explanation' cannot be stored as JSON: {exc}",
                errors=[{"row": None, "field": "explanation", "message": "not JSON"}],
            ) from None
        with self._lock:
            self._refresh()
            with self._tx():
                pseudonym = self.pseudonym(user)
                refuse_if_erased(self._con, pseudonym, "what they were shown")
                code = self._subject_code(user, create=True)
                seq = self.audit.append("explanation_shown", {"digest": digest},
                                        subject=pseudonym)
                self._con.execute(
                    "INSERT INTO shown_explanations(seq, subject_id, body) VALUES (?, ?, ?)",
                    (seq, code, body),
                )
            return seq

    def shown_explanations(self, user: str) -> list[dict[str, Any]]:
        """Explanations ``user`` was shown, oldest first: those recorded with
        :meth:`record_explanation` and those a Personalizer recorded itself (one per item
        served, sharing their request's ``seq``). Each is ``seq`` (audit entry), ``at``,
        ``explanation`` (as recorded; for served items ``item``, ``label``, ``text``,
        ``rank``, ``score``, ``kind``, ``reasons_digest``, ``model_version``, ``purpose``)
        and ``verified`` (it matches the digest in the audit log). :meth:`shown` gives the
        same as typed records."""
        return _shown.as_explanations(self.shown(user))

    def read_for_serving(self, purpose: str, user: str) -> Served:
        """Consent, lineage, not-interested items and the non-profiling choice of ``user``
        for ``purpose``, read now in one snapshot (what a serving request needs). The
        read's audit entry waits in ``served.pending``: pass it to :meth:`enqueue_serving`
        (with what was shown, if anything) so that it is committed."""
        return _serving.read_for_serving(self, purpose, user)

    def enqueue_serving(self, pending: _shown.Pending) -> None:
        """Queue a serving request (its read's audit entry and what it showed) for the
        store's next group commit, within 0.05 s (see :meth:`flush`)."""
        self._journal.add(pending)

    def last_shown(self, user: str, item: str, at: datetime,
                   purpose: str | None = None) -> _shown.ShownRecord | None:
        """The latest record of ``item`` shown to ``user`` at or before ``at`` (for
        ``purpose``, if given), or ``None``."""
        return _shown.last_shown(self, user, item, at, purpose)

    def shown(self, user: str, *, newest_first: bool = False) -> list[_shown.ShownRecord]:
        """What ``user`` was shown and is still held, oldest first (``newest_first=True``
        for the other order): every item a :class:`persona.Personalizer` served them (it
        records by default), and every explanation recorded with
        :meth:`record_explanation`, as :class:`~persona.store.ShownRecord`.

        Records past the shown-record retention (:meth:`set_shown_retention`, 90 days by
        default) are never returned, and are deleted by :meth:`apply_retention`; all of a
        person's records are deleted by :meth:`erase`, and are part of :meth:`export`.

        Examples
        --------
        >>> import persona
        >>> store = persona.Store(":memory:")
        >>> _ = store.record_explanation("u1", {"item": "sku-9", "text": "We picked it."})
        >>> [(r.item, r.text, r.source, r.verified) for r in store.shown("u1")]
        [('sku-9', 'We picked it.', 'record_explanation', True)]
        """
        user = _check_id(user, "user")
        if not isinstance(newest_first, bool):
            raise ValidationError(
                f"newest_first must be True or False, not {newest_first!r}",
                errors=[{"row": None, "field": "newest_first", "message": "not a bool"}],
            )
        return _shown.records(self, user, newest_first=newest_first)

    def reasons_digest(self, reasons: Any) -> str:
        """The keyed digest of an explanation's reasons as :meth:`shown` records it
        (``ShownRecord.reasons_digest``): give the full list of reasons of an explanation
        (or the explanation) to check that it is the one that was shown."""
        reasons = getattr(reasons, "reasons", reasons)
        if isinstance(reasons, str | bytes | Mapping) or not isinstance(reasons, Iterable):
            raise ValidationError(
                f"give an explanation or its list of reasons, not a {type(reasons).__name__}",
                errors=[{"row": None, "field": "reasons", "message": "not a list"}],
            )
        return _shown.reasons_digest(self._key, reasons)

    @property
    def shown_retention_days(self) -> int | None:
        """How many days shown records are kept (``None``: until the person is erased)."""
        with self._lock:
            self._check_open()
            return _shown.retention_days(self._con)

    def set_shown_retention(self, days: int | None) -> None:
        """Keep shown records (:meth:`shown`) for ``days`` days (1 to 36500; ``None``: until
        the person is erased). Older records are never returned, and
        :meth:`apply_retention` deletes them. Recorded in the audit log."""
        days = _shown.check_retention(days)
        with self._lock:
            self._refresh()
            with self._tx():
                _shown.set_retention(self, days)

    # ------------------------------------------------------------------ profiling choice
    def prefer_non_profiling(self, user: str, *, source: str = "api") -> bool:
        """Record that ``user`` wants recommendations not based on profiling them (DSA
        Art. 38): a :class:`persona.Personalizer` then serves them its non-profiling
        (popularity) list, saying why, until :meth:`allow_profiling`. Their consent is
        left as it is. Recorded in the audit log, exported, erased with them. Returns
        whether it changed anything.

        Examples
        --------
        >>> import persona
        >>> store = persona.Store(":memory:")
        >>> store.prefer_non_profiling("u1", source="settings page")
        True
        >>> store.prefers_non_profiling("u1"), store.allow_profiling("u1")
        (True, True)
        >>> store.prefers_non_profiling("u1")
        False
        """
        return self._profiling_choice(user, True, source)

    def allow_profiling(self, user: str, *, source: str = "api") -> bool:
        """Undo :meth:`prefer_non_profiling`: lists may be based on ``user`` again (as their
        consent allows). Recorded in the audit log. Returns whether it changed anything."""
        return self._profiling_choice(user, False, source)

    def prefers_non_profiling(self, user: str) -> bool:
        """Whether ``user`` asked for lists not based on profiling them."""
        user = _check_id(user, "user")
        with self._lock:
            self._refresh()
            code = self._subject_code(user, create=False)
            return _profiling.choice(self._con, code) is not None

    def _profiling_choice(self, user: str, non_profiling: bool, source: str) -> bool:
        user = _check_id(user, "user")
        if not isinstance(source, str) or not source.strip():
            raise ValidationError(
                f"source must say where the choice was made (a str), e.g. "
                f"source='settings page', not {source!r}",
                errors=[{"row": None, "field": "source", "message": "invalid"}],
            )
        _check_utf8(source, "source")
        with self._lock:
            self._refresh()
            with self._tx():
                return _profiling.set_choice(
                    self, user, non_profiling, source, _to_us(self._now())
                )

    # ------------------------------------------------------------------ stats
    def stats(self) -> dict[str, int]:
        """Counts of people, items, events, segments and audit entries held."""
        with self._lock:
            self._refresh()
            q = self._con.execute
            return {
                "people": q("SELECT count(*) FROM subjects").fetchone()[0],
                "items": q("SELECT count(*) FROM items").fetchone()[0],
                "events": q("SELECT coalesce(sum(n), 0) FROM segments").fetchone()[0],
                "segments": q("SELECT count(*) FROM segments").fetchone()[0],
                "audit_entries": self.audit.head()[0],
            }


def _distinct_sorted(values: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array (``np.unique`` without its sort)."""
    return values[np.r_[True, values[1:] != values[:-1]]] if values.size else values


def _is_utf8(text: str) -> bool:
    """Whether ``text`` can be stored (a lone surrogate cannot be written as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_utf8(text: str, field: str) -> None:
    if not _is_utf8(text):
        raise ValidationError(
            f"field '{field}': {text[:80]!r} holds a lone surrogate, which cannot be stored; "
            "give valid Unicode text",
            errors=[{"row": None, "field": field, "message": "lone surrogate"}],
        )


def _as_tuple(values: Any, field: str, example: str) -> tuple[Any, ...]:
    """``values`` (a list, a tuple, ...) as a tuple; a str or a non-iterable is refused."""
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise ValidationError(
            f"field '{field}': give a list, not a {type(values).__name__}; e.g. "
            f"{field}={example}",
            errors=[{"row": None, "field": field, "message": "not a list"}],
        )
    return tuple(values)


def _validated(model: Any, **values: Any) -> Any:
    try:
        return model(**values)
    except PydanticValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(x) for x in err["loc"])
        raise ValidationError(
            f"invalid {model.__name__.removesuffix('Spec').lower()} definition: field "
            f"'{field}': {err['msg']} (got {err.get('input')!r})",
            errors=[{"row": None, "field": field, "message": err["msg"]}],
        ) from None


def _json_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _time_ordered(blob: bytes, parts: int) -> np.ndarray:
    """Records from :meth:`Store._person_blob`, oldest first (a stable sort by time)."""
    rec = np.frombuffer(blob, dtype=EVENT_DTYPE)
    return rec[np.argsort(rec["at"], kind="stable")] if parts > 1 else rec


def _time_ordered_tuples(blob: bytes, parts: int) -> list[_RecordTuple]:
    """:func:`_time_ordered` as tuples of :data:`EVENT_DTYPE`'s fields."""
    records = list(_RECORD.iter_unpack(blob))
    if parts > 1:
        records.sort(key=_AT)
    return records


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


def _store_path(path: Any) -> str:
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


MAX_TIMEOUT_S = 86_400.0


def _store_timeout(timeout: Any) -> float:
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


def _no_events(features: tuple[str, ...]) -> EventColumns:
    """Empty event columns for ``features``."""
    return EventColumns(
        users=np.array([], dtype=object),
        items=np.array([], dtype=object),
        features=features,
        user=np.zeros(0, dtype=np.int32),
        item=np.zeros(0, dtype=np.int32),
        feature=np.zeros(0, dtype=np.int16),
        value=np.zeros(0),
        at=np.zeros(0, dtype="datetime64[us]"),
    )


def _check_id(value: Any, field: str) -> str:
    """The id in NFC, by persona's one id rule (:func:`persona.schema.check_id`)."""
    return check_id(value, field)


def _parse_time(value: datetime | str, field: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            value = None  # type: ignore[assignment]
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(
            f"field '{field}' needs a time with a time zone ({FIX['at']})",
            errors=[{"row": None, "field": field, "message": "no time zone"}],
        )
    return value
