"""Schema of the consent-scoped store: definitions, consent records, reports, lineage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StrictBool, StringConstraints

__all__ = [
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
    "PurposeSpec",
]

Name = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_.\-]*$")
]
"""A purpose or feature name: starts with a letter; letters, digits, ``_ . -``."""

ConsentAction = Literal["grant", "withdraw", "decline"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PurposeSpec(_Frozen):
    """A purpose people can consent to, such as ``"personalization"``."""

    name: Name
    description: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    """Plain-language text shown to people when they are asked for consent."""
    sharing: StrictBool = False
    """True when the purpose sells or shares data with third parties (CCPA/CPRA). A
    "do not sell or share" or Global Privacy Control signal withdraws every such purpose."""
    tcf_purposes: tuple[Annotated[int, Field(ge=1, le=11)], ...] = ()
    """IAB TCF v2.2 purpose ids this purpose corresponds to (all must be consented)."""
    consent_mode: tuple[
        Literal["ad_storage", "analytics_storage", "ad_user_data", "ad_personalization"], ...
    ] = ()
    """Google Consent Mode v2 signals this purpose corresponds to (all must be granted)."""
    created_at: datetime | None = None


class FeatureSpec(_Frozen):
    """A kind of data held about people, and the purposes it may serve.

    Every event of a feature has a ``value``, a confidence (a count, an amount, seconds):
    a finite number from 0 to ``max_value`` (1e9 unless the feature sets a lower one).
    Ingest refuses others (negative, NaN, infinite or larger values) row by row, as it
    refuses any bad field."""

    name: Name
    purposes: tuple[Annotated[Name, Strict()], ...] = Field(min_length=1)
    """Purposes this feature may be read for. A scoped read for any other purpose never sees it."""
    category: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    """Data category in plain words (GDPR Art. 30), e.g. ``"purchase history"``."""
    retention_days: Annotated[int, Strict(), Field(ge=1, le=36500)] | None
    """Events older than this are invisible to every read; ``None`` keeps them until erasure."""
    description: str = ""
    max_value: Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)] | None = None
    """The largest event value this feature accepts at ingest (``None``: the store-wide
    bound, 1e9). E.g. ``max_value=1000`` for quantities of one order line."""
    created_at: datetime | None = None


class ConsentRecord(_Frozen):
    """One consent event. The history of these is never overwritten (GDPR Art. 7(1))."""

    purpose: str
    action: ConsentAction
    at: datetime
    """When the person made the choice (as reported by the caller; defaults to now)."""
    recorded_at: datetime
    """When the store recorded it."""
    source: str
    """Where the choice was made: a form, a banner, an API call, a signal."""
    notice_version: str | None = None
    """Version of the privacy notice the person saw."""
    signal: str | None = None
    """A machine signal behind the event, such as ``"gpc"``, ``"tcf"`` or ``"consent_mode"``."""


class IngestReport(_Frozen):
    """What one ``Store.ingest`` call did."""

    received: int
    inserted: int
    duplicates: int
    """Events already held (same event id) or repeated in the batch: ignored. Rows without
    an id repeat only under ``dedupe="exact"``; under ``"none"`` (default) the k-th
    identical row of a batch is the k-th copy, a duplicate only of a k-th copy held."""
    rejected: int = 0
    """Invalid rows skipped (only with ``on_invalid="skip"``; otherwise the batch is refused)."""
    rejected_by_field: dict[str, int] = Field(default_factory=dict)
    outside_retention: dict[str, int] = Field(default_factory=dict)
    """Events already older than their feature's retention, by feature: not stored (no
    read would use them; a :class:`~persona.errors.RetentionWarning` says so)."""
    audit_seq: int | None = None


class EraseReport(_Frozen):
    """What ``Store.erase`` removed."""

    subject: str
    """The pseudonym under which the audit log records the erasure (never the id)."""
    events: int
    consent_events: int
    held: bool
    """Whether anything was held about the person before the call."""
    audit_seq: int


class FeatureUse(_Frozen):
    """A feature as seen by one read: used or left out, and why."""

    feature: str
    category: str
    used: bool
    reason: str
    """Plain-language reason, e.g. ``"allowed for personalization"`` or
    ``"not allowed for personalization"``."""
    retention_days: int | None = None


class ConsentSnapshot(_Frozen):
    """Counts of consent states for one purpose at the time of a read."""

    purpose: str
    granted: int
    withdrawn: int
    declined: int


class Lineage(_Frozen):
    """Where a scoped read's data came from. Becomes part of every explanation."""

    store_id: str
    purpose: str
    purpose_description: str
    read_at: datetime
    features: tuple[FeatureUse, ...]
    consent: ConsentSnapshot | None
    """Consent states of the purpose at the read (exact counts; ``None`` in a private
    model's lineage, whose public artefacts hold no exact counts)."""
    people: int | None
    """People read (``None`` in a private model's lineage: not a DP release)."""
    items: int
    """Items: those read, or, in a private model's lineage, the declared catalogue's size."""
    rows: int | None
    """Events read (``None`` in a private model's lineage: not a DP release)."""
    audit_seq: int | None = None
    """Sequence number of the audit-log entry that recorded this read."""
    outside_retention: dict[str, int] | None = None
    """Per allowed feature: events of people with active consent that this read left out
    as older than the feature's retention (held until the next ``apply_retention``).
    ``None`` in a private model's lineage and in lineages written before it existed."""
    def retention_note(self) -> str:
        """Retention's part in this read, in words (``""`` when no used feature has a
        retention, or when nobody consents and nothing was held back): each such feature's
        cut-off, how many of the consenting people's events it left out (held until the
        next ``apply_retention``), and that ingest does not store events already older than
        it (its report and audit entry count them; no count of other people's events is
        given here). Part of the message of a fit that finds nothing to learn from."""
        held = self.outside_retention or {}
        if not any(held.values()) and (self.consent is None or not self.consent.granted):
            return ""  # nobody's data to leave out: retention is not why
        parts = []
        for use in self.features:
            if not use.used or use.retention_days is None:
                continue
            cut = (self.read_at - timedelta(days=use.retention_days)).astimezone(UTC)
            h = held.get(use.feature, 0)
            parts.append(
                f"{use.feature!r} keeps {use.retention_days} days, so the read at "
                f"{self.read_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC used nothing before "
                f"{cut:%Y-%m-%d %H:%M} UTC"
                + (f" ({h:,} of its events are older, held until the next "
                   "store.apply_retention())" if h else "")
            )
        if not parts:
            return ""
        return (
            "retention may have left events out: " + "; ".join(parts) + "; ingest does not "
            "store events already older than the cut-off (IngestReport.outside_retention "
            "and the ingest's audit entry count them). To use older events, raise the "
            "feature's retention_days (store.define_feature(name, ..., retention_days=N), or "
            "None to keep events until the person is erased): held events are read again "
            "at once, refused ones must be ingested again"
        )


