"""The EU Digital Services Act, Art. 27 report: the main parameters of a recommender and the
options people have, in words a person reads (no code, no implementation settings)."""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from persona.errors import ValidationError
from persona.reports._render import Report, Table, days, human_number, human_numbers, now
from persona.reports._wording import MODEL_DESCRIPTIONS, MODEL_FAMILIES, describe_mechanism

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # typing.TypeIs from Python 3.13

    from persona.models import Recommender
    from persona.personalizer import Personalizer
    from persona.store import Store

__all__ = ["MainParametersReport", "main_parameters"]


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
    """How a person makes the choice, in words."""


class Setting(BaseModel):
    """One main parameter a person can understand, in words."""

    setting: str
    value: str


class MainParametersReport(Report):
    """The main parameters of a recommender and the options people have (DSA Art. 27)."""

    model: str
    """The model's class name (for machines; the report says it in words)."""
    personalised: bool
    how_it_works: str
    parameters: list[Setting]
    """The parameters a person can understand: the kind of model, what it learns, how
    data is weighted, how recent data counts, how many suggestions are shown."""
    purpose: str | None
    purpose_description: str | None
    signals: list[Signal]
    options: list[Option]
    trained_at: datetime | None
    people: int | None
    items: int | None
    privacy: dict[str, Any] | None = None
    """The differential-privacy guarantee of the pooled parts (``model.privacy_spent_``),
    exact numbers for machines; the rendered report rounds them to two digits."""
    randomness: str | None = None
    """Where the noise comes from, from persona's fixed vocabulary
    (:data:`persona.privacy.RANDOMNESS`)."""
    privacy_budget: str | None = None
    """The purpose's privacy budget policy in plain words (what all fits together may
    spend, and for a per-period budget the weaker guarantee it gives), if one is set."""

    def _intro(self) -> list[str]:
        return [self.how_it_works]

    def _tables(self) -> list[Table]:
        p = self.privacy
        return [
            Table(title="Data the suggestions are based on",
                  columns=["kind of data", "used", "why", "kept for"],
                  rows=[[s.category, "yes" if s.used else "no", s.reason, s.retention]
                        for s in self.signals],
                  note=None if self.purpose is None else
                  f"Read for the purpose '{self.purpose}': {self.purpose_description}"),
            Table(title="How the suggestions are made", columns=["parameter", "value"],
                  rows=[[s.setting, s.value] for s in self.parameters],
                  note=None if self.trained_at is None else
                  f"The model learned from data read on {self.trained_at:%d %B %Y}"
                  + self._sizes()),
            Table(title="Your options", columns=["choice", "what changes", "how"],
                  rows=[[o.choice, o.effect, o.how] for o in self.options]),
            Table(title="Privacy protection",
                  columns=["what was protected", "ε (smaller is stronger)", "δ",
                           "whose data", "where the noise comes from"],
                  rows=[] if p is None else [[
                      describe_mechanism(p.get("mechanism")), human_number(p.get("epsilon")),
                      human_number(p.get("delta")), "all of one person's data",
                      self.randomness]],
                  note=(f"Trends pooled from many people were blurred with random noise "
                        f"(differential privacy, ε = {human_number(p.get('epsilon'))}, "
                        f"δ = {human_number(p.get('delta'))}): what the model learned is "
                        "almost the same with or without any one person's data."
                        + ("" if self.privacy_budget is None else
                           f" The privacy budget of '{self.purpose}', which every private "
                           f"fit on it shares: {self.privacy_budget}"))
                  if p is not None else None,
                  empty="This model was trained without differential privacy."),
        ]

    def _sizes(self) -> str:
        if self.people is not None:
            return f" ({self.people} people, {self.items} items)."
        if self.privacy is not None:
            return (f", over a catalogue of {self.items} items (declared by the shop, or "
                    "chosen with differential privacy). How many people's data was used is "
                    "not shown: an exact count is not protected by the noise.")
        return "."


