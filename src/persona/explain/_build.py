"""Building explanations from a fitted model: reasons, data used and not used, counterfactuals.

Reasons are the model's own score decomposition, computed for the very state that served
the score: ALS splits ``y_iᵀ u`` over the history through the exact solve that produced
``u`` (Hu, Koren & Volinsky 2008, section 5); ItemKNN's score *is* a sum of neighbour
similarities. Models with no exact split (BPR) get a justification (similar history items,
marked as such), and the non-personalised Popularity cites no personal data.

Models call into this module lazily (inside ``recommend``/``explain``), because the
design's import rule has ``explain`` import ``models`` and never the other way round.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from persona._gc import no_gc_pauses
from persona.errors import ValidationError
from persona.explain._lazy import (
    Namer,
    Reasons,
    Said,
    lazy_evidence,
    lazy_explanations,
    lazy_rest,
    snapshot,
    split_reasons,
    unread,
)
from persona.explain._model import (
    ConsentBasis,
    Counterfactual,
    DataNotUsed,
    DataUsed,
    Detail,
    Evidence,
    Explanation,
    LineageRef,
    PrivacyStatement,
    Reason,
    Rest,
    text_key,
)
from persona.explain._text import choose, extra_sentences, render, templates
from persona.schema import check_id

if TYPE_CHECKING:
    from persona.models import RecommendationArrays, Recommender
    from persona.schema import Recommendation

__all__ = ["attach_explanations", "explain", "explained_lists", "person_context", "shown_items"]

_new = object.__new__
_setattr = object.__setattr__
_EXPL_FIELDS = set(Explanation.model_fields)
_SANDBOX_USER = "\x00persona-counterfactual"


def _fast(cls: type, fields: dict[str, Any], names: set[str]) -> Any:
    """Build a pydantic model from values persona computed itself, without re-validating.

    Equal to ``cls(**fields)`` (a test checks it); used on the serving path where one
    ``recommend`` call may explain hundreds of history items. ``names`` (the fields set)
    may be shared between objects: pydantic copies it on ``model_copy`` and never changes
    it in place.
    """
    obj = _new(cls)
    _setattr(obj, "__dict__", fields)
    _setattr(obj, "__pydantic_fields_set__", names)
    _setattr(obj, "__pydantic_extra__", None)
    _setattr(obj, "__pydantic_private__", None)
    return obj


# ---------------------------------------------------------------- model context
class _Context:
    """What every explanation of one model shares: lineage, data used, privacy."""

    __slots__ = ("data_not_used", "data_used", "feature", "key", "lineage", "privacy")

    def __init__(self, model: Recommender) -> None:
        lineage = _lineage(getattr(model, "lineage_", None))
        spent = getattr(model, "privacy_spent_", None)
        self.key = (id(getattr(model, "lineage_", None)), id(spent))
        self.privacy = privacy_statement(spent)
        whose = "yours" if model.personalised else "pooled"
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


def _lineage(value: Any) -> Any:
    """The model's lineage as :class:`persona.schema.Lineage` (a loaded model holds a dict)."""
    from persona.schema import Lineage

    if value is None or isinstance(value, Lineage):
        return value
    if isinstance(value, Mapping):
        try:
            return Lineage.model_validate(value)
        except Exception:  # an unknown lineage shape: say nothing rather than guess
            return None
    return None


def _context(model: Recommender) -> _Context:
    key = (id(getattr(model, "lineage_", None)), id(getattr(model, "privacy_spent_", None)))
    ctx = model.__dict__.get("_explain_context")
    if ctx is None or ctx.key != key:
        ctx = _Context(model)
        model.__dict__["_explain_context"] = ctx
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


# ---------------------------------------------------------------- reasons
def _labels(model: Recommender, extra: Mapping[str, str] | None) -> Mapping[str, str]:
    own: Mapping[str, str] = model.__dict__.get("item_labels_") or {}
    if not extra:
        return own
    return {**own, **extra}


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
    from datetime import UTC

    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _kind(model: Recommender) -> str:
    from persona.models import Recommender

    if not model.personalised:
        return "non_personalised"
    if type(model)._contribution_matrix is Recommender._contribution_matrix:
        return "justification"
    return "decomposition"


