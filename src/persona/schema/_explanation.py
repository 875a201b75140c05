"""The explanation attached to every recommendation, as pydantic models.

Everything a shopper reads (:attr:`Explanation.text`) is rendered from the structured
fields with the templates in ``persona/schema/templates/<language>.json``; nothing in the
text is computed apart from the fields, so the text can never claim more than they hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    computed_field,
    field_serializer,
    model_serializer,
    model_validator,
)

from persona.schema._construct import SET_DICT, SET_EXTRA, SET_FIELDS, SET_PRIVATE
from persona.schema._html import render_html
from persona.schema._store import NotUsedReason
from persona.schema._text import render_statements, render_text

__all__ = [
    "ConsentBasis",
    "Counterfactual",
    "DataNotUsed",
    "DataUsed",
    "Detail",
    "Evidence",
    "Explanation",
    "ExplanationKind",
    "LineageRef",
    "PrivacyStatement",
    "Reason",
    "Rest",
    "json_schema",
    "text_key",
]

ExplanationKind = Literal["decomposition", "justification", "non_personalised", "curated"]
Detail = Literal["summary", "full"]
#: Why data was left out: the store's reasons (:data:`persona.schema.NotUsedReason`), and
#: the two the serving layer adds (a non-personalised model; the person chose non-profiling).
NotUsedKind = Literal[NotUsedReason, "not_personalised", "non_profiling_chosen"]


_new = object.__new__


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]  # unannotated: an annotation would change the published JSON Schema
        # fields left at their default (None, an empty list, ...) are not written: the
        # JSON stays small, and reading it back restores them (the schema lists them as
        # optional with their defaults)
        return _without_defaults(type(self), handler(self))


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
    """Its exact part of the score (decompositions); ``None`` for justifications. Positive
    parts are evidence for the item, negative parts evidence against it."""
    share: float | None = None
    """Its share of the evidence on its side, between 0 and 1 (decompositions only). For a
    positive reason: ``contribution / Evidence.support``, the share of the positive
    evidence (the shares of all positive reasons sum to 1). For a negative reason:
    ``contribution / Evidence.against``, its share of the evidence against (the shares of
    all negative reasons sum to 1). It is never a share of the score, which negative parts
    can make smaller than any one reason."""
    similarity: float | None = None
    """Similarity to the explained item (justifications only)."""
    feature: str | None = None
    """The feature (kind of event) behind it, such as ``"purchases"``, when known."""
    at: datetime | None = None
    """Time of the person's latest event with the item, when known (needs the store)."""

    @classmethod
    def trusted(cls, item: str, label: str, contribution: float | None, share: float | None,
                similarity: float | None, feature: str | None, at: datetime | None) -> Reason:
        """A ``Reason`` of values persona computed itself, not validated again (equal to
        ``Reason(...)`` of the same values; a test checks it): served explanations build
        one per history item they list."""
        # persona.schema._construct.construct, inlined: one call fewer per reason
        obj = _new(cls)
        SET_DICT(obj, {"item": item, "label": label, "contribution": contribution,
                       "share": share, "similarity": similarity, "feature": feature, "at": at})
        SET_FIELDS(obj, _REASON_FIELDS)
        SET_EXTRA(obj, None)
        SET_PRIVATE(obj, None)
        return obj


_REASON_FIELDS = set(Reason.model_fields)  # shared: pydantic copies it before adding to it


class Evidence(_Frozen):
    """How the score splits into evidence for the item and evidence against it, over all
    the reasons (decompositions only): ``support + against == score``."""

    support: float = Field(ge=0)
    """The sum of the positive contributions (0 when none)."""
    against: float = Field(le=0)
    """The sum of the negative contributions (0 when none), a number at most 0."""


