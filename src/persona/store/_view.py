"""Scoped views: the only read path for modelling code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persona._columns import EventColumns
from persona.schema import BudgetLedger, FeatureSpec, Lineage, PersonLineage
from persona.store import _catalogue, _consent, _definitions, _ledger, _parquet, _reads

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = ["ScopedView"]


class ScopedView:
    """A read-only view of a store for one purpose.

    Every read checks consent, allowed features and retention *at the time of that read*
    and is recorded in the store's audit log; a view never caches personal data, so a
    withdrawal or erasure is seen by the next read on any view. Views have no write methods.

    Examples
    --------
    >>> import persona
    >>> store = persona.Store(":memory:")
    >>> store.define_purpose("personalization", description="Suggest products")
    >>> store.define_feature("purchases", purposes=["personalization"],
    ...                      category="purchase history", retention_days=None)
    >>> _ = store.grant("u1", "personalization", source="signup form v3")
    >>> _ = store.ingest([{"user": "u1", "item": "sku-9", "feature": "purchases",
    ...                    "at": "2026-11-01T10:00:00Z"}])
    >>> view = store.scope("personalization")
    >>> cols = view.events()
    >>> list(cols.users), list(cols.items), cols.features
    (['u1'], ['sku-9'], ('purchases',))
    >>> view.lineage.rows
    1
    """

    __slots__ = ("_db", "_last", "_purpose")

    def __init__(self, db: Db, purpose: str) -> None:
        self._db = db
        self._purpose = purpose
        self._last: Lineage | None = None

    @property
    def purpose(self) -> str:
        """The purpose every read of this view serves."""
        return self._purpose

    @property
    def store_id(self) -> str:
        return self._db.store_id

    @property
    def features(self) -> dict[str, FeatureSpec]:
        """The store's feature definitions by name (which purposes each may serve): the
        rules of the reads, not anyone's data. Explanations built from a view say with them
        what a left-out feature is allowed for."""
        return _definitions.feature_specs(self._db)

    def events(self) -> EventColumns:
        """All events usable for the purpose now, as arrays ready for a sparse matrix.

        Only people whose latest consent event for the purpose is a grant, only features
        allowed for the purpose, only events inside each feature's retention window.
        """
        cols, lineage = _reads.events(self._db, self._purpose)
        self._last = lineage
        return cols

    def to_pandas(self) -> Any:
        """:meth:`events` as a tidy ``pandas.DataFrame``: one row per event usable for the
        purpose now, with columns ``user``, ``item``, ``feature`` (``category``), ``value``
        (``float64``) and ``at`` (``datetime64[us, UTC]``); see
        :meth:`persona.store.EventColumns.to_pandas`. A read like :meth:`events`: consent,
        features and retention are checked now, it is recorded in the audit log and it
        sets :attr:`lineage`. Needs pandas (``pip install 'persona[pandas]'``).

        ``view.history(user).to_pandas()`` gives one person's events the same way.
        """
        return self.events().to_pandas()

    def to_arrow(self) -> Any:
        """:meth:`to_pandas` as a ``pyarrow.Table`` (a read like :meth:`events`). Needs
        pyarrow (``pip install 'persona[arrow]'``)."""
        return self.events().to_arrow()

    def to_parquet(
        self, folder: str | os.PathLike[str], *, partitions: int, overwrite: bool = False
    ) -> Path:
        """:meth:`events` written as ``partitions`` Parquet files in ``folder``, split by a
        hash of the person, for a cluster to read lazily (``dd.read_parquet(folder)``).
        Returns the folder. Needs pyarrow (``pip install 'persona[arrow]'``).

        One read like :meth:`events`, in one snapshot: only people whose consent to the
        purpose is active now, only features allowed for it, retention and "don't use"
        feedback applied. It sets :attr:`lineage` and is recorded by one audit entry,
        ``scoped_export`` (purpose, rows, people, items, features, partitions, the folder
        and the manifest's digest; no person's id).

        The folder holds ``part-00000.parquet`` ... (columns ``user``, ``item``,
        ``feature``: ``dictionary<int32, string>``; ``value``: ``double``; ``at``:
        ``timestamp[us, tz=UTC]``; ``partition``: ``int64``) and ``_manifest.json``: the
        format, purpose, time of the read, the read's lineage, rows, people and SHA-256 of
        each file, the rule of the partitions, and the audit entry (``seq`` and
        ``manifest_sha256``, the SHA-256 of the manifest without its ``audit`` part as
        JSON with sorted keys and no spaces). Dataset readers skip names that begin with
        ``_``, so they read the parts only.

        Every event of one person is in the same file: partition
        ``int.from_bytes(blake2b(id.encode("utf-8"), digest_size=8).digest(), "big") %
        partitions``, the same on every machine and for every store, whatever its
        pseudonym key (a plain hash of the id the rows hold anyway, so the file a person
        is in reveals nothing more; not the keyed pseudonym, which would link the files to
        the audit log's entries).

        The files are written into a hidden sibling folder and renamed into place at the
        end: a failure leaves neither (nor an audit entry). A folder that exists must be
        empty; ``overwrite=True`` replaces an earlier export, never other files.

        **Erasure does not reach an export.** The folder is a copy outside the store, like
        a published model folder: erasing or withdrawing a person later changes the store,
        not the files. Export again after an erasure (or before every job) and delete the
        older folders; the audit log lists every export and its folder
        (``store.audit.entries(action="scoped_export")``).

        Raises
        ------
        ValidationError
            ``partitions`` not an int from 1 to 4096, ``folder`` not a path, a file, or
            a folder that is not empty (without ``overwrite``, or not an export).
        MissingDependencyError
            pyarrow is not installed.
        """
        out, lineage = _parquet.to_parquet(
            self._db, self._purpose, folder, partitions, overwrite
        )
        self._last = lineage
        return out

    def history(self, user: str) -> EventColumns:
        """One person's events usable for the purpose now (empty without active consent)."""
        return _reads.history(self._db, self._purpose, user)

    def history_with_lineage(self, user: str) -> tuple[EventColumns, PersonLineage]:
        """One person's usable events, and what was used and left out of their data and why
        (declined, withdrawn, not allowed for this purpose, outside retention), in one read."""
        return _reads.history_with_lineage(self._db, self._purpose, user)

    def person_lineage(self, user: str) -> PersonLineage:
        """What a read for this purpose uses of ``user``'s data, and what it leaves out
        (consent checked now; recorded in the audit log like any read)."""
        return _reads.person_lineage(self._db, self._purpose, user)

    def person_for_serving(self, user: str) -> tuple[PersonLineage, set[str]]:
        """:meth:`person_lineage` and :meth:`not_interested` in one read (one transaction,
        one audit entry): what a serving request checks before it scores."""
        return _reads.person_for_serving(self._db, self._purpose, user)

    def has_consent(self, user: str) -> bool:
        """Whether ``user``'s consent to this purpose is active now."""
        return _consent.has_consent(self._db, user, self._purpose)

    def users(self) -> list[str]:
        """People with usable events for the purpose now."""
        return [str(u) for u in self.events().users]

    def items(self) -> list[str]:
        """Items that appear in usable events for the purpose now."""
        return [str(i) for i in self.events().items]

    def not_interested(self, user: str) -> set[str]:
        """Items ``user`` said they are not interested in (never suggest these to them).

        A read of their data like any other, recorded in the audit log; it reads no events
        and builds no lineage (:meth:`person_for_serving` gives both in one read)."""
        return _reads.not_interested(self._db, self._purpose, user)

    def catalogue(self) -> list[str]:
        """The store's declared catalogue (public item universe; see
        :meth:`persona.Store.define_items`). Not personal data, so no audit entry."""
        return _catalogue.catalogue(self._db)

    def item_labels(self, items: list[str] | None = None) -> dict[str, str]:
        """Human-readable labels of items (catalogue data, not personal data)."""
        return _catalogue.item_labels(self._db, items)

    def privacy_ledger(self, *, default: tuple[float, float] | None = None) -> BudgetLedger:
        """The store's budget ledger for this view's purpose (see
        :meth:`persona.Store.privacy_ledger`): a private computation on this view reserves
        its planned spend with it *before* it reads, and settles afterwards::

            ledger = view.privacy_ledger(default=(dp.epsilon, dp.delta))
            reservation = ledger.reserve(view.purpose, planned_spents)
            ...  # read and release
            ledger.settle(reservation, spents, snapshot=f"audit#{view.lineage.audit_seq}")

        ``default`` becomes the purpose's lifetime budget if none is set. Reading the ledger
        reads no personal data and is not recorded as a read.
        """
        return _ledger.privacy_ledger(self._db, self._purpose, default)

    @property
    def lineage(self) -> Lineage:
        """Lineage of the last :meth:`events` read: purpose, features used and left out,
        consent snapshot, time of read and the audit entry that recorded it. Reads now if
        there was no read yet."""
        if self._last is None:
            self.events()
        assert self._last is not None
        return self._last

    def __repr__(self) -> str:
        return f"ScopedView(purpose={self._purpose!r}, store={self._db.path!r})"
