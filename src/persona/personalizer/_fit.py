"""Fitting a Personalizer's serving state: the privacy split between the model and the
fallback, the reservation in the store's budget ledger before any data is read, the fit
itself, and the version id that names it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from persona.data import Interactions
from persona.errors import PrivateInputError
from persona.models import Popularity, PrivateTrainingUnavailableError, Recommender
from persona.personalizer._choice import fit_private_choice, with_item_text
from persona.personalizer._state import (
    Capture,
    ServingState,
    block,
    decay_reference,
    prune,
    signatures,
)
from persona.schema import PrivacySpent

if TYPE_CHECKING:
    from persona.personalizer._personalizer import Personalizer
    from persona.privacy import DP

__all__ = ["fit", "version"]


def _split_privacy(p: Personalizer) -> tuple[DP | None, DP | None]:
    """The model's and the fallback's shares of the Personalizer's privacy."""
    if p.privacy is None:
        return None, None
    dp, share = p.privacy, p.fallback_share
    model_dp = dp.model_copy(
        update={"epsilon": dp.epsilon * (1 - share), "delta": dp.delta * (1 - share)}
    )
    fallback_dp = dp.model_copy(
        update={"epsilon": dp.epsilon * share, "delta": dp.delta * share})
    return model_dp, fallback_dp


def _planned(p: Personalizer, model_dp: DP, fallback_dp: DP) -> list[PrivacySpent]:
    """The spend reserved before the read: the model's and the fallback's shares."""
    name = "model choice" if p.chooses_model else type(p.model).__name__
    return [
        PrivacySpent(mechanism=f"{name} (planned)",
                     epsilon=model_dp.epsilon, delta=model_dp.delta),
        PrivacySpent(mechanism="Popularity fallback (planned)",
                     epsilon=fallback_dp.epsilon, delta=fallback_dp.delta),
    ]


def version(p: Personalizer, model: Recommender, fitted_at: datetime) -> str:
    """The serving state's version id: a digest of the store, the purpose, the model class
    and the time of the fit."""
    text = "\x00".join([p.store.store_id, p.purpose, type(model).__name__,
                        fitted_at.isoformat()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fit(p: Personalizer) -> None:
    """:meth:`Personalizer.fit`; the caller holds its fit lock."""
    labels = p._view.item_labels()  # the catalogue's public labels
    choosing = p.chooses_model and p.privacy is not None
    template = with_item_text(p.model, labels)
    model_dp, fallback_dp = _split_privacy(p)
    ledger = reservation = None
    if p.privacy is not None and model_dp is not None and fallback_dp is not None:
        # with no budget set, this fit's (ε, δ) becomes the purpose's lifetime total
        ledger = p.store.privacy_ledger(
            p.purpose, default=(p.privacy.epsilon, p.privacy.delta)
        )
        reservation = ledger.reserve(p.purpose, _planned(p, model_dp, fallback_dp))
    view = Capture(p._view)
    X = Interactions.from_view(
        view,
        weights=p.weights,
        scaling=p.scaling,  # type: ignore[arg-type]
        half_life=p.half_life,
        now=decay_reference(p.half_life),
    )
    X.ledger = None  # this fit's own reservation pays for the model and the fallback
    params = template.get_params(deep=False)
    params["privacy"] = model_dp
    chosen = None
    try:
        if choosing and model_dp is not None and fallback_dp is not None:
            chosen = fit_private_choice(X, model_dp, fallback_dp, labels)
            model, fallback = chosen.model, chosen.fallback
        else:
            model = type(template)(**params).fit(X)
    except (PrivateTrainingUnavailableError, PrivateInputError):
        if ledger is not None and reservation is not None:  # refused before it used the
            ledger.cancel(reservation)  # data: nothing released
        raise
    if chosen is None:
        fallback = Popularity(privacy=fallback_dp).fit(X)
    else:  # the template names what was chosen; the choice is kept for reviewers
        p.model = type(model)(**{**model.get_params(deep=False), "privacy": None})
        p.choice_ = chosen.choice
    model.item_labels_ = labels
    fallback.item_labels_ = labels
    if ledger is not None and reservation is not None:
        lineage = X.lineage
        snapshot = None if lineage is None else f"audit#{lineage.audit_seq}"
        spents = chosen.spents if chosen is not None else [  # the choice: every release
            spent for part in (model, fallback)
            if (spent := getattr(part, "privacy_spent_", None)) is not None
        ]
        ledger.settle(reservation, spents, snapshot=snapshot)
    fitted_at = datetime.now(UTC)
    state = ServingState(
        model=model, fallback=fallback, labels=labels, fitted_at=fitted_at,
        version=version(p, model, fitted_at),
        basis={} if view.cols is None else signatures(view.cols),
    )
    with p._swap_lock:
        # whoever withdrew or was erased since the read leaves before the swap
        prune(state, p.store.consented(p.purpose))
        block(state, p._curation.block)
        precompute = getattr(model, "precompute", None)
        if callable(precompute):
            precompute()  # every served vector solved before the swap
        p._state = state
