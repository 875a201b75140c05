"""What a private fit does around its mechanism: refuse inputs that would make the release
depend on the data outside the noise, reserve the budget before anything is released, take
the item universe from public data (or choose it privately), and settle the charge.

Every decision here depends on public facts only (how the interactions were built, whether
a catalogue was declared, the ``DP`` settings), never on the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from persona.data import Interactions
from persona.errors import PrivateInputError, ValidationError
from persona.models._threads import _one_blas_thread
from persona.privacy import DP, private_item_selection
from persona.schema import PrivacySpent

if TYPE_CHECKING:
    from persona.models._base import Recommender

__all__ = [
    "Held", "NoItemSelected", "check_inputs", "fit", "public_lineage", "reserve", "settle",
    "universe",
]


def fit(model: Recommender, X: Interactions, privacy: DP, config: Any) -> None:
    """``model.fit(X)`` with ``privacy``: refuse, reserve, then release; nothing here
    depends on the data outside the noise (no data-dependent exception, item set, size or
    order). The model's ``_fit_private`` releases its pooled part and sets
    ``privacy_spent_``, which then also counts a private item selection."""
    check_inputs(X, privacy)
    held = reserve(X, privacy)
    try:
        X, model_dp, selection = universe(X, privacy)
    except NoItemSelected as exc:
        settle(held, [exc.spent])
        raise
    model._start(X, public_lineage(X.lineage, X.n_items), config)
    with _one_blas_thread():
        model._fit_private(X.matrix, config, model_dp)
    parts = [p for p in (selection, model.privacy_spent_) if p is not None]
    model.privacy_spent_ = PrivacySpent.composed(parts)
    settle(held, parts)


def check_inputs(X: Interactions, privacy: DP) -> None:
    """Refuse, before anything is released, what a private fit cannot make private."""
    reason = X.mixes_people
    if reason is not None:
        raise PrivateInputError(
            f"a private fit bounds each person's contribution before pooling, but {reason}",
            errors=[{"row": None, "field": "preprocessing", "message": "mixes people"}],
        )
    if X.catalogue is None and privacy.items == "declared":
        raise PrivateInputError(
            "a private fit takes its items from a declared catalogue, never from the events "
            "(which items exist would reveal who bought them); declare the items with "
            "store.define_items([...]) or store.label_items({...}), pass items=<the "
            "catalogue> to Interactions.from_pandas, or let the fit choose them privately "
            "with DP(..., items='select')",
            errors=[{"row": None, "field": "items", "message": "no declared catalogue"}],
        )
    if X.catalogue is not None and len(X.catalogue) == 0:
        raise PrivateInputError(
            "the declared catalogue is empty; declare the items the shop sells with "
            "store.define_items([...])",
            errors=[{"row": None, "field": "items", "message": "empty catalogue"}],
        )


class NoItemSelected(ValidationError):
    """Private item selection kept no item (a DP release: what it spent stays charged).
    HTTP 422, as every :class:`~persona.ValidationError`."""

    code = "no_item_selected"
    http_status = 422

    def __init__(self, spent: PrivacySpent) -> None:
        super().__init__(
            "differentially private item selection kept no item: too few people hold any "
            "item for this epsilon; declare the catalogue with store.define_items([...]), "
            "raise epsilon or selection_share, or gather more data",
            errors=[{"row": None, "field": "items", "message": "no item selected"}],
        )
        self.spent = spent


@dataclass(frozen=True)
class Held:
    """A reservation on the ledger of the data's store, to settle after the fit."""

    ledger: Any
    reservation: Any
    snapshot: str | None


def reserve(X: Interactions, privacy: DP) -> Held | None:
    """Reserve the fit's (ε, δ) on the ledger of the store ``X`` was read from (``None``
    when it came from elsewhere): one atomic check-and-record, before any release. The
    reserved amount is the requested total, which every plan stays within."""
    source = X.ledger
    lineage = X.lineage
    purpose = getattr(lineage, "purpose", None)
    if source is None or purpose is None:
        return None
    ledger = source(default=(privacy.epsilon, privacy.delta))
    seq = getattr(lineage, "audit_seq", None)
    snapshot = None if seq is None else f"audit#{seq}"
    return Held(ledger, ledger.reserve(purpose, (privacy.epsilon, privacy.delta)), snapshot)


def settle(held: Held | None, parts: list[PrivacySpent]) -> None:
    """Record what the fit spent against its reservation."""
    if held is not None:
        held.ledger.settle(held.reservation, parts, snapshot=held.snapshot)


def universe(X: Interactions, privacy: DP) -> tuple[Interactions, DP, PrivacySpent | None]:
    """The interactions on the public item universe, the settings left for the model, and
    what choosing the items spent (``None`` for a declared catalogue). Public as
    ``persona.models.private_item_universe``, for code that fits several private models on
    the same items (the private model choice) and so selects them once.

    Without a declared catalogue (``DP(items="select")``), the items are those whose noisy
    count of distinct people passes OpenDP's threshold, in the order of their ids: the
    chosen set is a DP release, and nothing else about the events' items is used."""
    if X.catalogue is not None:
        return X.on_catalogue(), privacy, None
    selection_dp, model_dp = privacy.split(privacy.selection_share)
    cols, spent = private_item_selection(X.matrix, selection_dp)
    if cols.size == 0:  # a function of the DP release alone: the (charged) selection is kept
        raise NoItemSelected(spent)
    chosen = np.array(sorted(X.items[cols].tolist()), dtype=object)
    restricted = Interactions(
        X.matrix, X.users, X.items, at=X.at, lineage=X.lineage, features=X.features,
        catalogue=chosen, preprocessing=X.preprocessing, ledger=X.ledger,
    )
    return restricted.on_catalogue(), model_dp, spent


def public_lineage(lineage: Any, n_items: int) -> Any:
    """The lineage a private model keeps and saves: public facts only. Exact counts of
    people, events and consent states are not DP releases, so they are dropped, and so is
    the number of the audit entry of the read (it counts the store's earlier entries, one
    per grant among them); the item count is the item universe's size (public, or a DP
    release when the items were selected)."""
    copy = getattr(lineage, "model_copy", None)
    if not callable(copy):
        return lineage
    return copy(update={"people": None, "rows": None, "consent": None, "audit_seq": None,
                        "outside_retention": None, "items": int(n_items)})
