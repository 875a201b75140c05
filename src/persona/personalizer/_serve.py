"""The serving path of :meth:`Personalizer.recommend`: the live consent check's outcome,
the model's list or the non-profiling fallback, the person's own data statements on each
explanation, curation, and (re)folding a person whose usable data changed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from persona._columns import EventColumns
from persona.data import Interactions
from persona.explain import DataNotUsed, attach_explanations, person_context
from persona.personalizer._curation import Curation, merge, pinned
from persona.personalizer._state import (
    NOTHING,
    OnePerson,
    ServingState,
    decay_reference,
    drop,
    signature,
    signatures,
)
from persona.schema import FeatureSpec, PersonLineage, Recommendation

if TYPE_CHECKING:
    from persona.models import Recommender
    from persona.personalizer._personalizer import Personalizer
    from persona.store import Served

__all__ = ["fold_in", "non_profiling", "serve"]


def serve(
    p: Personalizer, state: ServingState, user: str, n: int, served: Served,
    detail: Literal["summary", "full"] = "summary",
) -> list[Recommendation]:
    """The list :meth:`Personalizer.recommend` returns, from what ``served`` read now."""
    person, not_interested = served.person, served.not_interested
    curation = p._curation
    if not person.active:
        drop(state, user)
        return _fallback(state, user, n, served, curation, set(), detail)
    if served.non_profiling:  # their choice: a list not based on them
        return _fallback(state, user, n, served, curation, not_interested, detail)
    exclude = set(curation.block) | not_interested | set(curation.pin)
    with state.lock.read():
        known = state.model.has_user(user)
        current = known and state.basis.get(user) == signature(person)
        # excluding an item the model does not know (a pin of a newly declared item)
        # changes nothing
        exclude = {i for i in exclude if state.model.has_item(i)}
    if not current:  # unknown, or their usable data changed since their row was built
        # read in a snapshot; its audit entry is group-committed after the request's
        cols = p.store.history_for_serving(served, user) if person.rows else None
        if not known and (cols is None or len(cols) == 0):
            return _fallback(state, user, n, served, curation, not_interested, detail)
        p._fold_in(state, user, cols)  # none usable now: an empty row, then fallback
    with state.lock.read():
        size = state.model.history_length(user)
        if size is None:  # forgotten meanwhile
            return _fallback(state, user, n, served, curation, not_interested, detail)
        if size == 0:  # nothing left in their history
            return _fallback(state, user, n, served, curation, not_interested, detail)
        recs = state.model.recommend(user, n, exclude=exclude, explain=False)
        recs = _explained(state.model, user, recs, served, detail)
        pins = pinned(state.labels, curation, not_interested, n)
    return merge(recs, pins, n)


def _fallback(
    state: ServingState,
    user: str,
    n: int,
    served: Served,
    curation: Curation,
    not_interested: set[str],
    detail: Literal["summary", "full"] = "summary",
) -> list[Recommendation]:
    fb = state.fallback
    exclude = {i for i in set(curation.block) | set(curation.pin) | not_interested
               if fb.has_item(i)}
    recs = fb.recommend(user, n, exclude=exclude, explain=False)
    recs = _explained(fb, user, recs, served, detail)
    pins = pinned(state.labels, curation, not_interested, n)
    return merge(recs, pins, n)


def _explained(
    model: Recommender, user: str, recs: list[Recommendation], served: Served,
    detail: Literal["summary", "full"] = "summary",
) -> list[Recommendation]:
    """Explain ``recs`` with this person's own data statements (consent, dates), read
    from the store for this request, instead of the model-level ones."""
    if not recs:
        return recs
    person = served.person
    used, not_used, lineage = person_context(model, person, served.features)
    if served.non_profiling and person.active:
        not_used = non_profiling(not_used, person, served.features, served.non_profiling_since)
    return attach_explanations(model, [user], [recs], data=(used, not_used, lineage),
                               detail=detail)[0]


def non_profiling(
    not_used: list[DataNotUsed], person: PersonLineage, features: Mapping[str, FeatureSpec],
    since: datetime | None,
) -> list[DataNotUsed]:
    """The data-not-used statements of a person who chose the non-profiling list: their
    own data is left out by their choice (``non_profiling_chosen``), said for each kind of
    their data the purpose may use (with how many events, 0 when none)."""
    out = [d.model_copy(update={"reason": "non_profiling_chosen", "since": since})
           if d.reason == "not_personalised" else d for d in not_used]
    if not any(d.reason == "non_profiling_chosen" for d in out):
        for name, spec in features.items():
            if person.purpose in spec.purposes:
                out.insert(0, DataNotUsed(
                    feature=name, category=spec.category, reason="non_profiling_chosen",
                    purpose=person.purpose, events=0, since=since,
                ))
    return out


def fold_in(p: Personalizer, state: ServingState, user: str, cols: EventColumns | None) -> None:
    """(Re)build ``user``'s model row from ``cols``, their usable events now (``None``:
    none), and remember what it was built from."""
    history: dict[str, float] = {}
    basis = NOTHING
    if cols is not None and len(cols):
        X1 = Interactions.from_view(
            OnePerson(cols),
            weights=p.weights,
            scaling=p.scaling,  # type: ignore[arg-type]
            half_life=p.half_life,
            now=decay_reference(p.half_life),
        )
        history = {str(i): float(v) for i, v in X1.history(user).items()}
        basis = signatures(cols).get(user, NOTHING)
    with state.lock.write():
        state.model.fold_in(user, history, unknown_items="ignore")
        state.basis[user] = basis
