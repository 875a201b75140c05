"""Reports for privacy reviewers, each generated from the store and the model, never by hand.

* :func:`main_parameters` — the recommender's main parameters and the options people have
  to change them (EU Digital Services Act, Art. 27);
* :func:`transparency` — one person's data, consents and the explanations they were shown
  (GDPR Art. 15);
* :func:`records_of_processing` — purposes, data categories, retention and recipients
  (GDPR Art. 30).

Every report is a pydantic model (``model_dump_json()``) with ``to_markdown()`` and
``to_html()``. Its facts are read from ``store.purposes``, ``store.features``,
``store.export``, ``store.shown_explanations``, the audit log and the model's parameters
and lineage; the only fixed words are headings and the one-line descriptions of persona's
own models and of the choices persona's store implements.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MainParametersReport",
    "RecordsOfProcessingReport",
    "Report",
    "TransparencyReport",
    "main_parameters",
    "records_of_processing",
    "transparency",
]

#: How each persona model turns data into suggestions, in plain words.
MODEL_DESCRIPTIONS = {
    "ALS": "Suggestions come from patterns in what many people chose together. Each item you "
           "chose adds to the match; the explanation lists how much each one added.",
    "BPR": "Suggestions come from patterns in what many people chose over what they did not "
           "choose. The explanation names similar items you chose; it is a likely reason, "
           "not an exact split.",
    "ItemKNN": "Each item is linked to the items most often chosen with it. Items linked to "
               "what you chose rank higher; the explanation lists each link's part.",
    "Popularity": "Everyone sees the same list: the items chosen by the most people. None "
                  "of your own data is used.",
}


class Table(BaseModel):
    """A titled table: the unit every report renders."""

    model_config = ConfigDict(frozen=True)

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str | None = None


class Report(BaseModel):
    """Shared rendering of the reports."""

    model_config = ConfigDict(frozen=True)

    title: str
    generated_at: datetime
    store_id: str

    def _tables(self) -> list[Table]:  # pragma: no cover
        raise NotImplementedError

    def _intro(self) -> list[str]:
        return []

    def to_markdown(self) -> str:
        """The report as Markdown."""
        out = [f"# {self.title}", "",
               f"Generated {self.generated_at:%Y-%m-%d %H:%M} UTC from store `{self.store_id}`.",
               ""]
        out += [*self._intro(), ""] if self._intro() else []
        for t in self._tables():
            out += [f"## {t.title}", ""]
            if t.note:
                out += [t.note, ""]
            if not t.rows:
                out += ["(none)", ""]
                continue
            out.append("| " + " | ".join(t.columns) + " |")
            out.append("|" + "---|" * len(t.columns))
            for row in t.rows:
                cells = ["" if c is None else str(c).replace("|", "\\|").replace("\n", " ")
                         for c in row]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    def to_html(self) -> str:
        """The report as a self-contained HTML fragment (every value escaped)."""
        e = escape
        out = [f"<h1>{e(self.title)}</h1>",
               f"<p>Generated {e(f'{self.generated_at:%Y-%m-%d %H:%M}')} UTC from store "
               f"<code>{e(self.store_id)}</code>.</p>"]
        out += [f"<p>{e(p)}</p>" for p in self._intro()]
        for t in self._tables():
            out.append(f"<h2>{e(t.title)}</h2>")
            if t.note:
                out.append(f"<p>{e(t.note)}</p>")
            if not t.rows:
                out.append("<p>(none)</p>")
                continue
            head = "".join(f"<th>{e(c)}</th>" for c in t.columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{e('' if c is None else str(c))}</td>" for c in row)
                + "</tr>" for row in t.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        return "\n".join(out)

    def _repr_html_(self) -> str:
        return self.to_html()


def _now() -> datetime:
    return datetime.now(UTC)


def _days(days: int | None) -> str:
    return "until erased" if days is None else f"{days} days"


# ------------------------------------------------------------------ DSA Art. 27
class Signal(BaseModel):
    feature: str
    category: str
    purpose: str
    retention: str
    used: bool
    reason: str


class Option(BaseModel):
    choice: str
    effect: str
    how: str
    """The persona call that carries the choice out."""


class MainParametersReport(Report):
    """The main parameters of a recommender and the options people have (DSA Art. 27)."""

    model: str
    personalised: bool
    how_it_works: str
    parameters: dict[str, Any]
    purpose: str | None
    purpose_description: str | None
    signals: list[Signal]
    options: list[Option]
    trained_at: datetime | None
    people: int | None
    items: int | None
    privacy: dict[str, Any] | None = None
    """The differential-privacy guarantee of the pooled parts (``model.privacy_spent_``)."""
    privacy_budget: str | None = None
    """The purpose's privacy budget policy in plain words (what all fits together may
    spend, and for a per-period budget the weaker guarantee it gives), if one is set."""

    def _intro(self) -> list[str]:
        return [self.how_it_works]

    def _tables(self) -> list[Table]:
        return [
            Table(title="Data the suggestions are based on",
                  columns=["kind of data", "feature", "used", "why", "kept for"],
                  rows=[[s.category, s.feature, "yes" if s.used else "no", s.reason,
                         s.retention] for s in self.signals],
                  note=None if self.purpose is None else
                  f"Read for the purpose '{self.purpose}': {self.purpose_description}"),
            Table(title="Your options", columns=["choice", "what changes", "how"],
                  rows=[[o.choice, o.effect, o.how] for o in self.options]),
            Table(title="Privacy protection", columns=["mechanism", "epsilon", "delta",
                                                       "unit of privacy", "statement"],
                  rows=[] if self.privacy is None else [[
                      self.privacy.get("mechanism"), self.privacy.get("epsilon"),
                      self.privacy.get("delta"), self.privacy.get("unit"),
                      self.privacy.get("description")]],
                  note=("Trends pooled from many people were blurred with random noise."
                        + ("" if self.privacy_budget is None else
                           f" The privacy budget of '{self.purpose}', which every private "
                           f"fit on it shares: {self.privacy_budget}"))
                  if self.privacy is not None else
                  "This model was fitted without differential privacy."),
            Table(title="Settings of the recommender", columns=["setting", "value"],
                  rows=[[k, v] for k, v in self.parameters.items()],
                  note=None if self.trained_at is None else
                  f"Trained on data read {self.trained_at:%Y-%m-%d %H:%M} UTC"
                  + self._sizes()),
        ]

    def _sizes(self) -> str:
        if self.people is not None:
            return f" ({self.people} people, {self.items} items)."
        if self.privacy is not None:
            return (f" over a catalogue of {self.items} items (declared by the shop, or chosen "
                    "with differential privacy). How many people's data was used is not "
                    "shown: an exact count is not protected by the noise.")
        return "."


def _lineage(model: Any) -> Any:
    from persona.explain._build import _lineage as as_lineage

    return as_lineage(getattr(model, "lineage_", None))


def main_parameters(model: Any, store: Any) -> MainParametersReport:
    """The main parameters of ``model`` and people's options (EU DSA Art. 27).

    Examples
    --------
    >>> import persona
    >>> from persona.data import Interactions
    >>> store = persona.Store(":memory:")
    >>> store.define_purpose("personalization", description="Suggest products")
    >>> store.define_feature("purchases", purposes=["personalization"],
    ...                      category="purchase history", retention_days=730)
    >>> _ = store.grant("u1", "personalization", source="form")
    >>> _ = store.ingest([{"user": "u1", "item": "a", "feature": "purchases",
    ...                    "at": "2026-11-01T10:00:00Z"}])
    >>> model = persona.Popularity().fit(Interactions.from_view(store.scope("personalization")))
    >>> report = main_parameters(model, store)
    >>> report.signals[0].category, report.personalised
    ('purchase history', False)
    >>> "## Your options" in report.to_markdown()
    True
    """
    lineage = _lineage(model)
    features = store.features
    purposes = store.purposes
    purpose = lineage.purpose if lineage is not None else None
    signals = []
    if lineage is not None:
        for f in lineage.features:
            spec = features.get(f.feature)
            signals.append(Signal(
                feature=f.feature, category=f.category, purpose=purpose or "",
                retention=_days(spec.retention_days if spec else f.retention_days),
                used=f.used, reason=f.reason,
            ))
    else:
        for name, spec in sorted(features.items()):
            signals.append(Signal(feature=name, category=spec.category,
                                  purpose=", ".join(spec.purposes),
                                  retention=_days(spec.retention_days), used=True,
                                  reason=f"allowed for {', '.join(spec.purposes)}"))
    options = []
    if purpose is not None and model.personalised:
        options.append(Option(
            choice=f"Turn off '{purpose}'",
            effect="Your data is no longer read for it; you get the same list as everyone "
                   "(the items most people chose), which uses none of your data.",
            how=f"store.withdraw(user, {purpose!r})"))
    for _, spec in sorted(features.items()):
        if purpose is not None and purpose in spec.purposes:
            options.append(Option(
                choice=f"Do not use one of your {spec.category} items",
                effect="That item leaves every read of your data at once.",
                how="store.feedback(user, item, kind='dont_use')"))
    options += [
        Option(choice="Not interested in an item", effect="It is not suggested to you again.",
               how="store.feedback(user, item, kind='not_interested')"),
        Option(choice="See your data", effect="You get all data held about you.",
               how="store.export(user)"),
        Option(choice="Erase your data", effect="All data held about you is deleted.",
               how="store.erase(user)"),
    ]
    options = list({o.choice: o for o in options}.values())
    from persona.explain._build import privacy_statement

    statement = privacy_statement(getattr(model, "privacy_spent_", None))
    params = {k: v for k, v in model.get_params().items() if k not in ("show_progress",)}
    params = {k: (v if isinstance(v, int | float | str | bool | type(None)) else repr(v))
              for k, v in params.items()}
    return MainParametersReport(
        title=f"Main parameters of the {type(model).__name__} recommender",
        generated_at=_now(), store_id=store.store_id, model=type(model).__name__,
        personalised=bool(model.personalised),
        how_it_works=MODEL_DESCRIPTIONS.get(type(model).__name__, type(model).__doc__ or ""),
        parameters=params, purpose=purpose,
        purpose_description=None if purpose is None or purpose not in purposes
        else purposes[purpose].description,
        signals=signals, options=options,
        trained_at=None if lineage is None else lineage.read_at,
        people=None if lineage is None else lineage.people,
        items=None if lineage is None else lineage.items,
        privacy=None if statement is None else statement.model_dump(mode="json"),
        privacy_budget=None if purpose is None else _budget_statement(store, purpose),
    )


# ------------------------------------------------------------------ GDPR Art. 15
class TransparencyReport(Report):
    """One person's data, consents and the explanations they were shown (GDPR Art. 15)."""

    pseudonym: str | None
    held: bool
    consents: list[dict[str, Any]]
    data: list[dict[str, Any]]
    explanations: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    privacy_ledger: list[dict[str, Any]] = Field(default_factory=list)

    def _tables(self) -> list[Table]:
        return [
            Table(title="Your choices", columns=["purpose", "choice", "when", "where"],
                  rows=[[c["purpose"], c["action"], c["at"], c["source"]]
                        for c in self.consents]),
            Table(title="Your data", columns=["kind of data", "feature", "events", "first",
                                              "last", "may be used for", "kept for"],
                  rows=[[d["category"], d["feature"], d["events"], d["first_at"], d["last_at"],
                         ", ".join(d["purposes"]), d["retention"]] for d in self.data]),
            Table(title="Explanations you were shown",
                  columns=["when", "item", "what we said", "unchanged"],
                  rows=[[x["at"], x["explanation"].get("label", x["explanation"].get("item")),
                         x["explanation"].get("text"), "yes" if x["verified"] else "NO"]
                        for x in self.explanations]),
            Table(title="Record of what we did with your data",
                  columns=["entry", "when", "what"],
                  rows=[[a["seq"], a["at"], a["action"]] for a in self.audit]),
        ]