def _reasons_for(
    model: Recommender, kind: str, row: int | None, cols: np.ndarray, scores: Sequence[float],
    labels: Mapping[str, str], feature: str | None,
    meta: Mapping[str, tuple[str, datetime]] | None,
) -> Sequence[Sequence[Reason]]:
    if kind == "non_personalised" or row is None:
        return [[] for _ in scores]
    return split_reasons(model, kind, row, cols, scores, labels, feature, meta)


def _namer(fields: dict[str, Any], wanted: frozenset[str] = frozenset(),
           text: tuple[dict[str, Any], list[str]] | None = None,
           done: tuple[list[str], str] | None = None) -> Namer:
    """What a summary lists: the reasons the full form's text (rendered from ``fields``,
    the explanation's other fields) names, and the reasons of ``wanted``. ``text``: the
    templates and :func:`~persona.explain._text.extra_sentences` of ``fields`` when the
    caller holds them already (the items of one served list share them); ``done``: the
    names and the text when they were rendered already (:meth:`_Served.texts`)."""
    if done is not None:
        def named(reasons: list[Said]) -> tuple[list[str], str]:
            return done
    elif text is None or fields["kind"] == "curated":
        def named(reasons: list[Said]) -> tuple[list[str], str]:
            e = _fast(Explanation, {**fields, "reasons": reasons}, _EXPL_FIELDS)
            said, named = render(e)
            return [r.item for r in named], said
    else:
        t, extra = text
        view = _TextOf(fields)

        def named(reasons: list[Said]) -> tuple[list[str], str]:
            view.reasons = reasons
            said, named = choose(view, t, extra)
            return [r.item for r in named], said

    return Namer(named, wanted, text_key(fields))


class _TextOf:
    """The fields of an explanation that its text reads (see
    :func:`~persona.explain._text.choose`), without building the explanation."""

    __slots__ = ("item", "kind", "label", "rank", "reasons", "seen")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.item, self.kind, self.label = fields["item"], fields["kind"], fields["label"]
        self.rank, self.seen = fields["rank"], fields["seen"]
        self.reasons: list[Said] = []


def _check_detail(detail: Any) -> bool:
    """``True`` for ``"summary"``; refuses anything but the two forms."""
    from persona.models._base import _check_detail as check

    check(detail)
    return bool(detail == "summary")


def _seen(model: Recommender, row: int | None, cols: np.ndarray) -> np.ndarray:
    """Which of ``cols`` are in the person's own history."""
    if row is None or not model.personalised:
        return np.zeros(len(cols), dtype=bool)
    h = model.history_
    idx = h.indices[h.indptr[row]:h.indptr[row + 1]]  # sorted (CSR with sorted indices)
    if not len(idx):
        return np.zeros(len(cols), dtype=bool)
    at = np.minimum(np.searchsorted(idx, cols), len(idx) - 1)
    return np.asarray(idx[at] == cols)


# ---------------------------------------------------------------- the serving path
def attach_explanations(
    model: Recommender, users: Sequence[str], lists: list[list[Recommendation]],
    *, data: tuple[list[DataUsed], list[DataNotUsed], LineageRef | None] | None = None,
    detail: Detail = "summary",
) -> list[list[Recommendation]]:
    """Give every recommendation of ``lists`` (one list per person, built for this call
    and not yet handed out: they are explained in place) its explanation.

    ``data`` replaces the model-level ``(data_used, data_not_used, lineage)``: the serving
    layer passes the person's own, read from the store for this request. ``detail``:
    ``"summary"`` (the top reasons, the rest totalled) or ``"full"`` (every reason). The
    reasons, their totals and the text are computed on first read, from a snapshot of
    the model taken now.
    """
    summary = _check_detail(detail)
    ctx = _context(model)
    kind = _kind(model)
    labels = _labels(model, None)
    model_name = type(model).__name__
    with no_gc_pauses():
        return _attach(model, users, lists, ctx, kind, labels, model_name, data, summary)


