"""Issue 17, point 8: a store refuses a database that is not its own, and every way opening
a store can fail is a StoreError that says what to do."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

import persona
from store_helpers import event, shop


def _app_db(path: Path) -> bytes:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
    con.execute("INSERT INTO users(email) VALUES ('ana@example.com')")
    con.commit()
    con.close()
    return path.read_bytes()


def test_an_applications_sqlite_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    before = _app_db(db)
    with pytest.raises(persona.StoreError, match="not a persona store") as info:
        persona.Store(db)
    assert "new file" in str(info.value) and "users" in str(info.value)
    assert db.read_bytes() == before  # not even switched to WAL
    con = sqlite3.connect(db)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    assert tables == {"users"}


def test_a_foreign_table_named_meta_is_not_taken_for_the_stores(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE meta (k TEXT, v TEXT)")
    con.commit()
    con.close()
    with pytest.raises(persona.StoreError, match="not a persona store"):
        persona.Store(db)


def test_an_empty_sqlite_file_and_a_persona_file_open(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    persona.Store(empty).close()
    path = tmp_path / "p.db"
    store = shop(str(path))
    store.ingest([event()])
    store.close()
    with persona.Store(path) as again:
        assert again.stats()["events"] == 1


def test_a_store_whose_creation_was_interrupted_still_opens(tmp_path: Path) -> None:
    """Tables created but no meta rows yet (a crash between the two transactions)."""
    path = tmp_path / "p.db"
    persona.Store(path).close()
    con = sqlite3.connect(path)
    con.execute("DELETE FROM meta")
    con.commit()
    con.close()
    persona.Store(path).close()


def _text(tmp_path: Path) -> str:
    p = tmp_path / "notes.txt"
    p.write_text("these are my notes, not a database\n" * 100)
    return str(p)


def _readonly(tmp_path: Path) -> str:
    p = tmp_path / "ro.db"
    persona.Store(p).close()
    for extra in ("-wal", "-shm"):
        Path(str(p) + extra).unlink(missing_ok=True)
    p.chmod(0o444)
    return str(p)


BAD_PATHS = {
    "a text file": (_text, "not an SQLite database"),
    "a folder": (lambda t: str(t), "folder"),
    "a read-only file": (_readonly, "read-only"),
    "/dev/null": (lambda t: "/dev/null", "not a regular file"),
    "the empty string": (lambda t: "", "empty"),
    "a missing folder": (lambda t: str(t / "nope" / "p.db"), "folder"),
}


@pytest.mark.parametrize("case", sorted(BAD_PATHS))
def test_every_bad_path_is_a_store_error_that_says_what_to_do(case: str, tmp_path: Path) -> None:
    make, hint = BAD_PATHS[case]
    path = make(tmp_path)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(persona.StoreError, match=hint) as info:
        persona.Store(path)
    assert isinstance(info.value, persona.PersonaError)
    assert sorted(os.listdir(tmp_path)) == before  # no stray -wal or -shm files


@pytest.mark.parametrize("timeout", [float("nan"), -1.0, float("inf"), "30", None, True, 1e12])
def test_a_bad_timeout_is_a_store_error(timeout: object) -> None:
    with pytest.raises(persona.StoreError, match="timeout"):
        persona.Store(":memory:", timeout=timeout)  # type: ignore[arg-type]


def test_a_path_that_is_not_a_path_is_a_store_error() -> None:
    with pytest.raises(persona.StoreError, match="path"):
        persona.Store(None)  # type: ignore[arg-type]
    with pytest.raises(persona.StoreError, match="path"):
        persona.Store(b"app.db")  # type: ignore[arg-type]


@pytest.mark.parametrize("damage", ["truncated", "overwritten page"])
def test_a_damaged_store_file_is_a_store_error(damage: str, tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    store = shop(str(path))
    store.ingest([event(f"u{i}", f"i{i}") for i in range(3000)])
    store.close()
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[4096:8192] = b"\xff" * 4096
    path.write_bytes(bytes(data))
    with pytest.raises(persona.StoreError, match=r"backup|new file"):
        persona.Store(path)
