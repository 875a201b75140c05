"""The result type of every ``recommend`` call."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Recommendation"]


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
    explanation: Any | None = None
    """Why the item was recommended (filled by ``persona.explain``); ``None`` here."""
