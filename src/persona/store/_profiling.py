"""A person's choice of lists not based on profiling them (DSA Art. 38).

The choice is kept per person (table ``profiling``: since when, and from where), recorded
in the audit log under their pseudonym (``prefer_non_profiling`` / ``allow_profiling``),
exported with their data and erased with them. It is not a withdrawal of consent: their
consent stays as it is for every other use; a serving layer reads the choice with the
person's consent (``persona.store._serving``) and serves the non-profiling list while it
is set.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from persona.errors import ValidationError
from persona.store._common import check_id, check_utf8, to_us
from persona.store._subjects import subject_code
from persona.store._suppression import refuse_if_erased

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = [
    "choice", "exported", "prefers_non_profiling", "profiling_choice", "set_choice",
]


def set_choice(db: Db, user: str, non_profiling: bool, source: str, when: int) -> bool:
    """Set or clear the choice, in the caller's write transaction. Returns whether it
    changed anything."""
    con = db.con
    pseudonym = db.pseudonym(user)
    if non_profiling:
        refuse_if_erased(con, pseudonym, "their choice")
    if non_profiling:
        code = subject_code(db, user, create=True)
        changed = con.execute(
            "INSERT OR IGNORE INTO profiling(subject_id, at, source) VALUES (?, ?, ?)",
            (code, when, source),
        ).rowcount
    else:
        code = subject_code(db, user, create=False)
        changed = 0 if code is None else con.execute(
            "DELETE FROM profiling WHERE subject_id = ?", (code,)
        ).rowcount
    db.audit.append(
        "prefer_non_profiling" if non_profiling else "allow_profiling",
        {"source": source, "changed": bool(changed)}, subject=pseudonym,
    )
    return bool(changed)


def choice(con: Any, code: int | None) -> tuple[int, str] | None:
    """``(since, source)`` of the person's non-profiling choice, or ``None``."""
    if code is None:
        return None
    row = con.execute("SELECT at, source FROM profiling WHERE subject_id = ?", (code,)).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def exported(con: Any, code: int | None, from_us: Any) -> dict[str, Any]:
    """The choice as :meth:`persona.Store.export` gives it."""
    c = choice(con, code)
    since: datetime | None = None if c is None else from_us(c[0])
    return {
        "non_profiling": c is not None,
        "since": None if since is None else since.isoformat(),
        "source": None if c is None else c[1],
    }


def prefers_non_profiling(db: Db, user: str) -> bool:
    """Whether ``user`` asked for lists not based on profiling them."""
    user = check_id(user, "user")
    with db.lock:
        db.refresh()
        code = subject_code(db, user, create=False)
        return choice(db.con, code) is not None


def profiling_choice(db: Db, user: str, non_profiling: bool, source: str) -> bool:
    user = check_id(user, "user")
    if not isinstance(source, str) or not source.strip():
        raise ValidationError(
            f"source must say where the choice was made (a str), e.g. "
            f"source='settings page', not {source!r}",
            errors=[{"row": None, "field": "source", "message": "invalid"}],
        )
    check_utf8(source, "source")
    with db.lock:
        db.refresh()
        with db.transaction():
            return set_choice(
                db, user, non_profiling, source, to_us(db.now())
            )
