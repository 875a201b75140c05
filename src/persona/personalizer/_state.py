"""The serving state one fit produces, and what each person's model row was built from.

A :class:`ServingState` is swapped in whole (see ``Personalizer.fit``), so no request sees
half of one. Its ``basis`` remembers, per person, a digest of the usable events their row
was built from; a request whose person's usable data now differs re-folds them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from persona._columns import EventColumns
from persona.models import Popularity, Recommender
from persona.personalizer._rwlock import RWLock

if TYPE_CHECKING:
    from persona.schema import PersonLineage
    from persona.store import ScopedView

__all__ = [
    "NOTHING", "Capture", "OnePerson", "ServingState", "block", "decay_reference", "digest",
    "drop", "prune", "signature", "signatures",
]


@dataclass
class ServingState:
    """Everything one fit produced. Swapped in whole, so no call sees half of it."""

    model: Recommender
    fallback: Popularity
    labels: dict[str, str]
    fitted_at: datetime
    version: str = ""
    """The serving state's version id (see ``Personalizer.model_version_``)."""
    lock: RWLock = field(default_factory=RWLock)
    basis: dict[str, int] = field(default_factory=dict)
    """Per person, what their model row was built from: a 64-bit digest of ``(events,
    first, last)`` of their usable events then (times in µs; see :func:`digest`). A
    request whose person's usable data now differs (events past retention, excluded,
    added) re-folds them from their current history; a person without an entry (a
    folder saved by an older persona) is re-folded on their first request. Saved with
    the model (``basis.npz``), so a restarted service serves unchanged people at once."""


class OnePerson:
    """A view-like wrapper over one person's events, for ``Interactions.from_view``."""

    lineage = None

    def __init__(self, cols: EventColumns) -> None:
        self._cols = cols

    def events(self) -> EventColumns:
        return self._cols


class Capture:
    """A view that keeps the events it returned, so that a fit knows what each person's
    row was built from (see ``ServingState.basis``)."""

    def __init__(self, view: ScopedView) -> None:
        self._inner = view
        self.cols: EventColumns | None = None

    def events(self) -> EventColumns:
        self.cols = self._inner.events()
        return self.cols

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def block(state: ServingState, blocked: Iterable[str]) -> None:
    """Give the serving model and fallback the curation's block set (every path of theirs
    leaves the items out)."""
    state.model.block(blocked)
    state.fallback.block(blocked)


def prune(state: ServingState, consented: set[str]) -> None:
    """Remove from the model and the fallback everyone not in ``consented``; the caller
    holds the state's write lock or owns a state not yet serving."""
    for part in (state.model, state.fallback):
        for user in [str(u) for u in part.users_ if str(u) not in consented]:
            part.forget(user)
    for user in [u for u in state.basis if u not in consented]:
        del state.basis[user]


def drop(state: ServingState, user: str) -> None:
    """Take a person without consent out of the serving model and the fallback at
    once (the fallback keeps each person's history to recount without them)."""
    if any(part.has_user(user) for part in (state.model, state.fallback)):
        with state.lock.write():
            for part in (state.model, state.fallback):
                if part.has_user(user):
                    part.forget(user)
            state.basis.pop(user, None)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def digest(signature: tuple[int, ...]) -> int:
    """A 64-bit digest of a person's ``(events, first, last)``: what is compared, and
    saved, instead of the counts and times themselves."""
    return int.from_bytes(
        hashlib.blake2b(repr(signature).encode(), digest_size=8).digest(), "little")


NOTHING = digest((0,))  # a person with no usable events


def signatures(cols: EventColumns) -> dict[str, int]:
    """Per person in ``cols``: the :func:`digest` of ``(events, first, last)`` of their
    events (times in µs)."""
    codes = np.asarray(cols.user, dtype=np.int64)
    if codes.size == 0:
        return {}
    at = np.asarray(cols.at, dtype="datetime64[us]").astype(np.int64)
    n = len(cols.users)
    rows = np.bincount(codes, minlength=n)
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, codes, at)
    np.maximum.at(last, codes, at)
    have = np.flatnonzero(rows)
    users = np.asarray(cols.users, dtype=object)[have].tolist()
    return {
        str(u): digest((r, f, la))
        for u, r, f, la in zip(
            users, rows[have].tolist(), first[have].tolist(), last[have].tolist(), strict=True
        )
    }


def signature(person: PersonLineage) -> int:
    """The same digest, from a person's lineage read now."""
    if not person.rows:
        return NOTHING
    return digest((
        person.rows,
        (min(f.first_at for f in person.used) - _EPOCH) // _US,
        (max(f.last_at for f in person.used) - _EPOCH) // _US,
    ))


def decay_reference(half_life: timedelta | None) -> datetime | None:
    """The public reference time of ``half_life`` decay: the time of the fit or fold-in
    (never the latest event, which would let one person's late event move everyone's
    weights)."""
    return None if half_life is None else datetime.now(UTC)
