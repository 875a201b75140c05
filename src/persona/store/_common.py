"""Small checks and conversions every module of the store uses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from persona.errors import ValidationError
from persona.schema import check_id
from persona.store._validate import FIX

__all__ = [
    "DAY_US", "US", "as_tuple", "check_id", "check_utf8", "from_us", "is_utf8", "parse_time",
    "to_us", "validated",
]

US = 1_000_000
DAY_US = 86_400 * US


def is_utf8(text: str) -> bool:
    """Whether ``text`` can be stored (a lone surrogate cannot be written as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_utf8(text: str, field: str) -> None:
    if not is_utf8(text):
        raise ValidationError(
            f"field '{field}': {text[:80]!r} holds a lone surrogate, which cannot be stored; "
            "give valid Unicode text",
            errors=[{"row": None, "field": field, "message": "lone surrogate"}],
        )


def as_tuple(values: Any, field: str, example: str) -> tuple[Any, ...]:
    """``values`` (a list, a tuple, ...) as a tuple; a str or a non-iterable is refused."""
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise ValidationError(
            f"field '{field}': give a list, not a {type(values).__name__}; e.g. "
            f"{field}={example}",
            errors=[{"row": None, "field": field, "message": "not a list"}],
        )
    return tuple(values)


def validated(model: Any, **values: Any) -> Any:
    try:
        return model(**values)
    except PydanticValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(x) for x in err["loc"])
        raise ValidationError(
            f"invalid {model.__name__.removesuffix('Spec').lower()} definition: field "
            f"'{field}': {err['msg']} (got {err.get('input')!r})",
            errors=[{"row": None, "field": field, "message": err["msg"]}],
        ) from None


def parse_time(value: datetime | str, field: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            value = None  # type: ignore[assignment]
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(
            f"field '{field}' needs a time with a time zone ({FIX['at']})",
            errors=[{"row": None, "field": field, "message": "no time zone"}],
        )
    return value


def to_us(dt: datetime) -> int:
    return round(dt.timestamp() * US)


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / US, tz=UTC)