def explained_lists(model: Recommender, users: Sequence[str], res: RecommendationArrays,
                    *, detail: Detail = "summary") -> list[list[Recommendation]]:
    """The lists of a batch (``model.recommend_arrays(users, ...)``), each item with its
    explanation as :func:`attach_explanations` gives it, built in the same pass as the
    recommendations."""
    summary = _check_detail(detail)
    ctx = _context(model)
    shared = _shared(model, ctx, _kind(model), _labels(model, None), type(model).__name__,
                     None, summary)
    personalised = model.personalised

    def explanations(p: int, items: list[str], scores: list[float]) -> list[Any]:
        row = model._row(users[p]) if personalised else None
        return lazy_explanations(_Served(shared, row, items, scores), len(items))

    with no_gc_pauses():
        return res.to_lists(explanations)


def _attach(model: Recommender, users: Sequence[str], lists: list[list[Recommendation]],
            ctx: _Context, kind: str, labels: Mapping[str, str], model_name: str,
            data: tuple[list[DataUsed], list[DataNotUsed], LineageRef | None] | None = None,
            summary: bool = True) -> list[list[Recommendation]]:
    shared = _shared(model, ctx, kind, labels, model_name, data, summary)
    out = []
    for user, recs in zip(users, lists, strict=True):
        if not recs:
            out.append(recs)
            continue
        row = model._row(user) if model.personalised else None
        ranks = [r.rank for r in recs]
        served = _Served(shared, row, [r.item for r in recs], [r.score for r in recs],
                         None if ranks == list(range(1, len(recs) + 1)) else ranks)
        for r, e in zip(recs, lazy_explanations(served, len(recs)), strict=True):
            # the lists are this call's own (fresh from the model): explained in place
            r.__dict__["explanation"] = e
        out.append(recs)
    return out


def _shared(model: Recommender, ctx: _Context, kind: str, labels: Mapping[str, str],
            model_name: str,
            data: tuple[list[DataUsed], list[DataNotUsed], LineageRef | None] | None,
            summary: bool) -> tuple[Any, ...]:
    """What the served lists of one call share (:attr:`_Served.shared`): a snapshot of the
    model, its kind, labels and name, the context, the data used and not used (``data``,
    else the model-level statements), the lineage, and whether summaries are served."""
    used, not_used, lineage = data or (ctx.data_used, ctx.data_not_used, ctx.lineage)
    return (snapshot(model) if kind != "non_personalised" else model, kind, labels,
            model_name, ctx, tuple(used), tuple(not_used), lineage, summary)


