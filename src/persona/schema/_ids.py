"""The one rule for ids of people and items, applied at every edge of persona (the store,
the interactions, the models, the files and the command line).

An id is a ``str`` or an ``int``. An int (Python's, or any numpy integer) is the same id
as its decimal string: ``170``, ``numpy.int64(170)`` and ``"170"`` are one person, kept,
stored and returned as ``"170"``, so a model fitted on a pandas column of integers answers
``recommend(170)`` and a store holds one person under one id however the id was typed.
A ``bool`` is never an id (``True`` is not person 1) and a ``float`` is refused (``170.0``
is most often an integer column that pandas turned into floats because of missing values).

The id as a str is not blank, at most :data:`MAX_ID_LENGTH` characters long, holds
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

import numbers
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from persona.errors import ValidationError

__all__ = ["ID_RULE", "MAX_ID_LENGTH", "check_id", "check_id_list", "check_ids", "check_top_n"]

MAX_ID_LENGTH = 512
ID_RULE = (
    "an id is a str or an int (never a bool or a float); an int is the same id as its "
    "decimal string (170 is '170'); the str is non-blank, at most 512 characters, without "
    "control characters or lone surrogates, compared in Unicode NFC"
)
_FLOAT_FIX = (
    "Give integer ids as int, not float: a pandas column of integer ids turns float "
    "(170 becomes 170.0) when some are missing; drop or fill the missing ones and convert, "
    "e.g. df.dropna(subset=[col]).astype({col: 'int64'}), or read it as the nullable "
    "'Int64' dtype (pd.read_csv(..., dtype={col: 'Int64'}))"
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
        The id as given: a str, or an int (Python or numpy), which becomes its decimal
        string.
    field
        The name of the parameter, for the error message (``"user"``, ``"item"``, ...).

    Returns
    -------
    str
        The id in normal form NFC.

    Raises
    ------
    persona.errors.ValidationError
        If ``value`` is neither a str nor an int (a bool and a float are refused), is
        blank, is longer than 512 characters, or holds a control character or a lone
        surrogate. The message names the rule and the field.

    Examples
    --------
    >>> check_id("ana", "user")
    'ana'
    >>> check_id("Jose\\u0301", "user") == "Jos\\u00e9"  # NFD in, NFC out
    True
    >>> check_id(170, "user")  # an int is its decimal string
    '170'
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
        return _from_number(value, field)
    text = str(value)  # a str subclass becomes a plain str
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(text, field, "it contains a lone surrogate",
                      "Decode the id from its bytes correctly (UTF-8)") from None
    if _CONTROL.search(text):
        raise _refuse(text, field, "it contains a control character",
                      "Remove control characters such as '\\x00' or newlines from the id")
    text = unicodedata.normalize("NFC", text)
    if not text.strip():
        raise _refuse(text, field, "it is empty or blank", "Give a non-empty id, e.g. 'u1'")
    if len(text) > MAX_ID_LENGTH:
        raise _refuse(text, field, f"it is longer than {MAX_ID_LENGTH} characters",
                      "Use a shorter id (a key, not a document)")
    return text


def _from_number(value: Any, field: str) -> str:
    """An int (not a bool) as its decimal string; anything else refused with its fix."""
    if type(value).__name__ in ("bool", "bool_"):  # Python's and numpy's (not imported)
        raise _refuse(value, field, "it is a bool, and a bool is never an id",
                      "Give the id as a str or an int, e.g. 'u1' or 170")
    if isinstance(value, numbers.Integral):  # int and numpy's integers
        return check_id(str(int(value)), field)
    if isinstance(value, numbers.Real):  # float and numpy's floats
        return _raise_float(value, field)
    raise _refuse(value, field, f"it is a {type(value).__name__}, not a str or an int",
                  "Give the id as a str or an int, e.g. 'u1' or 170")


def _raise_float(value: Any, field: str) -> str:
    raise _refuse(value, field, f"it is a float ({value!r}), not a str or an int",
                  _FLOAT_FIX.replace("col", repr(field)))


def check_ids(values: list[Any], field: str) -> list[str]:
    """:func:`check_id` of each of ``values`` (a list): the same list when every id is
    printable ASCII (checked in one pass), else a new list of the NFC ids (ints as their
    decimal strings).

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
    if joined is None and values and set(map(type, values)) <= {str, int}:
        # ints (as pandas' tolist() gives them) and strs: the ints' strings, then the rule
        return check_ids([v if type(v) is str else str(v) for v in values], field)
    seen: dict[Any, str] = {}
    out = []
    for v in values:
        c = seen.get(v) if type(v) is str else None
        if c is None:
            c = check_id(v, field)
            seen[v] = c
        out.append(c)
    return out


def check_id_list(values: Any, field: str = "users", n: int | None = None) -> list[str]:
    """``values`` (a list, tuple, numpy array, pandas Series, ...) as a list of ids by the
    rule; one id (a str or bytes), a mapping or a non-iterable is refused, since one id is
    not a list of them; with ``n``, exactly ``n`` ids (one per list of a batch).

    >>> check_id_list(["u1", 170])
    ['u1', '170']
    """
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise ValidationError(
            f"{field} must be a list of ids, not a {type(values).__name__}; for one id "
            "pass [id]",
            errors=[{"row": None, "field": field, "message": "not a list"}],
        )
    out = check_ids(list(values), field)
    if n is not None and len(out) != n:
        raise ValidationError(
            f"{len(out)} {field} for {n} lists: pass one id per list, in order",
            errors=[{"row": None, "field": field, "message": "length differs"}],
        )
    return out


def check_top_n(n: Any, field: str = "n", *, most: int | None = None) -> int:
    """How many items a list asks for, as an ``int``: a positive integer (Python's or any
    numpy integer; never a bool, a float or a str), at most ``most`` when given. The one
    rule for ``n`` of every list persona serves (models, the Personalizer, explanations).

    >>> check_top_n(10), check_top_n(3, most=1000)
    (10, 3)
    >>> check_top_n(0)
    Traceback (most recent call last):
    ...
    persona.errors.ValidationError: n must be a positive integer, not 0
    """
    if type(n) is int and n >= 1 and (most is None or n <= most):
        return n  # the common case, at the cost of one type check
    ok = isinstance(n, numbers.Integral) and not isinstance(n, bool)
    if ok and n >= 1 and (most is None or n <= most):
        return int(n)
    rule = "a positive integer" if most is None else f"an integer from 1 to {most}"
    raise ValidationError(
        f"{field} must be {rule}, not {n!r}",
        errors=[{"row": None, "field": field,
                 "message": "out of range" if ok else "not an integer"}],
    )
