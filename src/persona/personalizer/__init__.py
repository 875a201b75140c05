"""The serving façade a shop's backend imports."""

from persona.personalizer._choice import ModelChoice, PrivateChoice, fit_private_choice
from persona.personalizer._personalizer import Curation, Personalizer

__all__ = ["Curation", "ModelChoice", "Personalizer", "PrivateChoice", "fit_private_choice"]
