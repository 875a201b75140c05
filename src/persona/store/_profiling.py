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

from persona.store._suppression import refuse_if_erased

if TYPE_CHECKING:
    from persona.store._store import Store

__all__ = ["choice", "set_choice"]


def set_choice(store: Store, user: str, non_profiling: bool, source: str, when: int) -> bool:
    """Set or clear the choice, in the caller's write transaction. Returns whether it
    changed anything."""
    con = store._con
    pseudonym = store.pseudonym(user)
    if non_profiling:
        refuse_if_erased(con, pseudonym, "their choice")
    if non_profiling:
        code = store._subject_code(user, create=True)
        changed = con.execute(
            "INSERT OR IGNORE INTO profiling(subject_id, at, source) VALUES (?, ?, ?)",
            (code, when, source),
        ).rowcount
    else:
        code = store._subject_code(user, create=False)
        changed = 0 if code is None else con.execute(
            "DELETE FROM profiling WHERE subject_id = ?", (code,)
        ).rowcount
    store.audit.append(
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
