"""pydantic models shared by every part of persona (inputs are validated here)."""

from persona.schema._recommendation import Recommendation

__all__ = [
    "Recommendation",
]
