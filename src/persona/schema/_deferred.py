"""Explanations (and their totals) whose fields are computed on first read.

A served list holds one :class:`~persona.schema.Explanation` per item, but most are never
read. Each is a *deferred* object: an instance of a subclass of the model that holds only
its source and position (:func:`persona.schema._construct.pending`). Its first read (any
attribute, ``==``, ``repr``, a copy, JSON output) asks the source for the field values
and turns it into a plain instance of the model (its ``__class__`` is set to the model).

The sources are duck-typed: an explanation's calls ``source.fields(k)`` (the field values
of item ``k``); an :class:`Evidence`'s ``source.totals()`` (``(support, against)``); a
:class:`Rest`'s ``source.rest()`` (``(count, contribution)``). ``persona.explain`` makes
them from a model's attribution.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from persona.schema._construct import SET_EXTRA, SET_FIELDS, SET_PRIVATE, fill, parked, pending
from persona.schema._explanation import Evidence, Explanation, Rest

__all__ = ["lazy_evidence", "lazy_explanations", "lazy_rest", "unread"]

_new = object.__new__
_SETTLING = threading.RLock()  # one served explanation is built once, by one thread


class _Lazy:
    """A frozen pydantic model whose field values come from its source on first read; it
    then becomes a plain instance of its model (``__class__`` is set to it)."""

    __slots__ = ()

    def _settle(self) -> None:
        # under a lock: a served explanation may be read by the caller and by the
        # background writer of what was shown at once
        with _SETTLING:
            target = _TARGETS.get(type(self))
            if target is not None:  # not built yet
                model, values = target
                source, k = parked(self)
                fill(self, model, values(source, k))

    def __getattr__(self, name: str) -> Any:
        if type(self) in _TARGETS:
            self._settle()
            return getattr(self, name)
        return super().__getattr__(name)  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        self._settle()
        return self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._settle()
        return repr(self)

    def __copy__(self) -> Any:
        self._settle()
        return copy.copy(self)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        self._settle()
        return copy.deepcopy(self, memo)


class _LazyEvidence(_Lazy, Evidence):
    __slots__ = ()


class _LazyRest(_Lazy, Rest):
    __slots__ = ()


class _LazyExplanation(_Lazy, Explanation):
    __slots__ = ()


def _evidence_values(source: Any, _k: None) -> dict[str, Any]:
    support, against = source.totals()
    return {"support": support, "against": against}


def _rest_values(source: Any, _k: None) -> dict[str, Any]:
    count, contribution = source.rest()
    return {"count": count, "contribution": contribution}


def _explanation_values(served: Any, k: int) -> dict[str, Any]:
    return served.fields(k)  # type: ignore[no-any-return]


_TARGETS: dict[type, tuple[type, Any]] = {
    _LazyEvidence: (Evidence, _evidence_values),
    _LazyRest: (Rest, _rest_values),
    _LazyExplanation: (Explanation, _explanation_values),
}

_EVIDENCE_NAMES = set(Evidence.model_fields)
_REST_NAMES = set(Rest.model_fields)
_EXPLANATION_NAMES = set(Explanation.model_fields)


def unread(e: Any) -> tuple[Any, int] | None:
    """``(source, k)`` of a served explanation nobody has read yet (see
    :func:`lazy_explanations`), else ``None``."""
    with _SETTLING:
        if type(e) is not _LazyExplanation:
            return None
        return parked(e)


def lazy_explanations(source: Any, n: int) -> list[Explanation]:
    """The explanations of items ``0 .. n - 1`` of a served list, each built on its first
    read by ``source.fields(k)`` (which returns its field values)."""
    names, cls = _EXPLANATION_NAMES, _LazyExplanation
    fields, extra, private = SET_FIELDS, SET_EXTRA, SET_PRIVATE
    out: list[Explanation] = []
    for k in range(n):  # persona.schema._construct.pending, inlined (one per served item)
        obj = _new(cls)
        fields(obj, names)
        extra(obj, source)
        private(obj, k)
        out.append(obj)
    return out


def lazy_evidence(source: Any) -> Evidence:
    """The :class:`Evidence` of ``source``'s reasons (``source.totals()``), on first read."""
    return pending(_LazyEvidence, _EVIDENCE_NAMES, source, None)  # type: ignore[no-any-return]


def lazy_rest(source: Any) -> Rest:
    """The :class:`Rest` of a summary (``source.rest()``), computed on first read."""
    return pending(_LazyRest, _REST_NAMES, source, None)  # type: ignore[no-any-return]
