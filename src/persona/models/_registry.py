"""The one registry of persona's model classes, by name.

Model files (``manifest.json``'s ``model``), Personalizer folders and the command line
name a model by its class name; :data:`MODELS` maps each name to its class and
:func:`model_class` looks one up. A model class enters it by the :func:`registered`
decorator where it is defined, so the registry never imports the models (the models import
it) and is complete once :mod:`persona.models` is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from persona.errors import ValidationError

if TYPE_CHECKING:
    from persona.models._base import Recommender

__all__ = ["MODELS", "model_class", "registered"]

_CLASSES: dict[str, type[Recommender]] = {}

#: persona's model classes by class name (read-only): ``{"ALS": ALS, "BPR": BPR, ...}``.
MODELS: Mapping[str, type[Recommender]] = MappingProxyType(_CLASSES)

M = TypeVar("M", bound="type[Recommender]")


def registered(cls: M) -> M:
    """Class decorator: enter ``cls`` into :data:`MODELS` under its class name. The first
    class of a name stays: a module executed twice (a doctest run imports the file again)
    must not swap the classes that model files load into."""
    _CLASSES.setdefault(cls.__name__, cls)
    return cls


def model_class(name: str) -> type[Recommender]:
    """The model class called ``name``: its class name (``"ALS"``, as model files record
    it) or that name in any case (``"als"``, as the command line takes it).

    Raises
    ------
    persona.errors.ValidationError
        For a name that is no persona model (the message lists the names).

    Examples
    --------
    >>> from persona.models import ALS, model_class
    >>> model_class("ALS") is ALS, model_class("itemknn").__name__
    (True, 'ItemKNN')
    """
    found = _CLASSES.get(name) if isinstance(name, str) else None
    if found is None and isinstance(name, str):
        found = next((c for n, c in _CLASSES.items() if n.lower() == name.lower()), None)
    if found is None:
        raise ValidationError(
            f"{name!r} is not a persona model; the models are {', '.join(sorted(_CLASSES))}",
            errors=[{"row": None, "field": "model", "message": "unknown model"}],
        )
    return found
