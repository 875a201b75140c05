"""A bulk ingest leaves no large write-ahead log behind (reads after it would find their
pages in the log, one read() each, instead of through the memory map)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import persona
from persona.store import _sqlite as _store
from store_helpers import Clock, event, shop


def _wal(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def _batch(n: int, start: int = 0) -> list[dict[str, object]]:
    return [event(f"u{k % 50}", f"sku-{k}", id=f"e{k}") for k in range(start, start + n)]


def test_a_bulk_ingest_empties_the_write_ahead_log(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_store, "WAL_TRIM_BYTES", 1)
    path = tmp_path / "s.db"
    store = shop(str(path), clock=Clock())
    store.grant("u1", "personalization", source="test")
    store.ingest(_batch(2_000))
    assert _wal(path) == 0
    assert len(store.scope("personalization").history("u1")) == 40
    store.close()
    again = persona.Store(str(path), clock=Clock())
    assert len(again.scope("personalization").history("u1")) == 40
    again.close()


def test_a_small_ingest_leaves_the_log_to_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = shop(str(path), clock=Clock())
    store.ingest(_batch(10))
    assert 0 < _wal(path) < _store.WAL_TRIM_BYTES
    store.close()


def test_a_reader_holding_a_snapshot_does_not_block_the_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_store, "WAL_TRIM_BYTES", 1)
    path = tmp_path / "s.db"
    store = shop(str(path), clock=Clock())
    store.grant("u1", "personalization", source="test")
    store.ingest(_batch(100))
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("BEGIN")
    before = other.execute("SELECT count(*) FROM audit").fetchone()[0]
    report = store.ingest(_batch(100, start=100))  # the log cannot be emptied now
    assert report.inserted == 100
    assert _wal(path) > 0
    assert other.execute("SELECT count(*) FROM audit").fetchone()[0] == before
    other.execute("COMMIT")
    other.close()
    store.ingest(_batch(100, start=200))  # nobody reads an old snapshot now: emptied
    assert _wal(path) == 0
    assert len(store.scope("personalization").history("u1")) == 6
    store.close()


def test_any_write_that_leaves_a_large_log_empties_it(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only ingest: a retention pass or a consent change that leaves the log past the
    limit empties it too (here every write does, with the limit at one byte)."""
    clock = Clock()
    path = tmp_path / "s.db"
    store = shop(str(path), clock=clock)
    store.grant("u1", "personalization", source="test")
    store.ingest(_batch(500))
    monkeypatch.setattr(_store, "WAL_TRIM_BYTES", 1)
    store.withdraw("u1", "personalization")
    assert _wal(path) == 0
    store.ingest(_batch(10, start=500))
    monkeypatch.setattr(_store, "WAL_TRIM_BYTES", 8 << 20)
    clock.advance(days=800)  # past the purchases' 730 days
    store.apply_retention()
    assert _wal(path) > 0  # under the limit: left to SQLite
    monkeypatch.setattr(_store, "WAL_TRIM_BYTES", 1)
    store.grant("u1", "personalization", source="test")
    assert _wal(path) == 0
    store.close()