class Rest(_Frozen):
    """The reasons a summary does not list, totalled (``detail="summary"``): the listed
    reasons' contributions plus ``contribution`` add up to the score."""

    count: int = Field(ge=0)
    """How many reasons are not listed."""
    contribution: float | None = None
    """The sum of their contributions (``None`` for justifications, which have none)."""


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
    """The contributing history items, largest contribution first: every one (the full
    form), or in a summary (when :attr:`rest` is set) only those :attr:`text` names (at
    least the largest one for the item), the others totalled in :attr:`rest`."""
    evidence: Evidence | None = None
    """Evidence for and against the item over all its reasons (decompositions, full form;
    a summary leaves it out)."""
    rest: Rest | None = None
    """A summary's unlisted reasons, totalled: the listed contributions plus
    ``rest.contribution`` add up to :attr:`score`. ``None`` in the full form."""
    seen: bool = False
    """The item is in the person's own history: it is explained, not recommended (its
    :attr:`rank` is ``None`` unless a list that keeps seen items served it)."""
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
    def _reasons_out(self, value: Any, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]  # (as _compact)
        # served explanations hold a lazily built sequence; it is written as the list it is
        return handler(value if isinstance(value, list) else list(value))

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]  # unannotated: an annotation would change the published JSON Schema
        settle = getattr(type(self), "_settle", None)  # served: built on first read
        if settle is not None:
            settle(self)
        for value in self.__dict__.values():  # served totals are computed on first read
            settle = getattr(value, "_settle", None)
            if settle is not None:
                settle()
        return _without_defaults(type(self), handler(self))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def text(self) -> str:
        """At most three plain sentences: why, and what was (not) used."""
        reasons = self.reasons  # (a served explanation is built on this first read)
        rendered = getattr(reasons, "rendered", None)
        if rendered is not None:  # a served summary: its text was rendered with the list
            text: str | None = rendered(text_key(self.__dict__))
            if text is not None:
                return text
        return render_text(self)

    @property
    def statements(self) -> dict[str, Any]:
        """Every plain-language sentence the structured fields support (for UIs; not in
        the JSON, which carries :attr:`text` and the fields the sentences come from).
        ``named`` lists the ids of the reasons :attr:`text` names, in order."""
        return render_statements(self)

    @property
    def detail(self) -> Detail:
        """``"summary"`` (the form served in lists: the reasons the text names, the rest
        totalled in :attr:`rest`) or ``"full"`` (every reason). :attr:`text` is the same
        in both."""
        return "full" if self.rest is None else "summary"

    @property
    def total(self) -> float:
        """Sum of the listed reasons' contributions and of :attr:`rest` (equals
        :attr:`score` for decompositions, in either :attr:`detail`)."""
        rest = 0.0 if self.rest is None else (self.rest.contribution or 0.0)
        return float(sum(r.contribution or 0.0 for r in self.reasons)) + rest

    def _repr_html_(self) -> str:
        return render_html(self)

    def __str__(self) -> str:
        return self.text


_DEFAULTS: dict[type, dict[str, Any]] = {}


def _without_defaults(cls: type[BaseModel], data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    defaults = _DEFAULTS.get(cls)
    if defaults is None:
        defaults = _DEFAULTS[cls] = {
            k: f.get_default(call_default_factory=True)
            for k, f in cls.model_fields.items() if not f.is_required()
        }
    out = {}
    for key, value in data.items():
        if key in defaults:
            default = defaults[key]
            if value is None or (value == default and type(value) is type(default)):
                continue
        out[key] = value
    return out


def text_key(fields: Mapping[str, Any]) -> tuple[Any, ...]:
    """The fields besides the reasons that :attr:`Explanation.text` depends on."""
    return tuple(fields.get(name) for name in _TEXT_FIELDS)


_TEXT_FIELDS = ("label", "kind", "seen", "rank", "language", "note", "counterfactual",
                "data_not_used")


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of :meth:`Explanation.model_dump_json` output.

    Examples
    --------
    >>> schema = json_schema()
    >>> schema["title"], "text" in schema["properties"]
    ('Explanation', True)
    """
    return Explanation.model_json_schema(mode="serialization")
