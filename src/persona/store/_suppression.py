"""The rule after an erasure: nothing new is stored about the person until they grant
consent again (a grant lifts the suppression; see ``Store.erase`` and ``Store.grant``)."""

from __future__ import annotations

from typing import Any

from persona.errors import SuppressedSubjectError

__all__ = ["refuse_if_erased"]


def refuse_if_erased(con: Any, pseudonym: str, what: str) -> None:
    """Raise :class:`SuppressedSubjectError` if the person behind ``pseudonym`` was erased
    and has not granted consent since (call it in the write transaction, before anything
    creates their row); ``what`` names what would have been stored."""
    if con.execute("SELECT 1 FROM suppressed WHERE pseudonym = ?", (pseudonym,)).fetchone():
        raise SuppressedSubjectError(
            f"this person was erased; nothing is held about them, so {what} is not stored "
            "until they grant consent again (store.grant(...))",
            errors=[{"row": None, "field": "user", "message": "erased person"}],
        )
