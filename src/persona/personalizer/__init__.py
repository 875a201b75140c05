"""The serving façade a shop's backend imports."""

from persona.personalizer._choice import (
    CHOICE_SHARE,
    COUNT_SHARE,
    KNN_FROM_PEOPLE,
    POPULARITY_SHARE,
    ModelChoice,
    PrivateChoice,
    fit_private_choice,
)
from persona.personalizer._personalizer import Curation, Personalizer

__all__ = [
    "CHOICE_SHARE",
    "COUNT_SHARE",
    "KNN_FROM_PEOPLE",
    "POPULARITY_SHARE",
    "Curation",
    "ModelChoice",
    "Personalizer",
    "PrivateChoice",
    "fit_private_choice",
]
