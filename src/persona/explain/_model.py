"""The explanation attached to every recommendation, as pydantic models.

Everything a shopper reads (:attr:`Explanation.text`) is rendered from the structured
fields with the templates in ``persona/explain/templates/<language>.json``; nothing in the
text is computed apart from the fields, so the text can never claim more than they hold.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    computed_field,
    field_serializer,
    model_validator,
)

__all__ = [
    "Counterfactual",
    "DataNotUsed",
    "DataUsed",
    "Explanation",
    "ExplanationKind",
    "LineageRef",
    "PrivacyStatement",
    "Reason",
    "json_schema",
]

ExplanationKind = Literal["decomposition", "justification", "non_personalised", "curated"]
NotUsedKind = Literal[
    "no_consent",
    "declined",
    "withdrawn",
    "not_allowed_for_purpose",
    "outside_retention",
    "excluded_by_person",
    "not_personalised",
    "non_profiling_chosen",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reason(_Frozen):
    """One item of the person's history and its part in the item's score.

    Examples
    --------
    >>> r = Reason(item="sku-3", label="Hiking Boots", contribution=0.41, share=0.62)
    >>> r.label, r.share
    ('Hiking Boots', 0.62)
    """

    item: str
    """The history item's id."""
    label: str
    """Its label from the item metadata (the id when it has none)."""
    contribution: float | None = None
    """Its exact part of the score (decompositions); ``None`` for justifications."""
    share: float | None = None
    """``contribution / score``: shares of all reasons sum to 1 (decompositions only)."""
    similarity: float | None = None
    """Similarity to the explained item (justifications only)."""
    feature: str | None = None
    """The feature (kind of event) behind it, such as ``"purchases"``, when known."""
    at: datetime | None = None
    """Time of the person's latest event with the item, when known (needs the store)."""


class Counterfactual(_Frozen):
    """What would change without part of the person's history, checked by re-scoring.

    ``removed`` is the smallest set found greedily (largest contribution first) whose
    removal takes the item out of the top ``n``; ``verified`` is ``True`` only when the
    model, re-scored with the reduced history through fold-in, no longer ranks the item in
    the top ``n``. Nothing is claimed without that check.
    """

    removed: list[str]
    """Item ids taken out of the history, in the order they were tried."""
    removed_labels: list[str]
    """Their labels."""
    verified: bool
    """Whether re-scoring confirmed that the item leaves the top ``n``."""
    n: int = Field(ge=1)
    rank_before: int | None
    """The item's rank with the full history (``None``: not in the top ``n``)."""
    rank_after: int | None
    """Its rank after the removal, within the top ``n`` (``None``: it left the top ``n``)."""


class ConsentBasis(_Frozen):
    """The consent a use of data rests on."""

    purpose: str
    action: str
    at: datetime
    source: str
    notice_version: str | None = None


class DataUsed(_Frozen):
    """A kind of data the recommendation used."""

    feature: str
    category: str
    """Data category in plain words, such as ``"purchase history"``."""
    purpose: str | None = None
    """The purpose the data was read for."""
    whose: Literal["yours", "pooled"] = "yours"
    """``"yours"``: the person's own events; ``"pooled"``: counts over many people."""
    events: int | None = None
    """How many of the person's events (needs the store)."""
    first_at: datetime | None = None
    last_at: datetime | None = None
    consent: ConsentBasis | None = None
    """The person's consent this use rests on, with its date (needs the store)."""


class DataNotUsed(_Frozen):
    """A kind of data left out, and why."""

    feature: str
    category: str
    reason: NotUsedKind
    purpose: str | None = None
    """The purpose of the read that left it out."""
    events: int | None = None
    since: datetime | None = None
    """When the person made the choice behind ``reason`` (declined, withdrawn)."""
    choice: ConsentBasis | None = None
    """For ``not_allowed_for_purpose``: the person's own refusal of a purpose the feature
    serves, if any."""
    allowed_for: list[str] = Field(default_factory=list)
    """Purposes the feature may serve."""
    retention_days: int | None = None


