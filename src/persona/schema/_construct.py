"""The one fast constructor: pydantic models built from values persona computed itself.

Served recommendations and their explanations are built thousands of times per second from
values persona has just computed (ids it holds, scores from the model, reasons from the
score decomposition), so they skip pydantic's validation. pydantic's public
``Model.model_construct`` does that, but it still walks every field (defaults, aliases, the
set of fields given) and costs four to five times as much as the serving path can afford
(measured for issue 19: about 3.8 µs against 0.8 µs for a :class:`Reason`). So this module,
and only this module, fills pydantic's four per-instance slots directly:

* ``__dict__``: the field values (every field, defaults included);
* ``__pydantic_fields_set__``: the names of the fields "given" (what ``exclude_unset`` and
  ``model_copy`` read); a ``set`` (not a ``frozenset``: ``model_copy`` copies it and adds
  to the copy) that may be shared between objects, since pydantic never changes it in
  place;
* ``__pydantic_extra__`` and ``__pydantic_private__``: ``None`` (persona's models forbid
  extra fields and have no private attributes).

An object so built equals the validated one (tests check it for every type built here).
The deferred objects of :mod:`persona.schema._deferred` use the same slots: until their
first read they park their source in the two last slots (see :func:`pending`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pydantic

__all__ = ["construct", "fill", "parked", "pending"]

M = TypeVar("M", bound=pydantic.BaseModel)

_new = object.__new__
_setattr = object.__setattr__
_getattribute = object.__getattribute__


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


def construct(cls: type[M], fields: dict[str, Any], fields_set: set[str]) -> M:
    """An instance of ``cls`` holding ``fields`` (every field, not validated), with
    ``fields_set`` as the fields given; equal to ``cls(**fields)`` for valid values.

    Examples
    --------
    >>> from persona.schema import Reason
    >>> fields = {"item": "a", "label": "A", "contribution": 0.5, "share": 1.0,
    ...           "similarity": None, "feature": None, "at": None}
    >>> construct(Reason, fields, set(Reason.model_fields)) == Reason(**fields)
    True
    """
    obj = _new(cls)
    SET_DICT(obj, fields)
    SET_FIELDS(obj, fields_set)
    SET_EXTRA(obj, None)
    SET_PRIVATE(obj, None)
    return obj


def pending(cls: type[Any], fields_set: set[str], source: Any, position: Any) -> Any:
    """An instance of ``cls`` (a deferred subclass of a model) with no field values yet:
    ``source`` and ``position`` wait in the two slots :func:`construct` sets to ``None``
    (one object per deferred value, not three) until :func:`fill` gives its fields."""
    obj = _new(cls)
    SET_FIELDS(obj, fields_set)
    SET_EXTRA(obj, source)
    SET_PRIVATE(obj, position)
    return obj


def parked(obj: Any) -> tuple[Any, Any]:
    """The ``(source, position)`` a :func:`pending` object was made with."""
    return _getattribute(obj, "__pydantic_extra__"), _getattribute(obj, "__pydantic_private__")


def fill(obj: Any, cls: type[Any], fields: dict[str, Any]) -> None:
    """Give a :func:`pending` object its field values; it becomes a plain ``cls``."""
    SET_DICT(obj, fields)
    SET_EXTRA(obj, None)
    SET_PRIVATE(obj, None)
    _setattr(obj, "__class__", cls)
