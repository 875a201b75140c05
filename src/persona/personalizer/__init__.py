"""The serving façade a shop's backend imports."""

from persona.personalizer._personalizer import Curation, Personalizer

__all__ = ["Curation", "Personalizer"]