def _is_personalizer(model: Recommender | Personalizer) -> TypeIs[Personalizer]:
    """Whether ``model`` is a Personalizer (a fitted model with its store), not a model."""
    return hasattr(model, "model_") and hasattr(model, "store")


def _lineage(model: Any) -> Any:
    from persona.explain import model_lineage

    return model_lineage(model)


def _weights(p: Any, features: dict[str, Any]) -> str | None:
    weights = getattr(p, "weights", None)
    if not weights:
        return "every kind of data counts the same"
    return ", ".join(f"{features[f].category if f in features else f} × {w:g}"
                     for f, w in weights.items())


_SCALING = {
    "none": "each event counts by its amount (for example the quantity bought)",
    "log": "repeated events count less and less (logarithmic)",
    "row": "each person's history weighs the same in total",
    "bm25": "rare items and short histories count more",
}


def _settings(model: Any, p: Any, features: dict[str, Any], list_length: int | None
              ) -> list[Setting]:
    name = type(model).__name__
    params = getattr(model, "params_", None) or model.get_params(deep=False)  # as fitted
    out = [Setting(setting="Kind of model", value=MODEL_FAMILIES.get(name, name))]
    if "factors" in params:
        out.append(Setting(setting="Patterns learned from everyone's choices",
                           value=f"{params['factors']} patterns"))
    if "neighbours" in params:
        out.append(Setting(setting="Links kept per item",
                           value=f"{params['neighbours']} most similar items"))
    if params.get("measure") in ("cosine", "bm25"):
        out.append(Setting(setting="How items are linked", value=(
            "by how often the same people choose both" if params["measure"] == "cosine" else
            "by how often the same people choose both, rare items counting more")))
    if params.get("count") in ("people", "confidence"):
        out.append(Setting(setting="How items are ranked", value=(
            "by how many people chose them" if params["count"] == "people" else
            "by how much they were chosen in total")))
    if p is not None:
        out.append(Setting(setting="Weight of each kind of data",
                           value=_weights(p, features) or ""))
        scaling = getattr(p, "scaling", "none")
        out.append(Setting(setting="Repeated events", value=_SCALING.get(scaling, scaling)))
        half_life = getattr(p, "half_life", None)
        out.append(Setting(setting="How recent data counts", value=(
            "every event within its retention period counts the same" if half_life is None
            else f"an event counts half as much after "
                 f"{human_number(half_life / timedelta(days=1))} days")))
    if model.personalised:
        n = list_length if list_length is not None else _default_n(model)
        out.append(Setting(setting="Suggestions shown at a time", value=f"up to {n}"))
    return out


def _default_n(model: Recommender) -> int:
    param = inspect.signature(type(model).recommend).parameters.get("n")
    return 10 if param is None or not isinstance(param.default, int) else param.default


def _options(model: Recommender, store: Store, purpose: str | None) -> list[Option]:
    options = []
    if purpose is not None and model.personalised:
        description = store.purposes[purpose].description if purpose in store.purposes \
            else purpose
        if hasattr(store, "prefer_non_profiling"):
            options.append(Option(
                choice="Suggestions not based on profiling",
                effect="You see the same list as everyone (the items most people chose); "
                       "none of your data is used to pick it, and your consent stays as it "
                       "is.",
                how="Choose it in your settings, or ask us; you can undo it at any time."))
        options.append(Option(
            choice=f"Turn off '{purpose}'",
            effect="Your data is no longer read for it; you get the same list as everyone "
                   "(the items most people chose), which uses none of your data.",
            how=f"Withdraw your consent to \u201c{description}\u201d where you gave it (for "
                "example in your privacy settings), or ask us."))
    categories = sorted({spec.category for spec in store.features.values()
                         if purpose is not None and purpose in spec.purposes})
    if categories:
        options.append(Option(
            choice=f"Do not use one item of your {' or '.join(categories)}",
            effect="That item leaves every read of your data at once.",
            how="Say so next to the item where the service offers it, or ask us."))
    options += [
        Option(choice="Not interested in an item", effect="It is not suggested to you again.",
               how="Say so next to the suggestion, or ask us."),
        Option(choice="See your data",
               effect="You get all data held about you, the explanations you were shown and "
                      "a record of what was done with your data.",
               how="Ask us for a copy of your data."),
        Option(choice="Erase your data",
               effect="All data held about you is deleted; only a record under a pseudonym "
                      "that the erasure happened is kept.",
               how="Ask us to erase your data."),
    ]
    return options


