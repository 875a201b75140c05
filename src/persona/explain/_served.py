"""Served lists: each item's explanation is built on its first read.

:func:`attach_explanations` (one person's list) and :func:`explained_lists` (a batch) give
every recommendation a deferred :class:`~persona.schema.Explanation` (see
:func:`persona.schema.lazy_explanations`) whose source is the person's :class:`_Served`
list: the model's attribution of the whole list is made once, from a snapshot of the model
that served it, when the first of its explanations is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from persona._gc import no_gc_pauses
from persona.explain._context import Context, context
from persona.explain._lazy import Namer, Reasons, Said, Split, snapshot
from persona.schema import (
    DataNotUsed,
    DataUsed,
    Detail,
    Explanation,
    LineageRef,
    Reason,
    check_detail,
    choose_text,
    construct,
    explanation_text,
    extra_sentences,
    lazy_evidence,
    lazy_explanations,
    lazy_rest,
    templates,
    text_key,
    unread,
)

if TYPE_CHECKING:
    from persona.explain._protocol import Attributed
    from persona.schema import Recommendation

__all__ = ["attach_explanations", "explained_lists", "labels_of", "namer", "shown_items",
           "summary_wanted"]

_EXPL_FIELDS = set(Explanation.model_fields)


def summary_wanted(detail: Any) -> bool:
    """``True`` for ``"summary"``; refuses anything but the two forms."""
    check_detail(detail)
    return bool(detail == "summary")


def labels_of(model: Any, extra: Mapping[str, str] | None) -> Mapping[str, str]:
    """The model's item labels (``model.set_item_labels``), with ``extra`` over them."""
    own: Mapping[str, str] = getattr(model, "item_labels_", None) or {}
    if not extra:
        return own
    return {**own, **extra}


def namer(fields: dict[str, Any], wanted: frozenset[str] = frozenset(),
          text: tuple[dict[str, Any], list[str]] | None = None,
          done: tuple[list[str], str] | None = None) -> Namer:
    """What a summary lists: the reasons the full form's text (rendered from ``fields``,
    the explanation's other fields) names, and the reasons of ``wanted``. ``text``: the
    templates and :func:`~persona.schema.extra_sentences` of ``fields`` when the
    caller holds them already (the items of one served list share them); ``done``: the
    names and the text when they were rendered already (:meth:`_Served.texts`)."""
    if done is not None:
        def named(reasons: list[Said]) -> tuple[list[str], str]:
            return done
    elif text is None or fields["kind"] == "curated":
        def named(reasons: list[Said]) -> tuple[list[str], str]:
            e = construct(Explanation, {**fields, "reasons": reasons}, _EXPL_FIELDS)
            said, named = explanation_text(e)
            return [r.item for r in named], said
    else:
        t, extra = text
        view = _TextOf(fields)

        def named(reasons: list[Said]) -> tuple[list[str], str]:
            view.reasons = reasons
            said, named = choose_text(view, t, extra)
            return [r.item for r in named], said

    return Namer(named, wanted, text_key(fields))


class _TextOf:
    """The fields of an explanation that its text reads (see
    :func:`~persona.schema.choose_text`), without building the explanation."""

    __slots__ = ("item", "kind", "label", "rank", "reasons", "seen")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.item, self.kind, self.label = fields["item"], fields["kind"], fields["label"]
        self.rank, self.seen = fields["rank"], fields["seen"]
        self.reasons: list[Said] = []