class PrivacyStatement(_Frozen):
    """The differential-privacy guarantee of the pooled parts of the model."""

    epsilon: float | None = None
    delta: float | None = None
    unit: str = "one person"
    """Whose data the guarantee protects: the unit of privacy."""
    mechanism: str | None = None
    description: str | None = None
    """The privacy layer's own one-line statement for reviewers (names ε and δ; it never
    enters :attr:`Explanation.text`)."""
    details: dict[str, Any] = Field(default_factory=dict)


class LineageRef(_Frozen):
    """Where the data came from: the store read(s) behind the explanation."""

    store_id: str | None = None
    purpose: str | None = None
    read_at: datetime | None = None
    """When the model's training data was read."""
    audit_seq: int | None = None
    """The audit-log entry of that read."""
    person_read_at: datetime | None = None
    """When the person's own lineage was read (explanations built with a store or view)."""
    person_audit_seq: int | None = None


class Explanation(_Frozen):
    """Why one item is recommended to one person, readable by shoppers and checkable.

    ``reasons`` are the model's own score decomposition (``kind="decomposition"``: their
    contributions sum to :attr:`score`), a justification when the model has none
    (``kind="justification"``), or empty for the non-personalised model. :attr:`text`
    is rendered from the fields with the templates of :attr:`language`.

    Examples
    --------
    >>> e = Explanation(item="sku-9", label="Trail Socks", score=0.66, rank=1,
    ...                 kind="decomposition", model="ALS", reasons=[
    ...     Reason(item="sku-3", label="Hiking Boots", contribution=0.41, share=0.62,
    ...            feature="purchases"),
    ...     Reason(item="sku-4", label="Rain Jacket", contribution=0.25, share=0.38,
    ...            feature="purchases")])
    >>> e.text
    'We picked Trail Socks for you because you bought Hiking Boots and Rain Jacket.'
    >>> Explanation.model_validate_json(e.model_dump_json()) == e
    True
    """

    item: str
    label: str
    score: float
    """The served score that ranked the item (equal to ``Recommendation.score``)."""
    rank: int | None = Field(default=None, ge=1)
    """Its rank in the person's list (``None`` when it is not ranked, e.g. seen items)."""
    kind: ExplanationKind
    model: str
    """The recommender's class name."""
    reasons: list[Reason] = Field(default_factory=list)
    """Every contributing history item, largest contribution first."""
    data_used: list[DataUsed] = Field(default_factory=list)
    data_not_used: list[DataNotUsed] = Field(default_factory=list)
    privacy: PrivacyStatement | None = None
    counterfactual: Counterfactual | None = None
    lineage: LineageRef | None = None
    note: str | None = None
    """For ``kind="curated"``: the reason the people who chose the item gave."""
    language: str = "en"

    @model_validator(mode="before")
    @classmethod
    def _drop_rendered(cls, data: Any) -> Any:
        # ``text`` and ``privacy_text`` are rendered, not stored: accept them back from JSON
        if isinstance(data, dict) and ("text" in data or "statements" in data):
            data = {k: v for k, v in data.items() if k not in ("text", "statements")}
        return data

    @field_serializer("reasons", mode="wrap")
    def _reasons_out(self, value: Any, handler: SerializerFunctionWrapHandler):
        # served explanations hold a lazily built sequence; it is written as the list it is
        return handler(value if isinstance(value, list) else list(value))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def text(self) -> str:
        """At most three plain sentences: why, and what was (not) used."""
        from persona.explain._text import render_text

        return render_text(self)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def statements(self) -> dict[str, Any]:
        """Every plain-language sentence the structured fields support (for UIs)."""
        from persona.explain._text import render_statements

        return render_statements(self)

    @property
    def total(self) -> float:
        """Sum of the reasons' contributions (equals :attr:`score` for decompositions)."""
        return float(sum(r.contribution or 0.0 for r in self.reasons))

    def _repr_html_(self) -> str:
        from persona.explain._html import render_html

        return render_html(self)

    def __str__(self) -> str:
        return self.text


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of :meth:`Explanation.model_dump_json` output.

    Examples
    --------
    >>> schema = json_schema()
    >>> schema["title"], "text" in schema["properties"]
    ('Explanation', True)
    """
    return Explanation.model_json_schema(mode="serialization")
