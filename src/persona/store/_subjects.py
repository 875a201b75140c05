"""Person ids and their subject codes: the handle's cache of codes, kept complete up to a
watermark, and the ids of codes read back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from persona.store._common import (
    to_us,
)

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = ["create_subjects", "subject_code", "uncached_subjects", "user_ids"]



def subject_code(db: Db, user: str, *, create: bool) -> int | None:
    code = db.subjects.get(user)
    if code is not None:
        return code
    row = db.con.execute("SELECT id FROM subjects WHERE ext = ?", (user,)).fetchone()
    if row is None:
        if not create:
            return None
        cur = db.con.execute(
            "INSERT INTO subjects(ext, pseudonym, created_at) VALUES (?, ?, ?)",
            (user, db.pseudonym(user), to_us(db.now())),
        )
        row = (int(cur.lastrowid or 0),)
    db.subjects[user] = row[0]
    return int(row[0])


def create_subjects(
    db: Db, new: list[str], pseudonyms: Mapping[str, str], complete: bool
) -> None:
    """Create the people ``new`` (not held, as :func:`uncached_subjects` found them), with
    their ``pseudonyms``, in that order, and cache their codes; ``complete``: the cache
    held every code before (then it stays complete up to the new codes)."""
    db.con.execute("CREATE TEMP TABLE IF NOT EXISTS _new(ext TEXT, p TEXT)")
    db.con.execute("DELETE FROM temp._new")
    db.con.executemany(
        "INSERT INTO temp._new(ext, p) VALUES (?, ?)", [(u, pseudonyms[u]) for u in new]
    )
    created = db.con.execute(
        "INSERT INTO subjects(ext, pseudonym, created_at) "
        "SELECT ext, p, ? FROM temp._new ORDER BY rowid RETURNING ext, id",
        (to_us(db.now()),),
    ).fetchall()
    db.subjects.update(created)
    if complete:  # codes after the watermark: the cache stays complete
        db.subjects_upto = max(c for _, c in created)


def uncached_subjects(db: Db, users: list[str]) -> tuple[list[str], bool]:
    """Cache the codes of held subjects among ``users``; return those not held (unique,
    in order of first appearance), and whether every held subject is now cached (then
    people created next in this transaction keep the cache complete).

    The cache is complete up to ``_subjects_upto``: codes only grow, and an erasure (the
    only delete) clears the cache through the generation. So when no code beyond it
    exists, an uncached person is a new one without asking the file; a short gap (codes
    created by another process) is read in one range query; a long one (a fresh handle
    on a large store) is answered by looking up just the uncached people."""
    cache = db.subjects
    unknown = set(users).difference(cache)
    if not unknown:
        return [], False
    missing = list(dict.fromkeys(filter(unknown.__contains__, users)))
    top = db.con.execute("SELECT max(id) FROM subjects").fetchone()[0] or 0
    upto = db.subjects_upto
    if top - upto <= max(4 * len(missing), 65536):
        if top > upto:
            cache.update(
                db.con.execute("SELECT ext, id FROM subjects WHERE id > ?", (upto,))
            )
            db.subjects_upto = top
            missing = [u for u in missing if u not in cache]
        return missing, True
    db.con.execute("CREATE TEMP TABLE IF NOT EXISTS _ids(ext TEXT PRIMARY KEY)")
    db.con.execute("DELETE FROM temp._ids")
    db.con.executemany("INSERT INTO temp._ids(ext) VALUES (?)", zip(missing))
    cache.update(
        db.con.execute(
            "SELECT s.ext, s.id FROM subjects s JOIN temp._ids t ON t.ext = s.ext"
        )
    )
    return [u for u in missing if u not in cache], False


def user_ids(db: Db, codes: np.ndarray) -> np.ndarray:
    """The string ids of the people with subject ``codes``."""
    if not codes.size:
        return np.array([], dtype=object)
    db.con.execute("CREATE TEMP TABLE IF NOT EXISTS _touched(id INTEGER PRIMARY KEY)")
    db.con.execute("DELETE FROM temp._touched")
    db.con.executemany(
        "INSERT INTO temp._touched(id) VALUES (?)", [(c,) for c in codes.tolist()]
    )
    ext = dict(
        db.con.execute(
            "SELECT s.id, s.ext FROM subjects s JOIN temp._touched t ON t.id = s.id"
        ).fetchall()
    )
    return np.array(list(map(ext.__getitem__, codes.tolist())), dtype=object)