class _Served:
    """One person's served list: the explanation of each item is built from here on its
    first read (:func:`persona.explain._lazy.lazy_explanations`), the score decomposition
    once for the whole list, from the snapshot of the model that served it."""

    __slots__ = ("_ranks", "_reasons", "_seen", "_text", "_texts", "items", "row", "scores",
                 "shared")

    def __init__(self, shared: tuple[Any, ...], row: int | None, items: list[str],
                 scores: list[float], ranks: list[int] | None = None) -> None:
        # the items, scores and ranks (None: 1, 2, ...), not the Recommendation objects:
        # those hold their explanations, which hold this, and a cycle would leave every
        # served list to the garbage collector instead of freeing it when the caller drops
        # it; and no tuple per item (a batch makes ten thousand lists' worth)
        self.shared, self.row, self.items, self.scores = shared, row, items, scores
        self._ranks = ranks
        self._reasons: Sequence[Sequence[Reason]] | None = None
        self._seen: list[bool] = []
        self._text: tuple[dict[str, Any], list[str]] | None = None
        self._texts: list[tuple[list[str], str]] | None = None

    def _decompose(self) -> Sequence[Sequence[Reason]]:
        if self._reasons is None:
            model, kind, labels, _, ctx = self.shared[:5]
            iidx = model._iidx
            cols = np.fromiter((iidx[item] for item in self.items), dtype=np.int64,
                               count=len(self.items))
            self._reasons = _reasons_for(model, kind, self.row, cols, self.scores,
                                         labels, ctx.feature, None)
            self._seen = _seen(model, self.row, cols).tolist()
        return self._reasons

    def _templates(self) -> tuple[dict[str, Any], list[str]]:
        """The templates and the extra sentences, the same for every item of the list."""
        if self._text is None:
            not_used = self.shared[6]
            t = templates("en")
            e = _fast(Explanation, {"counterfactual": None, "data_not_used": list(not_used),
                                    "reasons": []}, _EXPL_FIELDS)
            self._text = (t, extra_sentences(e, t))
        return self._text

    def rank(self, k: int) -> int:
        return k + 1 if self._ranks is None else self._ranks[k]

    def label(self, k: int) -> str:
        item = self.items[k]
        return self.shared[2].get(item, item)  # type: ignore[no-any-return]

    def kind(self) -> str:
        return self.shared[1]  # type: ignore[no-any-return]

    def model_name(self) -> str:
        return self.shared[3]  # type: ignore[no-any-return]

    def texts(self) -> list[tuple[list[str], str]]:
        """Every item's text and the ids of the reasons it names, rendered for the whole
        list at once without building its explanations (they use these when read: the
        text is the same in the summary and the full form)."""
        if self._texts is None:
            reasons = self._decompose()
            t, extra = self._templates()
            kind = self.kind()
            view = _TextOf({"item": "", "kind": kind, "label": "", "rank": None,
                            "seen": False})
            out = []
            for k, item in enumerate(self.items):
                seen = self._seen[k]
                view.item, view.label, view.rank, view.seen = (item, self.label(k),
                                                               self.rank(k), seen)
                rs = reasons[k]
                view.reasons = (rs.for_text(frozenset([item] if seen else []))
                                if isinstance(rs, Reasons) else [])
                said, named = choose(view, t, extra)
                out.append(([x.item for x in named], said))
            self._texts = out
        return self._texts

    def every(self, k: int) -> Any:
        """The full reasons of item ``k`` (what a digest of its reasons covers)."""
        return self._decompose()[k]

    def fields(self, k: int) -> dict[str, Any]:
        _, kind, labels, model_name, ctx, used, not_used, lineage, summary = self.shared
        reasons = self._decompose()
        item, score, rank = self.items[k], self.scores[k], self.rank(k)
        rs, seen = reasons[k], self._seen[k]
        fields = {
            "item": item, "label": labels.get(item, item), "score": score,
            "rank": rank, "kind": kind, "model": model_name, "reasons": rs,
            "evidence": None, "rest": None, "seen": seen, "data_used": list(used),
            "data_not_used": list(not_used), "privacy": ctx.privacy, "counterfactual": None,
            "lineage": lineage, "note": None, "language": "en",
        }
        if isinstance(rs, Reasons):
            if summary:
                done = self._texts[k] if self._texts is not None else None
                rs = rs.summary(_namer(dict(fields), frozenset([item] if seen else []),
                                       self._templates(), done))
                fields.update(reasons=rs, rest=lazy_rest(rs))
            elif kind == "decomposition":
                fields["evidence"] = lazy_evidence(rs)
        return fields


def shown_items(recs: Sequence[Recommendation]) -> list[dict[str, Any]]:
    """What a record of what was shown keeps of each item of a served list: ``item``,
    ``label``, ``text``, ``rank``, ``score``, ``kind`` and ``reasons`` (the full list of
    the explanation's reasons, for their digest). Explanations nobody has read yet are
    not built: their texts are rendered for the whole list at once, and are the texts
    they give when read."""
    out = []
    for r in recs:
        e = r.__dict__.get("explanation")
        if e is None:
            out.append({"item": r.item, "label": r.item, "text": None, "rank": r.rank,
                        "score": r.score, "kind": None, "reasons": None})
            continue
        source = unread(e)
        if source is None:
            out.append({"item": r.item, "label": e.label, "text": e.text, "rank": r.rank,
                        "score": r.score, "kind": e.kind, "reasons": e.reasons})
            continue
        served, k = source
        out.append({"item": r.item, "label": served.label(k), "text": served.texts()[k][1],
                    "rank": r.rank, "score": r.score, "kind": served.kind(),
                    "reasons": served.every(k)})
    return out


