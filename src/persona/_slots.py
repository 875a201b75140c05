"""Setting pydantic's per-instance slots directly, for objects persona builds without
validation (values it computed itself: served recommendations and lazy explanations)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic

__all__ = ["SET_DICT", "SET_EXTRA", "SET_FIELDS", "SET_PRIVATE"]

_setattr = object.__setattr__


def _slot_setters() -> tuple[Callable[[Any, Any], None], ...]:
    """Setters of pydantic's per-instance slots, or plain ``object.__setattr__`` ones."""
    slots = pydantic.BaseModel.__dict__
    names = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__",
             "__pydantic_private__")
    try:
        return tuple(slots[name].__set__ for name in names)
    except (KeyError, AttributeError):  # pragma: no cover - other pydantic internals
        return tuple((lambda obj, v, n=name: _setattr(obj, n, v)) for name in names)


SET_DICT, SET_FIELDS, SET_EXTRA, SET_PRIVATE = _slot_setters()
