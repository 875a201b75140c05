"""The result type of every ``recommend`` call."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from persona.errors import ValidationError
from persona.schema._construct import SET_DICT, SET_EXTRA, SET_FIELDS, SET_PRIVATE
from persona.schema._explanation import Explanation

__all__ = ["Recommendation", "check_detail"]

_FIELDS_SET = frozenset({"item", "score", "rank"})  # as if built from those three
_new = object.__new__


def check_detail(detail: Any) -> None:
    """Refuse a ``detail`` other than ``"summary"`` or ``"full"`` before any work."""
    if not (isinstance(detail, str) and detail in ("summary", "full")):
        raise ValidationError(
            f"detail must be 'summary' (the top reasons, the rest totalled) or 'full' "
            f"(every reason), not {detail!r}",
            errors=[{"row": None, "field": "detail", "message": "not 'summary' or 'full'"}],
        )


class Recommendation(BaseModel):
    """One recommended item for one person.

    Examples
    --------
    >>> r = Recommendation(item="sku-9", score=0.75, rank=1)
    >>> r.item, r.rank
    ('sku-9', 1)
    >>> r.explanation is None
    True
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    item: str
    """The item id, as it appears in the events."""
    score: float
    """The model's score; higher is better. Only comparable within one model."""
    rank: int = Field(ge=1)
    """Position in the list, starting at 1."""
    explanation: Explanation | None = None
    """Why the item was recommended (filled by ``persona.explain``); ``None`` here."""

    @classmethod
    def trusted(
        cls, item: str, score: float, rank: int, explanation: Explanation | None = None
    ) -> Recommendation:
        """A ``Recommendation`` of values persona computed itself, not validated again.

        Equal to ``Recommendation(item=..., score=..., rank=...)`` (a test checks it) at a
        fraction of the cost, which matters for ``recommend_batch`` of thousands of people.
        """
        # persona.schema._construct.construct, inlined: one call fewer per served item
        obj = _new(cls)
        SET_DICT(obj, {"item": item, "score": score, "rank": rank, "explanation": explanation})
        SET_FIELDS(obj, set(_FIELDS_SET))
        SET_EXTRA(obj, None)
        SET_PRIVATE(obj, None)
        return obj
