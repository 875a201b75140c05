"""pydantic models for everything that crosses persona's edge."""

from persona.schema._privacy import UNIT_OF_PRIVACY, PrivacyCharge, PrivacySpent

__all__ = [
    "UNIT_OF_PRIVACY",
    "PrivacyCharge",
    "PrivacySpent",
]
