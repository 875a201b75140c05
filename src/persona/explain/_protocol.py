"""What ``persona.explain`` needs of a model: the public contract it reads (for typing).

Explanations are built from a model's public attribution
(:meth:`persona.models.Recommender.attribute`), never from its internals; any object with
these members can be explained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from persona.schema import Counterfactual

__all__ = ["Attributed", "Attribution"]


class Attribution(Protocol):
    """:class:`persona.models.Attribution`: how the scores of ``items`` come from the
    person's ``history`` (``parts``: one row per history item, one column per item)."""

    @property
    def kind(self) -> str: ...
    @property
    def items(self) -> list[str]: ...
    @property
    def history(self) -> list[str]: ...
    @property
    def parts(self) -> np.ndarray: ...
    @property
    def seen(self) -> list[bool]: ...


class Attributed(Protocol):
    """A fitted recommender, as explanations see it."""

    @property
    def personalised(self) -> bool: ...
    @property
    def attribution_kind(self) -> str: ...
    @property
    def is_fitted(self) -> bool: ...
    def attribute(self, user: str, items: Sequence[str]) -> Attribution: ...
    def score(self, user: str, items: Sequence[str]) -> np.ndarray: ...
    def rank_of(self, user: str, item: str, score: float | None = None) -> int | None: ...
    def counterfactual(self, user: str, item: str, candidates: Sequence[str], *, n: int = 10,
                       labels: Mapping[str, str] | None = None,
                       max_steps: int = 10) -> Counterfactual: ...