def attach_explanations(
    model: Attributed, users: Sequence[str], lists: list[list[Recommendation]],
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
    summary = summary_wanted(detail)
    ctx = context(model)
    kind = model.attribution_kind
    labels = labels_of(model, None)
    model_name = type(model).__name__
    with no_gc_pauses():
        return _attach(model, users, lists, ctx, kind, labels, model_name, data, summary)


def explained_lists(model: Attributed, users: Sequence[str], res: Any,
                    *, detail: Detail = "summary") -> list[list[Recommendation]]:
    """The lists of a batch (``model.recommend_arrays(users, ...)``), each item with its
    explanation as :func:`attach_explanations` gives it, built in the same pass as the
    recommendations (``res``: the :class:`~persona.models.RecommendationArrays` of
    ``users``)."""
    summary = summary_wanted(detail)
    ctx = context(model)
    shared = _shared(model, ctx, model.attribution_kind, labels_of(model, None),
                     type(model).__name__, None, summary)

    def explanations(p: int, items: list[str], scores: list[float]) -> list[Any]:
        return lazy_explanations(_Served(shared, users[p], items, scores), len(items))

    with no_gc_pauses():
        lists: list[list[Recommendation]] = res.to_lists(explanations)
    return lists


def _attach(model: Attributed, users: Sequence[str], lists: list[list[Recommendation]],
            ctx: Context, kind: str, labels: Mapping[str, str], model_name: str,
            data: tuple[list[DataUsed], list[DataNotUsed], LineageRef | None] | None = None,
            summary: bool = True) -> list[list[Recommendation]]:
    shared = _shared(model, ctx, kind, labels, model_name, data, summary)
    out = []
    for user, recs in zip(users, lists, strict=True):
        if not recs:
            out.append(recs)
            continue
        ranks = [r.rank for r in recs]
        served = _Served(shared, user, [r.item for r in recs], [r.score for r in recs],
                         None if ranks == list(range(1, len(recs) + 1)) else ranks)
        for r, e in zip(recs, lazy_explanations(served, len(recs)), strict=True):
            # the lists are this call's own (fresh from the model): explained in place
            r.__dict__["explanation"] = e
        out.append(recs)
    return out


def _shared(model: Attributed, ctx: Context, kind: str, labels: Mapping[str, str],
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
    first read (:func:`persona.schema.lazy_explanations`), the model's attribution once
    for the whole list, from the snapshot of the model that served it."""

    __slots__ = ("_ranks", "_reasons", "_seen", "_text", "_texts", "items", "scores",
                 "shared", "user")

    def __init__(self, shared: tuple[Any, ...], user: str, items: list[str],
                 scores: list[float], ranks: list[int] | None = None) -> None:
        # the items, scores and ranks (None: 1, 2, ...), not the Recommendation objects:
        # those hold their explanations, which hold this, and a cycle would leave every
        # served list to the garbage collector instead of freeing it when the caller drops
        # it; and no tuple per item (a batch makes ten thousand lists' worth)
        self.shared, self.user, self.items, self.scores = shared, user, items, scores
        self._ranks = ranks
        self._reasons: Sequence[Sequence[Reason]] | None = None
        self._seen: list[bool] = []
        self._text: tuple[dict[str, Any], list[str]] | None = None
        self._texts: list[tuple[list[str], str]] | None = None

    def _decompose(self) -> Sequence[Sequence[Reason]]:
        if self._reasons is None:
            model, kind, labels, _, ctx = self.shared[:5]
            n = len(self.items)
            if kind == "non_personalised":
                self._seen = [False] * n
                self._reasons = [[] for _ in range(n)]
            else:
                split = Split(model, kind, self.user, self.items, labels, ctx.feature, None)
                self._reasons = [Reasons(split, k, float(s)) for k, s in enumerate(self.scores)]
                self._seen = split.attribution().seen
        return self._reasons

    def _templates(self) -> tuple[dict[str, Any], list[str]]:
        """The templates and the extra sentences, the same for every item of the list."""
        if self._text is None:
            not_used = self.shared[6]
            t = templates("en")
            e = construct(Explanation, {"counterfactual": None,
                                        "data_not_used": list(not_used), "reasons": []},
                          _EXPL_FIELDS)
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
                said, named = choose_text(view, t, extra)
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
                rs = rs.summary(namer(dict(fields), frozenset([item] if seen else []),
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


