"""The declared item catalogue: the public item universe of private fits.

Items live once in the ``items`` table (id, external id, label); the ``catalogue`` table
lists the ones a shop declared, in the order they were declared. Declaration needs no event
and says nothing about any person.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

__all__ = ["catalogue_items", "declare_items"]


def declare_items(con: sqlite3.Connection, rows: Sequence[tuple[str, str | None]]) -> None:
    """Add ``(item, label)`` rows to the items table (a ``None`` label keeps the old one)
    and declare them in the catalogue, inside the caller's write transaction."""
    con.executemany(
        "INSERT INTO items(ext, label) VALUES (?, ?) "
        "ON CONFLICT(ext) DO UPDATE SET label = coalesce(excluded.label, items.label)",
        rows,
    )
    con.executemany(
        "INSERT OR IGNORE INTO catalogue(item_id) SELECT id FROM items WHERE ext = ?",
        [(item,) for item, _ in rows],
    )


def catalogue_items(con: sqlite3.Connection) -> list[str]:
    """The declared items' external ids, in declaration order."""
    return [
        r[0]
        for r in con.execute(
            "SELECT i.ext FROM catalogue c JOIN items i ON i.id = c.item_id ORDER BY c.seq"
        )
    ]
