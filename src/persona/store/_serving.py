"""The read a serving request makes, without a commit of its own.

``Personalizer.recommend`` needs, for one person and at one moment: their consent and
lineage for the purpose, the items they said they are not interested in, their
non-profiling choice and the feature definitions. :func:`read_for_serving` reads all of
them in one read transaction (a snapshot: no write lock, no commit), and returns with them
a :class:`~persona.store._shown.Pending` request holding the audit entry of that read. The
caller adds what it showed and hands it to the store's journal, which group-commits it
(see :mod:`persona.store._shown`): the read's entry and the shown record are written
together, in order, and a request costs no commit of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from persona.schema import PersonLineage
from persona.store import _profiling
from persona.store._shown import Pending

if TYPE_CHECKING:
    from persona.schema import FeatureSpec
    from persona.store._store import Store

__all__ = ["Served", "read_for_serving"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TX_META = "SELECT key, value FROM meta WHERE key IN ('generation', 'defs_version', 'audit_head')"


@dataclass
class Served:
    """What one serving read found."""

    person: PersonLineage
    """Their lineage (``audit_seq`` is ``None``: the entry is written with the batch)."""
    not_interested: set[str]
    non_profiling_since: datetime | None
    """When they asked for lists not based on them (``store.prefer_non_profiling``), if
    they did."""
    features: dict[str, FeatureSpec]
    pending: Pending

    @property
    def non_profiling(self) -> bool:
        return self.non_profiling_since is not None


@contextmanager
def snapshot(store: Store) -> Iterator[None]:
    """A read transaction in which the store's id and definition caches are current (the
    read counterpart of ``Store._tx``: an erasure by another process clears them)."""
    store._check_open()
    con = store._con
    con.execute("BEGIN")
    try:
        version = con.execute("PRAGMA data_version").fetchone()[0]
        meta = store._meta_after if version == store._version_after else None
        if meta is None:
            meta = dict(con.execute(_TX_META).fetchall())
        store._tx_meta = dict(meta)
        store._refresh()
        yield
    finally:
        store._tx_meta = None
        con.execute("COMMIT")  # nothing was written


def read_for_serving(store: Store, purpose: str, user: str) -> Served:
    """Consent, lineage, not-interested items and the non-profiling choice of ``user`` for
    ``purpose``, read now in one snapshot; the audit entry of the read waits in the
    returned request (see the module docstring)."""
    with store._lock, snapshot(store):
        _, fields, not_interested, code = store._person_read(
            purpose, user, lineage=True, events=False
        )
        assert fields is not None
        chosen = _profiling.choice(store._con, code)
        features = store._feature_specs()
    pending = Pending(
        pseudonym=store.pseudonym(user), code=code,
        detail={"purpose": purpose, "rows": fields["rows"], "lineage": True},
        at=fields["read_at"], purpose=purpose,
    )
    return Served(
        person=PersonLineage(**fields), not_interested=not_interested,
        non_profiling_since=None if chosen is None else _EPOCH + timedelta(microseconds=chosen[0]),
        features=features, pending=pending,
    )