# ---------------------------------------------------------------- explain one item
def explain(
    model: Recommender,
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
    model._check_fitted()
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        raise ValidationError(f"n must be a positive integer, not {n!r}")
    summary = _check_detail(detail)
    j = model._item(item)
    item, user = check_id(item, "item"), check_id(user, "user")  # ints as their strings
    ctx = _context(model)
    kind = _kind(model)
    row = model._row(user) if model.personalised else None
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
    all_labels = dict(_labels(model, labels))
    if view is not None:
        cols_, person = view.history_with_lineage(user)
        meta = _history_meta(cols_)
        wanted = [item, *([] if row is None else _history_items(model, row))]
        all_labels = {**view.item_labels(wanted), **all_labels}
    score = float(model.score(user, [item])[0])  # exactly as served
    scores = _all_scores(model, row)
    scores[j] = score
    if rank is None:
        rank = _rank(model, row, j, scores)
    cols = np.array([j])
    full = _reasons_for(model, kind, row, cols, [score], all_labels, ctx.feature, meta)[0]
    reasons = list(full)  # every reason: the counterfactual search goes down all of them
    data_used = list(ctx.data_used)
    data_not_used = list(ctx.data_not_used)
    lineage = ctx.lineage
    if person is not None:
        features = _store_features(view)
        data_used, data_not_used = _person_data(person, model.personalised, ctx, features)
        lineage = (lineage or LineageRef()).model_copy(update={
            "store_id": person.store_id, "purpose": person.purpose,
            "person_read_at": person.read_at, "person_audit_seq": person.audit_seq,
        })
    cf = None
    if counterfactual and kind != "non_personalised" and row is not None:
        cf = find_counterfactual(model, user, item, reasons, n, all_labels)
    seen = bool(_seen(model, row, cols)[0])
    fields = {
        "item": item, "label": all_labels.get(item, item), "score": score, "rank": rank,
        "kind": kind, "model": type(model).__name__, "reasons": reasons,
        "evidence": None, "rest": None, "seen": seen, "data_used": data_used,
        "data_not_used": data_not_used, "privacy": ctx.privacy, "counterfactual": cf,
        "lineage": lineage, "note": None, "language": language,
    }
    if isinstance(full, Reasons):
        if summary:
            wanted = frozenset([item] if seen else []) | frozenset(cf.removed if cf else [])
            top = full.summary(_namer(dict(fields), wanted))
            count, part = top.rest()
            fields.update(reasons=list(top), rest=Rest(count=count, contribution=part))
        elif kind == "decomposition":
            support, against = full.totals()
            fields["evidence"] = Evidence(support=support, against=against)
    return Explanation(**fields)


def _history_items(model: Recommender, row: int) -> list[str]:
    h = model.history_
    return model.items_[h.indices[h.indptr[row]:h.indptr[row + 1]]].tolist()


def _all_scores(model: Recommender, row: int | None) -> np.ndarray:
    """The served score of every catalogue item for one person (as ``model.score``)."""
    rows = np.array([0 if row is None else row], dtype=np.int64)
    model._prepare_rows(rows)
    vectors = getattr(model, "_user_vectors64", None)
    Y = getattr(model, "_Y64", None)
    if vectors is not None and Y is not None:  # factor models: one float64 product
        return np.asarray(Y @ vectors(rows)[0], dtype=np.float64)
    S = model._rank_scores(rows)
    m = S.shape[1]
    exact = model._exact_scores(np.repeat(rows, m), np.arange(m), S[0])
    return np.array(exact, dtype=np.float64)


def _rank(model: Recommender, row: int | None, j: int, scores: np.ndarray) -> int | None:
    """Rank among the items ``recommend`` would consider (seen items are not ranked)."""
    s = scores.copy()
    if row is not None:
        h = model.history_
        seen = h.indices[h.indptr[row]:h.indptr[row + 1]]
        if np.any(seen == j):
            return None
        s[seen] = -np.inf
    score = s[j]
    ahead = np.count_nonzero(s > score) + np.count_nonzero(s[:j] == score)
    return int(ahead) + 1


def _store_features(view: Any) -> dict[str, Any]:
    store = getattr(view, "_store", None)
    return {} if store is None else store.features


def _basis(rec: Any) -> ConsentBasis | None:
    if rec is None:
        return None
    return ConsentBasis(purpose=rec.purpose, action=rec.action, at=rec.at, source=rec.source,
                        notice_version=rec.notice_version)


def person_context(
    model: Recommender, person: Any, features: Mapping[str, Any]
) -> tuple[list[DataUsed], list[DataNotUsed], LineageRef | None]:
    """What one person's served list says about their data, from their lineage read for
    this request (``person``: a :class:`~persona.schema.PersonLineage`; ``features``: the
    store's feature definitions): the data used (with their consent and dates), the data
    not used and why, and the model's lineage marked with that read. Give it to
    :func:`attach_explanations` as ``data`` in place of the model-level statements."""
    ctx = _context(model)
    used, not_used = _person_data(person, model.personalised, ctx, features)
    lineage = ctx.lineage
    if lineage is not None:
        lineage = lineage.model_copy(
            update={"person_read_at": person.read_at, "person_audit_seq": person.audit_seq}
        )
    return used, not_used, lineage


def _person_data(
    person: Any, personalised: bool, ctx: _Context, features: Mapping[str, Any]
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


# ---------------------------------------------------------------- counterfactuals
def _sandbox(model: Recommender) -> Recommender:
    """A shallow copy that ``fold_in`` of a new person can change without touching
    ``model`` (fold-in replaces, never mutates, the shared arrays when it adds a row)."""
    twin = copy.copy(model)
    twin.__dict__["_uidx"] = dict(model._uidx)
    twin.__dict__.pop("_explain_context", None)
    return twin


def find_counterfactual(
    model: Recommender, user: str, item: str, reasons: Sequence[Reason], n: int,
    labels: Mapping[str, str], max_steps: int = 10,
) -> Counterfactual:
    """Greedy search (largest contribution first) for history items whose removal takes
    ``item`` out of ``user``'s top ``n``; each step is re-scored through fold-in."""
    recs = model.recommend(user, n=n, explain=False)
    ranks = {r.item: r.rank for r in recs}
    before = ranks.get(item)
    if before is None:
        return Counterfactual(removed=[], removed_labels=[], verified=False, n=n,
                              rank_before=None, rank_after=None)
    row = model._row(user)
    h = model.history_
    a, b = h.indptr[row], h.indptr[row + 1]
    history = dict(zip(model.items_[h.indices[a:b]].tolist(), h.data[a:b].tolist(), strict=True))
    order = [r.item for r in reasons if (r.contribution if r.contribution is not None
                                         else (r.similarity or 0.0)) > 0]
    twin = _sandbox(model)
    removed: list[str] = []
    after: int | None = before
    for it in order[:max_steps]:
        removed.append(it)
        reduced = {k: v for k, v in history.items() if k not in removed}
        twin._fold_in(_SANDBOX_USER, reduced)  # an id no person can have (a control char)
        top = twin.recommend(_SANDBOX_USER, n=n, exclude=removed, explain=False)
        after = next((r.rank for r in top if r.item == item), None)
        if after is None:
            return Counterfactual(
                removed=removed, removed_labels=[labels.get(x, x) for x in removed],
                verified=True, n=n, rank_before=before, rank_after=None,
            )
    return Counterfactual(removed=[], removed_labels=[], verified=False, n=n,
                          rank_before=before, rank_after=after)


def curated_explanation(item: str, label: str, note: str, *, rank: int) -> Explanation:
    """The explanation of an item that people (not the model) placed in a list.

    >>> curated_explanation("sku-1", "Gift Card", "Holiday gift guide", rank=1).text
    'Chosen by our team: Holiday gift guide.'
    """
    return Explanation(
        item=item, label=label, score=0.0, rank=rank, kind="curated", model="curation",
        note=note,
    )
