"""Helpers shared by the store tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import persona


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now = self.now + timedelta(**delta)


def shop(path: str = ":memory:", clock: Clock | None = None) -> persona.Store:
    """A store with two purposes and three features, as a small shop would set it up."""
    store = persona.Store(path, clock=clock)
    store.define_purpose("personalization", description="Recommend products from what you buy")
    store.define_purpose("analytics", description="Count visits to improve the shop")
    store.define_purpose(
        "ads",
        description="Show our ads on other sites",
        sharing=True,
        tcf_purposes=(1, 3, 4),
        consent_mode=("ad_user_data", "ad_personalization"),
    )
    store.define_feature(
        "purchases",
        purposes=["personalization", "analytics"],
        category="purchase history",
        retention_days=730,
    )
    store.define_feature(
        "views", purposes=["personalization"], category="browsing history", retention_days=30
    )
    store.define_feature(
        "location", purposes=["ads"], category="approximate location", retention_days=None
    )
    return store


def event(
    user: str = "u1", item: str = "sku-9", feature: str = "purchases", **kw: Any
) -> dict[str, Any]:
    e: dict[str, Any] = {
        "user": user,
        "item": item,
        "feature": feature,
        "value": 1.0,
        "at": "2026-11-01T10:00:00Z",
    }
    e.update(kw)
    return e


def own_connection(store: persona.Store) -> sqlite3.Connection:
    """A ``sqlite3`` connection of the test's own to the store's file (``store.path`` is
    public), in autocommit mode: for tests that look into the file or tamper with it on
    purpose, as another program holding the file could. The caller closes it."""
    if store.path == ":memory:":
        raise ValueError("an in-memory store has no file to open: give the store a path")
    return sqlite3.connect(store.path, isolation_level=None, timeout=60)


def file_rows(store: persona.Store, sql: str, params: Any = ()) -> list[Any]:
    """The rows of ``sql`` run on the store's file through a connection of the test's own."""
    with closing(own_connection(store)) as con:
        return con.execute(sql, params).fetchall()


def fingerprint(store: persona.Store) -> tuple[Any, ...]:
    """Everything observable about a store's content, to prove nothing changed.

    A store with a file is read through a connection of the test's own. An in-memory
    store's database exists only inside its one connection, which no public name reaches:
    for it this reads ``store._con`` (allowlisted, issue 19)."""
    if store.path == ":memory:":
        con: Any = store._con
    else:
        con = own_connection(store)
    tables = (
        "subjects",
        "items",
        "consent_events",
        "consent_state",
        "segments",
        "eid_chunks",
        "suppressed",
        "audit",
        "purposes",
        "features",
    )
    try:
        return tuple(
            tuple(con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()) for t in tables
        )
    finally:
        if store.path != ":memory:":
            con.close()


def writer_process(path: str, worker: int, batches: int, size: int) -> None:
    """Run in a child process: ingest, grant and read against a shared store file."""
    store = persona.Store(path, timeout=60)
    for b in range(batches):
        user = f"w{worker}-{b}"
        store.grant(user, "personalization", source="multi-process test")
        store.ingest([event(user, f"sku-{i}", value=float(i + 1)) for i in range(size)])
        store.scope("personalization").history(user)
        if b % 5 == 0:
            store.scope("personalization").events()
    store.close()


def file_bytes(path: Path) -> bytes:
    """Every byte of a store file on disk: the file and its write-ahead log, shared
    memory and rollback journal, where they exist."""
    out = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(path) + suffix)
        if p.exists():
            out += p.read_bytes()
    return out


def ingest_when_new(store: persona.Store, clock: Clock, events: list[dict[str, Any]]) -> Any:
    """Ingest ``events`` as they arrived: with ``clock`` set to the latest one's time, then
    back to where it was. Ingest refuses events already outside their feature's retention
    (issue 22), so this is how a test holds events that have aged past it since."""
    now = clock.now
    clock.now = max(datetime.fromisoformat(str(e["at"])) for e in events)
    try:
        return store.ingest(events)
    finally:
        clock.now = now


@contextmanager
def retention_lifted(store: persona.Store) -> Iterator[None]:
    """Inside: every feature keeps events until erasure; after: the features' retention as
    before. Events ingested inside are held past retention, as in a store whose retention
    was shortened after they arrived (ingest refuses events already outside it)."""
    specs = store.features
    for name, spec in specs.items():
        store.define_feature(name, purposes=spec.purposes, category=spec.category,
                             retention_days=None, max_value=spec.max_value)
    try:
        yield
    finally:
        for name, spec in specs.items():
            store.define_feature(name, purposes=spec.purposes, category=spec.category,
                                 retention_days=spec.retention_days, max_value=spec.max_value)


def ratings_store() -> persona.Store:
    """An in-memory store with one purpose and one feature (``ratings``) kept forever."""
    store = persona.Store(":memory:")
    store.define_purpose("personalization", description="Recommend films from your ratings")
    store.define_feature("ratings", purposes=["personalization"], category="ratings",
                         retention_days=None)
    return store


def two_groups(store: persona.Store, source: str = "signup form") -> list[dict[str, Any]]:
    """Twelve people granting personalization, and their purchases in two groups of
    items (even people: sku-1 to sku-4, odd: sku-5 and sku-6; a few left out): the events,
    for the caller to add to and ingest."""
    people = [f"p{k}" for k in range(12)]
    for p in people:
        store.grant(p, "personalization", source=source, notice_version="2026-10")
    events = []
    for k, p in enumerate(people):
        group = ["sku-1", "sku-2", "sku-3", "sku-4"] if k % 2 == 0 else ["sku-5", "sku-6"]
        for j, it in enumerate(group):
            if (k + j) % 4 != 3:
                events.append(event(p, it, "purchases", at=f"2026-10-0{1 + j}T10:00:00Z"))
    return events