def transparency(store: Any, user: str) -> TransparencyReport:
    """What ``store`` holds about ``user`` and what they were shown (GDPR Art. 15).

    Built from ``store.export(user)`` (itself recorded in the audit log) and
    ``store.shown_explanations(user)``; explanations carry a flag saying whether they
    still match the digest the audit log recorded when they were shown.

    Examples
    --------
    >>> import persona
    >>> store = persona.Store(":memory:")
    >>> store.define_purpose("personalization", description="Suggest products")
    >>> _ = store.grant("u1", "personalization", source="signup form")
    >>> report = transparency(store, "u1")
    >>> report.consents[0]["source"]
    'signup form'
    """
    export = store.export(user)
    features = export["features"]
    by_feature: dict[str, dict[str, Any]] = {}
    for ev in export["events"]:
        d = by_feature.setdefault(ev["feature"], {
            "feature": ev["feature"], "category": ev["category"], "events": 0,
            "first_at": ev["at"], "last_at": ev["at"], "purposes": ev["purposes"],
            "retention": _days(features.get(ev["feature"], {}).get("retention_days")),
            "outside_retention": 0,
        })
        d["events"] += 1
        d["first_at"] = min(d["first_at"], ev["at"])
        d["last_at"] = max(d["last_at"], ev["at"])
        d["outside_retention"] += 0 if ev["within_retention"] else 1
    consents = [{k: c[k] for k in ("purpose", "action", "at", "source", "notice_version")}
                for c in export["consent"]["history"]]
    audit = [{"seq": a["seq"], "at": a["at"], "action": a["action"]} for a in export["audit"]]
    return TransparencyReport(
        title="Your data and the explanations you were shown",
        generated_at=datetime.fromisoformat(export["exported_at"]),
        store_id=export["store_id"], pseudonym=export["subject"]["pseudonym"],
        held=export["held"], consents=consents, data=list(by_feature.values()),
        explanations=store.shown_explanations(user), audit=audit,
        privacy_ledger=export.get("privacy_ledger", []),
    )


