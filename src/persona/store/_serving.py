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

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from persona.schema import PersonLineage
from persona.store import _profiling
from persona.store._reads import person_read, serving_fields
from persona.store._shown import Pending

if TYPE_CHECKING:
    from persona._columns import EventColumns
    from persona.schema import FeatureSpec
    from persona.store._db import Db

__all__ = ["Served", "history_for_serving", "read_for_serving"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    later: list[Pending] = field(default_factory=list)
    """Reads made while serving this request (:func:`history_for_serving`), queued for
    the group commit after :attr:`pending`, in the order they were made."""

    @property
    def non_profiling(self) -> bool:
        return self.non_profiling_since is not None


def read_for_serving(db: Db, purpose: str, user: str) -> Served:
    """Consent, lineage, not-interested items and the non-profiling choice of ``user`` for
    ``purpose``, read now in one snapshot; the audit entry of the read waits in the
    returned request (see the module docstring)."""
    with db.lock, db.snapshot():
        fields, not_interested, code = serving_fields(db, purpose, user)
        chosen = _profiling.choice(db.con, code)
        features = db.feature_specs()
    pending = Pending(
        pseudonym=db.pseudonym(user), code=code,
        detail={"purpose": purpose, "rows": fields["rows"], "lineage": True},
        at=fields["read_at"], purpose=purpose,
    )
    return Served(
        person=PersonLineage(**fields), not_interested=not_interested,
        non_profiling_since=None if chosen is None else _EPOCH + timedelta(microseconds=chosen[0]),
        features=features, pending=pending,
    )



def history_for_serving(db: Db, served: Served, user: str) -> EventColumns:
    """``user``'s events usable for the purpose of ``served`` now (what
    ``ScopedView.history`` reads), read in a snapshot as :func:`read_for_serving` reads:
    its audit entry waits in ``served.later`` for the request's group commit, so that a
    serving request that re-folds a person takes no write lock (and does not wait for
    another process's write)."""
    purpose = served.pending.purpose
    with db.lock, db.snapshot():
        cols, _, _, code = person_read(db, purpose, user, lineage=False, events=True)
        at = db.now()
    served.later.append(Pending(
        pseudonym=db.pseudonym(user), code=code,
        detail={"purpose": purpose, "rows": len(cols), "lineage": False},
        at=at, purpose=purpose,
    ))
    return cols
