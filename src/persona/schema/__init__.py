"""pydantic models for everything that crosses persona's edge: purposes, features,
consent events, events, lineage, recommendations. Every input rule for bad data lives here."""

from persona.schema._privacy import UNIT_OF_PRIVACY, PrivacyCharge, PrivacySpent
from persona.schema._recommendation import Recommendation
from persona.schema._store import (
    ConsentAction,
    ConsentRecord,
    ConsentSnapshot,
    EraseReport,
    FeatureNotUsed,
    FeatureSpec,
    FeatureUse,
    FeatureUsed,
    FeedbackKind,
    FeedbackRecord,
    IngestReport,
    Lineage,
    NotUsedReason,
    PersonLineage,
    PurposeSpec,
)

__all__ = [
    "UNIT_OF_PRIVACY",
    "ConsentAction",
    "ConsentRecord",
    "ConsentSnapshot",
    "EraseReport",
    "FeatureNotUsed",
    "FeatureSpec",
    "FeatureUse",
    "FeatureUsed",
    "FeedbackKind",
    "FeedbackRecord",
    "IngestReport",
    "Lineage",
    "NotUsedReason",
    "PersonLineage",
    "PrivacyCharge",
    "PrivacySpent",
    "PurposeSpec",
    "Recommendation",
]