# ------------------------------------------------------------------ GDPR Art. 30
class ProcessingPurpose(BaseModel):
    name: str
    description: str
    legal_basis: str
    categories: list[str]
    features: list[str]
    recipients: str
    tcf_purposes: list[int]
    consent_mode: list[str]
    privacy_budget: tuple[float, float] | None = None
    """(ε, δ) that private computations on this purpose may spend (in total, or per period:
    see :attr:`privacy_budget_policy`), if set."""
    privacy_budget_policy: dict[str, Any] | None = None
    """The budget policy (``epsilon``, ``delta``, ``period_days``: ``None`` for a lifetime
    total, ``set_at``), if set."""
    privacy_budget_statement: str | None = None
    """The policy in plain words, stating the weaker guarantee of a per-period budget."""


class DataCategory(BaseModel):
    feature: str
    category: str
    purposes: list[str]
    retention: str
    description: str


class RecordsOfProcessingReport(Report):
    """Purposes, data categories, retention and recipients (GDPR Art. 30)."""

    purposes: list[ProcessingPurpose]
    categories: list[DataCategory]
    audit_entries: int
    audit_intact: bool
    privacy_charges: list[dict[str, Any]] = Field(default_factory=list)
    """Differential-privacy charges of pooled computations (from a budget ledger)."""

    def _tables(self) -> list[Table]:
        return [
            Table(title="Purposes", columns=["purpose", "description", "legal basis",
                                             "data categories", "recipients",
                                             "privacy budget"],
                  rows=[[p.name, p.description, p.legal_basis, ", ".join(p.categories),
                         p.recipients, p.privacy_budget_statement or _NO_BUDGET]
                        for p in self.purposes]),
            Table(title="Data categories and retention",
                  columns=["category", "feature", "purposes", "kept for"],
                  rows=[[c.category, c.feature, ", ".join(c.purposes), c.retention]
                        for c in self.categories]),
            Table(title="Differential-privacy charges",
                  columns=["purpose", "mechanism", "epsilon", "delta", "at", "status"],
                  rows=[[c.get("purpose"), c.get("mechanism"), c.get("epsilon"),
                         c.get("delta"), c.get("created_at", c.get("at")),
                         c.get("status", "settled")]
                        for c in self.privacy_charges],
                  note="A reserved line holds budget for a fit that has not settled yet (in "
                       "progress, or stopped before settling); it counts at the reserved "
                       "amount."
                  if any(c.get("status") == "reserved" for c in self.privacy_charges)
                  else None),
            Table(title="Audit log", columns=["entries", "hash chain intact"],
                  rows=[[self.audit_entries, "yes" if self.audit_intact else "NO"]]),
        ]