def main_parameters(model: Recommender | Personalizer, store: Store | None = None, *,
                    list_length: int | None = None) -> MainParametersReport:
    """The main parameters of a recommender and people's options (EU DSA Art. 27).

    ``model`` is a fitted model (with ``store``) or a fitted
    :class:`~persona.Personalizer` (its store is used; its weights, repeated-event scaling
    and time decay are reported too). Only parameters a person can understand are shown:
    the kind of model in words, what it learns, the data it reads and how long it is kept,
    how data is weighted, how recent data counts and ``list_length``, the number of
    suggestions shown at a time (default: the ``recommend`` default). Options are said in
    words. The privacy guarantee is written with two significant digits, and where the
    noise comes from is read from persona's fixed vocabulary, never from free text.

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
    from persona.explain import privacy_statement
    from persona.privacy import randomness_statement

    p = None
    if _is_personalizer(model):
        p, model = model, model.model_
        store = p.store if store is None else store
    if store is None:
        raise ValidationError(
            "main_parameters needs the store the model was fitted on: "
            "main_parameters(model, store), or pass a fitted Personalizer",
            errors=[{"row": None, "field": "store", "message": "missing"}],
        )
    if list_length is not None and (type(list_length) is not int or not 1 <= list_length
                                    <= 10_000):
        raise ValidationError(
            f"field 'list_length': give a whole number from 1 to 10000, not {list_length!r}",
            errors=[{"row": None, "field": "list_length", "message": "invalid"}],
        )
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
                retention=days(spec.retention_days if spec else f.retention_days),
                used=f.used, reason=f.reason,
            ))
    else:
        for name, spec in sorted(features.items()):
            signals.append(Signal(feature=name, category=spec.category,
                                  purpose=", ".join(spec.purposes),
                                  retention=days(spec.retention_days), used=True,
                                  reason=f"allowed for {', '.join(spec.purposes)}"))
    statement = privacy_statement(getattr(model, "privacy_spent_", None))
    randomness = None
    if statement is not None or getattr(model, "privacy", None) is not None:
        randomness = randomness_statement(getattr(model, "privacy", None))
    name = type(model).__name__
    return MainParametersReport(
        title="Main parameters of the recommender system",
        generated_at=now(), store_id=store.store_id, model=name,
        personalised=bool(model.personalised),
        how_it_works=MODEL_DESCRIPTIONS.get(name, type(model).__doc__ or ""),
        parameters=_settings(model, p, features, list_length), purpose=purpose,
        purpose_description=None if purpose is None or purpose not in purposes
        else purposes[purpose].description,
        signals=signals, options=_options(model, store, purpose),
        trained_at=None if lineage is None else lineage.read_at,
        people=None if lineage is None else lineage.people,
        items=None if lineage is None else lineage.items,
        privacy=None if statement is None else statement.model_dump(mode="json"),
        randomness=randomness,
        privacy_budget=None if purpose is None else _budget_statement(store, purpose),
    )


def _budget_statement(store: Store, purpose: str) -> str | None:
    read = getattr(store, "privacy_budget_policy", None)
    policy = None if read is None or purpose not in store.purposes else read(purpose)
    return None if policy is None else human_numbers(policy.describe())
