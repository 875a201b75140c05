"""Explaining one item: reasons, data used and not used, counterfactuals.

Reasons are the model's own score decomposition, computed for the very state that served
the score (:meth:`persona.models.Recommender.attribute`): ALS splits ``y_iᵀ u`` over the
history through the exact solve that produced ``u`` (Hu, Koren & Volinsky 2008, section
5); ItemKNN's score *is* a sum of neighbour similarities. Models with no exact split (BPR)
get a justification (similar history items, marked as such), and the non-personalised
Popularity cites no personal data. Served lists are explained by
:mod:`persona.explain._served`, on first read.

``persona.explain`` sees models only through that public contract (it imports no model):
the models call it, and it calls back what they publish.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from persona.errors import NotFittedError, ValidationError
from persona.explain._context import context, person_data
from persona.explain._lazy import Reasons, split_reasons
from persona.explain._served import labels_of, namer, summary_wanted
from persona.schema import (
    Detail,
    Evidence,
    Explanation,
    LineageRef,
    Rest,
    check_id,
)

if TYPE_CHECKING:
    from persona.explain._protocol import Attributed

__all__ = ["curated_explanation", "explain"]


def _history_meta(cols: Any) -> dict[str, tuple[str, datetime]]:
    """Item → (feature of the latest event, its time) from a person's store history."""
    out: dict[str, tuple[str, datetime]] = {}
    if cols is None or len(cols.item) == 0:
        return out
    order = np.argsort(cols.at, kind="stable")
    items, feats, ats = cols.items, cols.features, cols.at
    for k in order.tolist():
        at = ats[k].astype("datetime64[us]").item()
        out[str(items[cols.item[k]])] = (str(feats[cols.feature[k]]), _utc(at))
    return out


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _store_features(store: Any, view: Any) -> Mapping[str, Any]:
    """The store's feature definitions (what each feature is allowed for)."""
    if store is not None:
        return store.features  # type: ignore[no-any-return]
    features = getattr(view, "features", None)  # a ScopedView's, or a view-like's own
    if callable(features):
        features = features()
    return {} if features is None else features


def explain(
    model: Attributed,
    user: str,
    item: str,
    *,
    counterfactual: bool = False,
    n: int = 10,
    store: Any = None,
    view: Any = None,
    labels: Mapping[str, str] | None = None,
    language: str = "en",
    rank: int | None = None,
    detail: Detail = "full",
) -> Explanation:
    """Explain why ``model`` scores ``item`` for ``user`` as it does (recommended or not).

    Parameters
    ----------
    model
        A fitted persona recommender.
    user, item
        The person and the item.
    counterfactual
        Also search, greedily by contribution, the smallest part of the history whose
        removal takes the item out of the top ``n``, verified by re-scoring through fold-in.
    n
        The list length the counterfactual (and the rank) refer to.
    store, view
        A :class:`persona.Store` or a scoped view (``store.scope(purpose)``). With either,
        the person's own lineage is read (one audited read): when each kind of data was
        used, under which consent, and what was left out and why, with dates; and item
        labels come from the store. Without, data used/not used come from the model's
        training lineage only.
    labels
        Extra item labels (id → title), over those set with ``model.set_item_labels``.
    language
        Which template file renders the text.
    rank
        The item's rank when the caller knows it; computed otherwise.
    detail
        ``"full"`` (default): every reason. ``"summary"``: the top reasons (up to three
        for the item and the largest against it), the others totalled in ``rest``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from persona.data import Interactions
    >>> from persona.models import ItemKNN
    >>> X = Interactions.from_csr(sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]])),
    ...                          ["u1", "u2", "u3"], ["boots", "socks", "tent"])
    >>> model = ItemKNN(neighbours=3).fit(X).set_item_labels({"boots": "Hiking Boots",
    ...     "socks": "Trail Socks", "tent": "Tent"})
    >>> e = explain(model, "u1", "tent")
    >>> e.kind, [r.label for r in e.reasons]
    ('decomposition', ['Trail Socks', 'Hiking Boots'])
    >>> bool(np.isclose(sum(r.contribution for r in e.reasons), e.score))
    True
    >>> e.text
    'We picked Tent for you because you chose Trail Socks and Hiking Boots.'
    """
    if not model.is_fitted:
        raise NotFittedError(f"this {type(model).__name__} is not fitted yet; call fit(X) first")
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        raise ValidationError(f"n must be a positive integer, not {n!r}")
    summary = summary_wanted(detail)
    att = model.attribute(user, [item])  # refuses an unknown item, then an unknown person
    item, user = check_id(item, "item"), check_id(user, "user")  # ints as their strings
    ctx = context(model)
    kind = att.kind
    if view is None and store is not None:
        purpose = ctx.lineage.purpose if ctx.lineage is not None else None
        if purpose is None:
            raise ValidationError(
                "the model has no store lineage, so the purpose to read is unknown; pass "
                "view=store.scope(purpose) instead of store="
            )
        view = store.scope(purpose)
    meta = None
    person = None
    all_labels = dict(labels_of(model, labels))
    if view is not None:
        cols_, person = view.history_with_lineage(user)
        meta = _history_meta(cols_)
        all_labels = {**view.item_labels([item, *att.history]), **all_labels}
    score = float(model.score(user, [item])[0])  # exactly as served
    if rank is None:
        rank = model.rank_of(user, item, score)
    full: Any = [] if kind == "non_personalised" else split_reasons(
        model, kind, user, [item], [score], all_labels, ctx.feature, meta, att)[0]
    reasons = list(full)  # every reason: the counterfactual search goes down all of them
    data_used = list(ctx.data_used)
    data_not_used = list(ctx.data_not_used)
    lineage = ctx.lineage
    if person is not None:
        features = _store_features(store, view)
        data_used, data_not_used = person_data(person, model.personalised, ctx, features)
        lineage = (lineage or LineageRef()).model_copy(update={
            "store_id": person.store_id, "purpose": person.purpose,
            "person_read_at": person.read_at, "person_audit_seq": person.audit_seq,
        })
    cf = None
    if counterfactual and kind != "non_personalised":
        order = [r.item for r in reasons if (r.contribution if r.contribution is not None
                                             else (r.similarity or 0.0)) > 0]
        cf = model.counterfactual(user, item, order, n=n, labels=all_labels)
    seen = bool(att.seen[0])
    fields: dict[str, Any] = {
        "item": item, "label": all_labels.get(item, item), "score": score, "rank": rank,
        "kind": kind, "model": type(model).__name__, "reasons": reasons,
        "evidence": None, "rest": None, "seen": seen, "data_used": data_used,
        "data_not_used": data_not_used, "privacy": ctx.privacy, "counterfactual": cf,
        "lineage": lineage, "note": None, "language": language,
    }
    if isinstance(full, Reasons):
        if summary:
            wanted = frozenset([item] if seen else []) | frozenset(cf.removed if cf else [])
            top = full.summary(namer(dict(fields), wanted))
            count, part = top.rest()
            fields.update(reasons=list(top), rest=Rest(count=count, contribution=part))
        elif kind == "decomposition":
            support, against = full.totals()
            fields["evidence"] = Evidence(support=support, against=against)
    return Explanation(**fields)


def curated_explanation(item: str, label: str, note: str, *, rank: int) -> Explanation:
    """The explanation of an item that people (not the model) placed in a list.

    >>> curated_explanation("sku-1", "Gift Card", "Holiday gift guide", rank=1).text
    'Chosen by our team: Holiday gift guide.'
    """
    return Explanation(
        item=item, label=label, score=0.0, rank=rank, kind="curated", model="curation",
        note=note,
    )
