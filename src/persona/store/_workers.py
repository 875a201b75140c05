"""The :class:`~persona.Store` methods of the serving state every worker shares (issue 21):
the curation of each purpose and the model registry. :class:`WorkerMethods` is a base of
``Store``; like the rest of the façade it calls modules by job (:mod:`._curation`,
:mod:`._registry`) with the store's database handle. How a Personalizer picks changes up
is described in ``docs/guides/backend.md`` ("Many workers")."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from persona.schema import Curation, ModelVersion
from persona.store import _curation, _registry

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = ["WorkerMethods"]


class WorkerMethods:
    """What a :class:`~persona.Store` holds for every serving worker (see the module
    docstring)."""

    _db: Db

    # ------------------------------------------------------------------ curation
    def set_curation(
        self,
        purpose: str,
        *,
        pin: Sequence[str] | Mapping[str, int] = (),
        block: Iterable[str] = (),
        reason: str,
        by: str | None = None,
    ) -> Curation:
        """Replace ``purpose``'s curation: pin items to positions and block items, for
        everyone, with a reason people read (:meth:`persona.Personalizer.curate` calls
        this, after checking that pinned items can be served).

        ``pin`` is a list (positions 1, 2, … in order) or ``{item: position}``; an item
        may not be both pinned and blocked. Written in one transaction with an
        ``curation`` audit entry; the returned curation's ``version`` counts the
        purpose's curations. Every Personalizer on the purpose, in any process, applies it
        within its ``refresh_every``. Bad input raises :class:`~persona.ValidationError`
        and changes nothing.

        >>> import persona
        >>> store = persona.Store(":memory:")
        >>> store.define_purpose("recs", description="Suggest products")
        >>> c = store.set_curation("recs", pin=["sku-1"], block=["sku-9"], reason="Sale")
        >>> c.pin, sorted(c.block), c.version
        ({'sku-1': 1}, ['sku-9'], 1)
        >>> store.curation("recs").reason
        'Sale'
        """
        return _curation.set_curation(self._db, purpose, pin, block, reason, by)

    def curation(self, purpose: str) -> Curation:
        """``purpose``'s curation now (an empty one of ``version`` 0 when none was set)."""
        return _curation.curation(self._db, purpose)

    # ------------------------------------------------------------------ model registry
    def publish_model(
        self,
        purpose: str,
        *,
        version: str,
        folder: str | os.PathLike[str],
        sha256: str,
        model_class: str,
    ) -> ModelVersion:
        """Register a saved Personalizer folder as a new version of ``purpose``'s model
        and make it live; recorded in the audit log (``model_publish``, ``model_live``).

        :meth:`persona.Personalizer.publish` saves the folder and calls this; ``sha256`` is
        the ``sha256`` field of the folder's ``personalizer.json``, which binds its parts,
        and a worker loads the folder only when it matches. A version already published
        raises :class:`~persona.ValidationError` (make it live again with
        :meth:`set_live_model`)."""
        return _registry.publish(self._db, purpose, version, folder, sha256, model_class)

    def model_versions(self, purpose: str) -> list[ModelVersion]:
        """Every published version of ``purpose``'s model, oldest first (``live``: the one
        served now)."""
        return _registry.model_versions(self._db, purpose)

    def live_model(self, purpose: str) -> ModelVersion | None:
        """The version of ``purpose``'s model every worker serves, or ``None`` when none
        was published."""
        return _registry.live_model(self._db, purpose)

    def set_live_model(self, purpose: str, version: str) -> ModelVersion:
        """Make a published ``version`` live again: a rollback (or a roll forward); every
        Personalizer on the purpose loads it within its ``refresh_every``. Recorded in the
        audit log (``model_live``). A version never published raises
        :class:`~persona.ValidationError` naming the latest ones, and changes nothing."""
        return _registry.set_live(self._db, purpose, version)

    def serving_versions(self, purpose: str) -> tuple[int, int]:
        """``(curation version, live-model changes)`` of ``purpose``: two counters that
        grow with every curation and every change of the live model (0: none yet). One
        small read, no write and no audit entry: what a Personalizer checks every
        ``refresh_every`` seconds to notice a change made by another worker."""
        return _registry.serving_versions(self._db, purpose)
