"""The :class:`Store` façade: the public methods of the consent-scoped feature store.

Each method checks what it is given and calls a module by job, passing the one database
handle they share (``self._db``, see :mod:`persona.store._db` for what it holds and the
backend seam): ``_definitions``, ``_consent``, ``_ingest``, ``_segments`` (compaction and
retention), ``_reads`` (scoped reads with lineage, through :class:`ScopedView`),
``_rights`` (feedback, export, erasure, explanations shown), ``_catalogue``, ``_ledger``,
``_audit``, ``_shown``, ``_serving`` and ``_profiling``. The methods about one person
(feedback, export, erasure, what they were shown, their profiling choice) are written in
:class:`~persona.store._people.PersonMethods`, a base of ``Store``; those of the serving
state every worker shares (curation, the model registry) in
:class:`~persona.store._workers.WorkerMethods`. The SQLite file is opened by
:class:`~persona.store._sqlite.SqliteDb`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Literal

from persona.schema import (
    BudgetLedger,
    FeatureSpec,
    IngestReport,
    PrivacyBudgetPolicy,
    PrivacyCharge,
    PurposeSpec,
)
from persona.store import (
    _audit,
    _catalogue,
    _definitions,
    _ingest,
    _ledger,
    _segments,
    _shown,
)
from persona.store._consent_methods import ConsentMethods
from persona.store._ledger import StoreChargeStorage
from persona.store._people import PersonMethods
from persona.store._sqlite import SqliteDb
from persona.store._view import ScopedView
from persona.store._workers import WorkerMethods

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = ["Store", "StoreChargeStorage"]


class Store(ConsentMethods, PersonMethods, WorkerMethods):
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
        db: Db = SqliteDb(  # the backend seam: any Db works (see persona.store._db)
            path, timeout=timeout, durability=durability, clock=clock,
            pseudonym_key=pseudonym_key,
        )
        self._db = db
        self.path = db.path
        self.store_id: str = db.store_id
        self.audit = db.audit

    # ------------------------------------------------------------------ plumbing
    def pseudonym(self, user: str) -> str:
        """The pseudonym under which the audit log refers to ``user`` (a keyed hash)."""
        return self._db.pseudonym(user)

    def close(self) -> None:
        """Commit what waits in the journal (:meth:`flush`), then close the file. The store
        cannot be used afterwards."""
        self._db.close()

    def flush(self) -> None:
        """Commit now the audit entries of serving reads and the shown records that wait
        in this handle's journal (they are group-committed within 0.05 s anyway, and
        before anything reads them back; see :meth:`shown`)."""
        self._db.flush()

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
        return _definitions.purpose_specs(self._db)

    @property
    def features(self) -> dict[str, FeatureSpec]:
        """Defined features by name."""
        return _definitions.feature_specs(self._db)

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
        return _definitions.define_purpose(
            self._db, name, description=description, sharing=sharing,
            tcf_purposes=tcf_purposes, consent_mode=consent_mode,
        )

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
        return _definitions.define_feature(
            self._db, name, purposes=purposes, category=category,
            retention_days=retention_days, description=description, max_value=max_value,
        )

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
        return _ingest.ingest(
            self._db, events, on_invalid=on_invalid, at_unit=at_unit, tz=tz, dedupe=dedupe
        )

    # ------------------------------------------------------------------ segments and retention
    def compact(self) -> int:
        """Merge each bucket's segments into one (faster reads after many small batches).
        Returns the number of people whose events were rewritten."""
        return _segments.compact(self._db)

    def apply_retention(self) -> int:
        """Delete events that are past their feature's retention window from the file,
        and shown records past theirs (:meth:`set_shown_retention`).

        Reads already ignore such events and records; this also removes them from disk.
        Returns the number of events deleted. Run it on a schedule (e.g. daily).
        """
        return _segments.apply_retention(self._db)

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
        return _audit.record(self._db, action, detail, user=user)

    # ------------------------------------------------------------------ privacy ledger
    def charge_storage(self) -> StoreChargeStorage:
        """The store's persisted privacy ledger, for :class:`persona.privacy.BudgetLedger`.

        Lines (charges, reservations, settlements) survive restarts, are append-only (SQL
        triggers refuse edits), are recorded in the audit log and appear in :meth:`export`
        for reviewers. Appends are atomic across processes (one ``BEGIN IMMEDIATE``
        transaction with the ledger's check).
        """
        return StoreChargeStorage(self._db)

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
        return _ledger.set_budget(self._db, purpose, epsilon, delta, period_days)

    def privacy_budget(self, purpose: str) -> tuple[float, float] | None:
        """The configured (ε, δ) for ``purpose`` (in total, or per period: see
        :meth:`privacy_budget_policy`), or ``None`` if none was set."""
        policy = _ledger.budget_policy(self._db, purpose)
        return None if policy is None else (policy.epsilon, policy.delta)

    def privacy_budget_policy(self, purpose: str) -> PrivacyBudgetPolicy | None:
        """``purpose``'s budget policy (ε, δ, ``period_days``, when it was set), or ``None``."""
        return _ledger.budget_policy(self._db, purpose)

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
        return _ledger.privacy_ledger(self._db, purpose, default)

    def privacy_charges(self, purpose: str | None = None) -> list[PrivacyCharge]:
        """The privacy ledger's charges for ``purpose`` (every purpose if ``None``), oldest
        first: settled charges (``status="settled"``) and reservations not settled yet
        (``status="reserved"``, at their reserved amount; they count against the budget until
        settled, also when the process that made them stopped)."""
        return _ledger.privacy_charges(self._db, purpose)

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
        return _catalogue.define_items(self._db, items)

    def catalogue(self) -> list[str]:
        """The declared catalogue (public item universe), in the order it was declared.

        Items are declared by :meth:`define_items` and :meth:`label_items`; items that only
        appear in events are not part of it.
        """
        return _catalogue.catalogue(self._db)

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
        return _catalogue.label_items(self._db, labels)

    def item_labels(self, items: Iterable[str] | None = None) -> dict[str, str]:
        """Labels of ``items`` (all labelled items if ``None``); unlabelled items are left out."""
        return _catalogue.item_labels(self._db, items)

    # ------------------------------------------------------------------ reads
    def scope(self, purpose: str) -> ScopedView:
        """A read-only view of the data usable for ``purpose``: the only read path for models.

        Each read on the view checks consent and retention at the time of that read, so a
        withdrawal or erasure takes effect at the next read.
        """
        db = self._db
        with db.lock:
            db.refresh()
            db.purpose_id(purpose)
        return ScopedView(db, purpose)

    # ------------------------------------------------------------------ stats
    def stats(self) -> dict[str, int]:
        """Counts of people, items, events, segments and audit entries held."""
        with self._db.lock:
            self._db.refresh()
            q = self._db.con.execute
            return {
                "people": q("SELECT count(*) FROM subjects").fetchone()[0],
                "items": q("SELECT count(*) FROM items").fetchone()[0],
                "events": q("SELECT coalesce(sum(n), 0) FROM segments").fetchone()[0],
                "segments": q("SELECT count(*) FROM segments").fetchone()[0],
                "audit_entries": self._db.audit.head()[0],
            }

    # ------------------------------------------------------------------ the handle
    # What tests of the file format, of concurrency and of the journal look at.
    @property
    def _con(self) -> Any:
        return self._db.con

    @property
    def _key(self) -> bytes:
        return self._db.key

    @property
    def _lock(self) -> Any:
        return self._db.lock

    @property
    def _journal(self) -> _shown.ShownJournal:
        return self._db.journal

    @property
    def _subjects(self) -> dict[str, int]:
        return self._db.subjects

    @property
    def _subjects_upto(self) -> int:
        return self._db.subjects_upto

    @property
    def _meta_after(self) -> dict[str, str] | None:
        return self._db.meta_after

    def _tx(self, *, durable: bool = True) -> AbstractContextManager[None]:
        return self._db.transaction(durable=durable)
