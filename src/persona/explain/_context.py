"""What every explanation of one model or one person shares: data used and not used (and
why), the lineage of the reads behind them, and the privacy statement."""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from persona.schema import (
    ConsentBasis,
    DataNotUsed,
    DataUsed,
    Lineage,
    LineageRef,
    PrivacyStatement,
)

if TYPE_CHECKING:
    from persona.explain._protocol import Attributed

__all__ = ["Context", "context", "model_lineage", "person_context", "person_data",
           "privacy_statement"]


class Context:
    """What every explanation of one model shares: lineage, data used, privacy."""

    __slots__ = ("data_not_used", "data_used", "feature", "key", "lineage", "privacy")

    def __init__(self, model: Attributed) -> None:
        lineage = model_lineage(model)
        spent = getattr(model, "privacy_spent_", None)
        self.key = (id(getattr(model, "lineage_", None)), id(spent))
        self.privacy = privacy_statement(spent)
        whose: Literal["yours", "pooled"] = "yours" if model.personalised else "pooled"
        used: list[DataUsed] = []
        not_used: list[DataNotUsed] = []
        self.lineage: LineageRef | None = None
        features: list[str] = []
        if lineage is not None:
            self.lineage = LineageRef(
                store_id=lineage.store_id, purpose=lineage.purpose, read_at=lineage.read_at,
                audit_seq=lineage.audit_seq,
            )
            for f in lineage.features:
                if f.used:
                    features.append(f.feature)
                    used.append(DataUsed(feature=f.feature, category=f.category,
                                         purpose=lineage.purpose, whose=whose))
                else:
                    m = re.search(r"\(allowed for ([^)]*)\)", f.reason)
                    allowed = [] if m is None else [p.strip() for p in m.group(1).split(",")]
                    not_used.append(DataNotUsed(
                        feature=f.feature, category=f.category,
                        reason="not_allowed_for_purpose", purpose=lineage.purpose,
                        allowed_for=allowed, retention_days=f.retention_days,
                    ))
        self.feature = features[0] if len(features) == 1 else None
        self.data_used = tuple(used)
        self.data_not_used = tuple(not_used)


def model_lineage(model: Any) -> Lineage | None:
    """``model.lineage_`` as a :class:`persona.schema.Lineage` (``None`` when the model has
    none, or one of an unknown shape; a loaded model may hold it as a mapping).

    >>> model_lineage(object()) is None
    True
    """
    value = getattr(model, "lineage_", None)
    if value is None or isinstance(value, Lineage):
        return value
    if isinstance(value, Mapping):
        try:
            return Lineage.model_validate(value)
        except Exception:  # an unknown lineage shape: say nothing rather than guess
            return None
    return None


# the context of each model, made once (models are compared by identity, and a model
# that is dropped drops its context)
_CONTEXTS: weakref.WeakKeyDictionary[Any, Context] = weakref.WeakKeyDictionary()


def context(model: Attributed) -> Context:
    """The :class:`Context` of ``model``'s present lineage and privacy statement."""
    key = (id(getattr(model, "lineage_", None)), id(getattr(model, "privacy_spent_", None)))
    ctx = _CONTEXTS.get(model)
    if ctx is None or ctx.key != key:
        ctx = _CONTEXTS[model] = Context(model)
    return ctx


def privacy_statement(spent: Any) -> PrivacyStatement | None:
    """The DP statement for ``model.privacy_spent_`` (``None`` for non-private fits).

    Accepts a :class:`PrivacyStatement`, a mapping, an object with ``.statement`` (a
    mapping) or one with ``epsilon``/``delta`` attributes.

    Examples
    --------
    >>> privacy_statement({"epsilon": 1.0, "delta": 1e-6}).epsilon
    1.0
    >>> privacy_statement(None) is None
    True
    """
    if spent is None:
        return None
    if isinstance(spent, PrivacyStatement):
        return spent
    statement = getattr(spent, "statement", None)
    if isinstance(statement, Mapping):
        data: Mapping[str, Any] = statement
    elif isinstance(spent, Mapping):
        data = spent
    elif callable(getattr(spent, "model_dump", None)):
        data = spent.model_dump(mode="json")
    else:
        data = {k: v for k, v in vars(spent).items() if not k.startswith("_")}

    def num(key: str) -> float | None:
        v = data.get(key)
        return None if v is None else float(v)

    details = {k: v for k, v in data.items()
               if k not in ("epsilon", "delta", "unit", "unit_of_privacy", "mechanism",
                            "description")
               and isinstance(v, str | int | float | bool | dict | type(None))}
    unit = data.get("unit", data.get("unit_of_privacy", "one person"))
    describe = getattr(spent, "describe", None)
    return PrivacyStatement(
        epsilon=num("epsilon"), delta=num("delta"), unit=str(unit),
        mechanism=None if data.get("mechanism") is None else str(data["mechanism"]),
        description=str(describe()) if callable(describe) else data.get("description"),
        details=details,
    )


def _basis(rec: Any) -> ConsentBasis | None:
    if rec is None:
        return None
    return ConsentBasis(purpose=rec.purpose, action=rec.action, at=rec.at, source=rec.source,
                        notice_version=rec.notice_version)


def person_context(
    model: Attributed, person: Any, features: Mapping[str, Any]
) -> tuple[list[DataUsed], list[DataNotUsed], LineageRef | None]:
    """What one person's served list says about their data, from their lineage read for
    this request (``person``: a :class:`~persona.schema.PersonLineage`; ``features``: the
    store's feature definitions): the data used (with their consent and dates), the data
    not used and why, and the model's lineage marked with that read. Give it to
    :func:`attach_explanations` as ``data`` in place of the model-level statements."""
    ctx = context(model)
    used, not_used = person_data(person, model.personalised, ctx, features)
    lineage = ctx.lineage
    if lineage is not None:
        lineage = lineage.model_copy(
            update={"person_read_at": person.read_at, "person_audit_seq": person.audit_seq}
        )
    return used, not_used, lineage


def person_data(
    person: Any, personalised: bool, ctx: Context, features: Mapping[str, Any]
) -> tuple[list[DataUsed], list[DataNotUsed]]:
    """Data used and not used, from the person's own lineage (with consent and dates)."""
    consent = _basis(person.consent) if person.active else None
    used: list[DataUsed] = []
    not_used: list[DataNotUsed] = []
    if personalised:
        for f in person.used:
            used.append(DataUsed(
                feature=f.feature, category=f.category, purpose=person.purpose, whose="yours",
                events=f.events, first_at=f.first_at, last_at=f.last_at, consent=consent,
            ))
    else:
        used = list(ctx.data_used)
        for f in person.used:
            not_used.append(DataNotUsed(
                feature=f.feature, category=f.category, reason="not_personalised",
                purpose=person.purpose, events=f.events,
            ))
    for f in person.not_used:
        spec = features.get(f.feature)
        not_used.append(DataNotUsed(
            feature=f.feature, category=f.category, reason=f.reason, purpose=f.purpose,
            events=f.events, since=f.since, choice=_basis(f.choice),
            allowed_for=[] if spec is None else list(spec.purposes),
            retention_days=f.retention_days,
        ))
    return used, not_used
