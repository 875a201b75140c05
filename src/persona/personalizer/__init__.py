"""The serving façade a shop's backend imports."""

from persona.personalizer._choice import (
    CHOICE_SHARE,
    POPULARITY_SHARE,
    ModelChoice,
    PrivateChoice,
    fit_private_choice,
)
from persona.personalizer._personalizer import Curation, Personalizer

__all__ = [
    "CHOICE_SHARE",
    "POPULARITY_SHARE",
    "Curation",
    "ModelChoice",
    "Personalizer",
    "PrivateChoice",
    "fit_private_choice",
]
