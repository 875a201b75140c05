"""The declared item catalogue: the public item universe of private fits.

Items live once in the ``items`` table (id, external id, label); the ``catalogue`` table
lists the ones a shop declared, in the order they were declared. Declaration needs no event
and says nothing about any person.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from persona.errors import ValidationError
from persona.store._common import as_tuple, check_id, is_utf8

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = [
    "catalogue", "catalogue_items", "declare_items", "define_items", "item_labels", "label_items",
]


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


def define_items(db: Db, items: Iterable[str] | Mapping[str, str]) -> int:
    """Declare items of the public catalogue (product ids, optionally with their titles)."""
    if isinstance(items, Mapping):
        return label_items(db, items)
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise ValidationError(
            f"field 'items': give a list of item ids (or a mapping id -> title), not "
            f"{type(items).__name__}",
            errors=[{"row": None, "field": "items", "message": "not a list"}],
        )
    ids = list(dict.fromkeys(check_id(item, "item") for item in items))
    with db.lock:
        db.check_open()
        with db.transaction():
            declare_items(db.con, [(i, None) for i in ids])
            db.audit.append("define_items", {"items": len(ids)})
        return len(ids)


def catalogue(db: Db) -> list[str]:
    """The declared catalogue (public item universe), in the order it was declared."""
    with db.lock:
        db.check_open()
        return catalogue_items(db.con)


def label_items(db: Db, labels: Mapping[str, str]) -> int:
    """Give items human-readable labels (product titles), used in explanations."""
    if not isinstance(labels, Mapping):
        raise ValidationError(
            f"field 'labels': give a mapping item id -> title, not {type(labels).__name__}",
            errors=[{"row": None, "field": "labels", "message": "not a mapping"}],
        )
    rows = []
    for item, label in labels.items():
        item = check_id(item, "item")
        if (not isinstance(label, str) or not label.strip() or len(label) > 500
                or not is_utf8(label)):
            raise ValidationError(
                f"field 'label' of item {item!r}: give a non-empty title of at most 500 "
                f"characters, not {label!r}",
                errors=[{"row": None, "field": "label", "message": "invalid label"}],
            )
        rows.append((item, label.strip()))
    with db.lock:
        db.check_open()
        with db.transaction():
            declare_items(db.con, rows)
            db.audit.append("label_items", {"items": len(rows)})
        return len(rows)


def item_labels(db: Db, items: Iterable[str] | None = None) -> dict[str, str]:
    """Labels of ``items`` (all labelled items if ``None``); unlabelled items are left out."""
    with db.lock:
        db.check_open()
        if items is None:
            return dict(
                db.con.execute("SELECT ext, label FROM items WHERE label IS NOT NULL")
            )
        items = as_tuple(items, "items", "['sku-1']")
        wanted = list(dict.fromkeys(check_id(i, "item") for i in items))
        db.con.execute("CREATE TEMP TABLE IF NOT EXISTS _ids(ext TEXT PRIMARY KEY)")
        db.con.execute("DELETE FROM temp._ids")
        db.con.executemany("INSERT INTO temp._ids(ext) VALUES (?)", [(i,) for i in wanted])
        return dict(
            db.con.execute(
                "SELECT i.ext, i.label FROM items i JOIN temp._ids t ON t.ext = i.ext "
                "WHERE i.label IS NOT NULL"
            )
        )
