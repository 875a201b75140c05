""":meth:`Personalizer.explain`: an item explained with the model now serving a person
(consent, retention and their non-profiling choice applied as when serving), or, with
``at``, the record of what was shown to them then."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from persona.errors import NotShownError, UnknownItemError, UnknownUserError
from persona.personalizer._serve import non_profiling
from persona.personalizer._state import ServingState, signature

if TYPE_CHECKING:
    from persona.explain import Explanation
    from persona.personalizer._personalizer import Personalizer
    from persona.store import ShownRecord

__all__ = ["explain_now", "explain_shown"]


def explain_now(
    p: Personalizer, state: ServingState, user: str, item: str, counterfactual: bool, n: int,
) -> Explanation:
    """``item`` for ``user`` explained by the state now serving, after a live read."""
    if not (state.model.has_item(item) or state.fallback.has_item(item)):
        raise UnknownItemError(
            f"{item!r} is not in the model's catalogue; refit to include new items",
            item=item,
        )
    served = p.store.read_for_serving(p.purpose, user)
    p.store.enqueue_serving(served.pending)  # the read's audit entry
    person = served.person
    view = p._view
    if not person.active:
        return state.fallback.explain(user, item, view=view)
    if served.non_profiling:
        e = state.fallback.explain(user, item, view=view)
        not_used = non_profiling(list(e.data_not_used), person, served.features,
                                 served.non_profiling_since)
        return e.model_copy(update={"data_not_used": not_used})
    with state.lock.read():
        known = state.model.has_user(user)
        current = known and state.basis.get(user) == signature(person)
    if not current:  # unknown, or their usable data changed: (re)folded as recommend does
        cols = p.store.history_for_serving(served, user) if person.rows else None
        for read in served.later:  # (the history read's audit entry)
            p.store.enqueue_serving(read)
        if not known and (cols is None or len(cols) == 0):
            return state.fallback.explain(user, item, view=view)
        p._fold_in(state, user, cols)
    with state.lock.read():
        size = state.model.history_length(user)
        if size is not None:
            if size == 0:  # nothing of theirs usable now
                return state.fallback.explain(user, item, view=view)
            return state.model.explain(
                user, item, counterfactual=counterfactual, n=n, view=view
            )
    raise UnknownUserError(
        f"{user!r} has no history in the model; call p.recommend({user!r}) first"
    )


def explain_shown(p: Personalizer, user: str, item: str, at: datetime) -> ShownRecord:
    """The record of the last time ``item`` was shown to ``user`` at or before ``at``."""
    record = p.store.last_shown(user, item, at, p.purpose)
    if record is None:
        days = p.store.shown_retention_days
        kept = "until the person is erased" if days is None else f"for {days} days"
        raise NotShownError(
            f"there is no record of {item!r} shown to this person at or before "
            f"{at.isoformat()}: it was not shown then, or it was shown with "
            "record_shown=False, or its record is past retention (shown records are "
            f"kept {kept}; see store.set_shown_retention). List what is held with "
            "store.shown(user).",
            item=item,
        )
    return record