NotUsedReason = Literal[
    "no_consent",
    "declined",
    "withdrawn",
    "not_allowed_for_purpose",
    "outside_retention",
    "excluded_by_person",
]
FeedbackKind = Literal["not_interested", "dont_use"]


class FeedbackRecord(_Frozen):
    """A correction a person made: an item they are not interested in (``not_interested``),
    or an item of their history they do not want used (``dont_use``)."""

    item: str
    kind: FeedbackKind
    at: datetime
    source: str


class FeatureUsed(_Frozen):
    """A kind of a person's data that a read used."""

    feature: str
    category: str
    events: int
    first_at: datetime
    last_at: datetime


class FeatureNotUsed(_Frozen):
    """A kind of a person's data that a read left out, and why.

    ``reason`` is one of: ``no_consent`` (never asked), ``declined``, ``withdrawn`` (the
    person's choice for the purpose, made at ``since``), ``not_allowed_for_purpose`` (the
    feature is not tagged for the purpose; ``choice`` is the person's own refusal of a purpose
    the feature *is* tagged for, if any), ``outside_retention`` (older than
    ``retention_days``), ``excluded_by_person`` (the person asked us not to use these items).
    """

    feature: str
    category: str
    reason: NotUsedReason
    events: int
    purpose: str
    since: datetime | None = None
    choice: ConsentRecord | None = None
    retention_days: int | None = None


class PersonLineage(_Frozen):
    """What one read used of one person's data for a purpose, and what it left out."""

    store_id: str
    purpose: str
    purpose_description: str
    read_at: datetime
    consent: ConsentRecord | None
    """The person's latest consent event for the purpose (``None``: never asked)."""
    active: bool
    used: tuple[FeatureUsed, ...]
    not_used: tuple[FeatureNotUsed, ...]
    rows: int
    audit_seq: int | None = None