def records_of_processing(store: Any, ledger: Any = None) -> RecordsOfProcessingReport:
    """The records of processing activities of ``store`` (GDPR Art. 30).

    Differential-privacy charges come from ``ledger`` (a
    :class:`persona.privacy.BudgetLedger`) when given, else from the store's own persisted
    ledger (``store.privacy_charges()``, with reservations not settled yet marked
    ``reserved``); each purpose states its privacy budget policy in plain words: a lifetime
    total, or a budget per period together with the weaker guarantee that gives over a year.

    Examples
    --------
    >>> import persona
    >>> store = persona.Store(":memory:")
    >>> store.define_purpose("ads", description="Show our ads on other sites", sharing=True)
    >>> store.define_feature("location", purposes=["ads"], category="approximate location",
    ...                      retention_days=None)
    >>> r = records_of_processing(store)
    >>> r.purposes[0].recipients, r.categories[0].retention
    ('third parties (data is sold or shared)', 'until erased')
    """
    purposes = store.purposes
    features = store.features
    rows = []
    for name, spec in sorted(purposes.items()):
        mine = sorted(f for f, fs in features.items() if name in fs.purposes)
        rows.append(ProcessingPurpose(
            name=name, description=spec.description,
            legal_basis="consent (GDPR Art. 6(1)(a)); reads see only people whose consent "
                        "is active",
            categories=sorted({features[f].category for f in mine}), features=mine,
            recipients="third parties (data is sold or shared)" if spec.sharing
            else "no one outside the controller",
            tcf_purposes=list(spec.tcf_purposes), consent_mode=list(spec.consent_mode),
            privacy_budget=_budget(store, name),
            privacy_budget_policy=None if (policy := _policy(store, name)) is None
            else policy.model_dump(mode="json"),
            privacy_budget_statement=None if policy is None else policy.describe(),
        ))
    categories = [DataCategory(feature=name, category=spec.category,
                               purposes=list(spec.purposes), retention=_days(spec.retention_days),
                               description=spec.description)
                  for name, spec in sorted(features.items())]
    return RecordsOfProcessingReport(
        title="Records of processing activities", generated_at=_now(),
        store_id=store.store_id, purposes=rows, categories=categories,
        audit_entries=len(store.audit), audit_intact=store.audit.verify(),
        privacy_charges=_charges(store, ledger),
    )


def _budget(store: Any, purpose: str) -> tuple[float, float] | None:
    read = getattr(store, "privacy_budget", None)
    return None if read is None else read(purpose)


_NO_BUDGET = ("none set: the first private fit sets a lifetime total equal to its own "
              "(ε, δ)")


def _policy(store: Any, purpose: str) -> Any:
    read = getattr(store, "privacy_budget_policy", None)
    return None if read is None else read(purpose)


def _budget_statement(store: Any, purpose: str) -> str | None:
    policy = _policy(store, purpose) if purpose in store.purposes else None
    return None if policy is None else policy.describe()


def _charges(store: Any, ledger: Any) -> list[dict[str, Any]]:
    if ledger is not None:
        return [_flat(c) for c in ledger.export()]
    read = getattr(store, "privacy_charges", None)
    if read is None:
        return []
    return [c.model_dump(mode="json") for c in read()]


def _flat(charge: Any) -> dict[str, Any]:
    """A ledger charge with its ``spent`` fields lifted up (mechanism, epsilon, delta)."""
    out = dict(charge)
    spent = out.get("spent") or out.get("charge")
    if isinstance(spent, dict):
        for k in ("mechanism", "epsilon", "delta"):
            out.setdefault(k, spent.get(k))
    return out
