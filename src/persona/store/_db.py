"""The database handle every module of the store works through: the backend seam.

:class:`~persona.Store` is a façade: its public methods check their arguments and call
functions of modules by job (``_definitions``, ``_consent``, ``_subjects``, ``_ingest``,
``_segments``, ``_reads``, ``_lineage``, ``_rights``, ``_catalogue``, ``_ledger``,
``_audit``, ``_shown``, ``_profiling``, ``_serving``), each taking one handle ``db`` as its
first argument. :class:`Db` says what those modules need of it; it holds no logic of its
own beyond transactions and caches:

* **the connection** (``con``: a DB-API connection whose statements are the SQL the
  modules run), the re-entrant ``lock`` every public method holds, ``check_open``;
* **transactions**: :meth:`Db.transaction` (a write transaction, at the start of which
  the caches are made current, the journal of serving requests is written and the audit
  log learns its head), :meth:`Db.read_transaction` (a read with its audit entry, written
  without a sync), :meth:`Db.snapshot` (a read with no write at all);
* **caches** kept current by ``refresh``: the definitions (``purposes``, ``features``,
  ``plans``), person and item codes (``subjects``, ``item_ext``, ``item_code``,
  ``item_table``, ``sync_items``), the event-id index (``eids``), privacy rows checked;
* **pseudonyms**: the key and :meth:`Db.pseudonym`; the audit log (``audit``) and the
  journal of serving requests (``journal``).

The one implementation today is :class:`persona.store._sqlite.SqliteDb`, the single place
that knows SQLite's pragmas (``synchronous``, ``data_version``, ``wal_checkpoint``), how
the file is opened, created and migrated (``_sql``) and how the pseudonym key is kept
(``_keys``). A server database (PostgreSQL, a later issue) implements this protocol: the
same caches and transactions over its own connection, with ``data_version`` replaced by a
change counter in ``meta`` and ``BEGIN IMMEDIATE`` by a row lock on it. The modules' SQL is
plain SQL except for what SQLite spells its own way (``INSERT OR REPLACE``/``OR IGNORE``,
``temp.`` tables, ``RETURNING``); those statements are the ones to give a dialect there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from persona.schema import FeatureSpec, PurposeSpec
    from persona.store._audit import AuditLog
    from persona.store._eidindex import EventIdIndex
    from persona.store._rows import RowMemo
    from persona.store._shown import ShownJournal

__all__ = ["Db"]


class Db(Protocol):
    """What the store's modules need of a database handle (see the module docstring)."""

    path: str
    store_id: str
    con: Any
    lock: threading.RLock
    clock: Callable[[], datetime]
    audit: AuditLog
    journal: ShownJournal
    key: bytes
    # caches, current after ``refresh`` (inside a transaction: as of its start)
    generation: int
    purposes: dict[str, tuple[int, PurposeSpec]]
    features: dict[str, tuple[int, FeatureSpec]]
    plans: dict[str | None, tuple[Any, ...]]
    subjects: dict[str, int]
    subjects_upto: int
    item_ext: list[str]
    item_code: dict[str, int]
    item_table: np.ndarray
    eids: EventIdIndex
    privacy_memo: RowMemo
    tx_meta: dict[str, str] | None
    meta_after: dict[str, str] | None
    version_after: int

    def now(self) -> datetime:
        """The store clock's time (timezone-aware)."""
        ...

    def check_open(self) -> None:
        """Raise ``StoreError`` when the handle is closed."""
        ...

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[None]:
        """A write transaction with current id caches; synced when ``durable``."""
        ...

    def read_transaction(self) -> AbstractContextManager[None]:
        """A transaction for a read and its audit entry (no sync), caches refreshed."""
        ...

    def large_write(self, rows: int) -> AbstractContextManager[None]:
        """Around a write transaction of about ``rows`` rows: room to hold its pages (a
        larger page cache on SQLite), as before afterwards."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """A read-only transaction with current caches (no write, no commit)."""
        ...

    def refresh(self) -> None:
        """Reload the caches another process (or an erasure) may have made stale."""
        ...

    def bump(self, key: str) -> None:
        """Add one to the counter ``key`` of ``meta`` (``generation``, ``defs_version``)."""
        ...

    def sync_items(self) -> None:
        """Read item rows added since the item cache was last read."""
        ...

    def clear_subjects(self) -> None:
        """Forget the cached person and item codes."""
        ...

    def clear_items(self) -> None:
        """Forget the cached item codes."""
        ...

    def temp_ids(self, name: str, codes: list[int]) -> None:
        """Fill the temporary table ``name`` with the integer ids ``codes``."""
        ...

    def pseudonym(self, user: str) -> str:
        """The keyed pseudonym under which the audit log names ``user``."""
        ...

    def pseudonyms(self, users: list[str]) -> list[str]:
        """The pseudonyms of ``users``, ids already checked (:func:`check_id`)."""
        ...

    def purpose_id(self, purpose: str) -> int:
        """The id of a defined purpose (``UnknownPurposeError`` otherwise)."""
        ...

    def feature_specs(self) -> dict[str, FeatureSpec]:
        """Features by name, as the caches hold them."""
        ...

    def checkpoint(self) -> None:
        """Make sure no old page of an erased person survives in a log or free page."""
        ...

    def flush(self) -> None:
        """Commit what waits in the journal of serving requests."""
        ...

    def flush_background(self) -> None:
        """:meth:`flush` from the journal's background writer, without holding ``lock``
        while the write lock is awaited (serving reads go on meanwhile)."""
        ...

    def close(self) -> None:
        """Flush, then close the connection."""
        ...

