"""The one rule for ids of people and items, applied at every edge of persona.

An id is a ``str`` that is not blank, at most :data:`MAX_ID_LENGTH` characters long, holds
no control character (Unicode category ``Cc``: ``"\\x00"``, ``"\\n"``, ``"\\x7f"``, ...) and
no lone surrogate (which no file or database can store as UTF-8), and is compared in Unicode
normal form NFC: ``"José"`` typed with a combining accent (NFD) and with the precomposed
``é`` (NFC) are the same person. :func:`check_id` returns the id in NFC, so the store,
the models and the files only ever see that spelling.

Format characters (category ``Cf``, such as the zero-width joiner inside emoji sequences)
are allowed: they are part of how some names and emoji are written, and they survive
storage unchanged, so they never make two ids into one.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from persona.errors import ValidationError

__all__ = ["ID_RULE", "MAX_ID_LENGTH", "check_id", "check_ids"]

MAX_ID_LENGTH = 512
ID_RULE = (
    "an id is a non-blank str of at most 512 characters without control characters or "
    "lone surrogates, compared in Unicode NFC"
)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # exactly Unicode category Cc


def _refuse(value: Any, field: str, why: str, fix: str) -> ValidationError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ValidationError(
        f"field '{field}': {shown} is not a valid id: {why}. {fix} ({ID_RULE}).",
        errors=[{"row": None, "field": field, "message": why, "input": shown}],
        rule="id",
    )


def check_id(value: Any, field: str = "id") -> str:
    """``value`` as persona's id of a person or an item, in Unicode NFC.

    Parameters
    ----------
    value
        The id as given.
    field
        The name of the parameter, for the error message (``"user"``, ``"item"``, ...).

    Returns
    -------
    str
        The id in normal form NFC.

    Raises
    ------
    persona.errors.ValidationError
        If ``value`` is not a str, is blank, is longer than 512 characters, or holds a
        control character or a lone surrogate. The message names the rule and the field.

    Examples
    --------
    >>> check_id("ana", "user")
    'ana'
    >>> check_id("Jose\\u0301", "user") == "Jos\\u00e9"  # NFD in, NFC out
    True
    >>> try:
    ...     check_id("ana\\x00", "user")
    ... except ValidationError as exc:
    ...     print(exc.code, exc.errors[0]["message"])
    validation_error it contains a control character
    """
    # the common case: printable ASCII is already NFC and has no control character
    if (type(value) is str and value.isascii() and value.isprintable()
            and 0 < len(value) <= MAX_ID_LENGTH and not value.isspace()):
        return value
    if not isinstance(value, str):
        raise _refuse(value, field, f"it is a {type(value).__name__}, not a str",
                      "Pass the id as a string, e.g. 'u1'")
    value = str(value)  # a str subclass becomes a plain str
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(value, field, "it contains a lone surrogate",
                      "Decode the id from its bytes correctly (UTF-8)") from None
    if _CONTROL.search(value):
        raise _refuse(value, field, "it contains a control character",
                      "Remove control characters such as '\\x00' or newlines from the id")
    value = unicodedata.normalize("NFC", value)
    if not value.strip():
        raise _refuse(value, field, "it is empty or blank", "Give a non-empty id, e.g. 'u1'")
    if len(value) > MAX_ID_LENGTH:
        raise _refuse(value, field, f"it is longer than {MAX_ID_LENGTH} characters",
                      "Use a shorter id (a key, not a document)")
    return value


def check_ids(values: list[Any], field: str) -> list[str]:
    """:func:`check_id` of each of ``values`` (a list): the same list when every id is
    printable ASCII (checked in one pass), else a new list of the NFC ids.

    Examples
    --------
    >>> check_ids(["a", "Jose\\u0301"], "user") == ["a", "Jos\\u00e9"]
    True
    """
    try:
        joined = "".join(values)
    except TypeError:
        joined = None
    if (joined is not None and values and joined.isascii() and joined.isprintable()
            and min(map(len, values)) > 0 and max(map(len, values)) <= MAX_ID_LENGTH
            and (" " not in joined or not any(map(str.isspace, values)))):
        return values
    seen: dict[str, str] = {}
    out = []
    for v in values:
        c = seen.get(v) if isinstance(v, str) else None
        if c is None:
            c = check_id(v, field)
            seen[v] = c
        out.append(c)
    return out
