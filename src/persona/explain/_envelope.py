"""One JSON document for a served list, with what its explanations share written once.

The items of one ``recommend`` call share most of their explanations: the person's data
used and not used, the lineage of the read, the model, the privacy statement, the language,
the titles of the history items their reasons name. Written item by item, that context is
repeated ten times. :class:`Recommendations` (what ``recommend`` returns: a plain list of
:class:`~persona.schema.Recommendation`) has a compact JSON form that writes it once:

* ``shared``: the explanation fields whose value is the same in every item (those of
  :data:`SHARED`), and ``reason_feature`` when every reason has the same feature;
* ``labels``: item id → title, for every item and reason of the list;
* ``items``: each recommendation's ``item``, ``score`` and ``rank`` with its explanation's
  other fields beside them, less the shared fields and the labels of the table (nested
  under ``explanation`` instead when the explanation's item, score or rank differ from the
  recommendation's; ``"explanation": null`` when it has none); ``rank`` is left out when
  it is the item's place in the list (1 for the first);
* a reason's ``share`` is its contribution over the evidence on its side, so an item whose
  listed reasons' shares are exactly that writes the totals once, as ``support`` (and
  ``against`` when a negative reason is listed), and its reasons without ``share``.

It is lossless: :meth:`Recommendations.model_validate_json` gives back every field of
every explanation (the text is rendered again from them, as for one explanation's JSON,
and is the text written). The document's JSON Schema is
:meth:`Recommendations.json_schema`.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from persona import _frames
from persona.errors import ValidationError
from persona.explain._tidy import list_columns
from persona.schema import Explanation, Recommendation

__all__ = ["FORMAT", "SHARED", "Recommendations"]

FORMAT = "persona.recommendations"
VERSION = 1
#: Explanation fields written once when every item has the same value.
SHARED = ("model", "kind", "language", "data_used", "data_not_used", "lineage", "privacy")
_MISSING = object()


class Recommendations(list[Recommendation]):
    """A served list: a plain ``list`` of :class:`~persona.schema.Recommendation` (index,
    iterate and compare it as one), whose :meth:`model_dump_json` writes what the
    explanations share once (see the module doc).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from persona.data import Interactions
    >>> from persona.models import ItemKNN
    >>> X = Interactions.from_csr(sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]])),
    ...                          ["u1", "u2", "u3"], ["boots", "socks", "tent"])
    >>> recs = ItemKNN(neighbours=3).fit(X).recommend("u1", n=1)
    >>> doc = recs.model_dump_json()
    >>> back = Recommendations.model_validate_json(doc)
    >>> back == recs, back[0].explanation.text == recs[0].explanation.text
    (True, True)
    """

    __slots__ = ()

    def model_dump(self) -> dict[str, Any]:
        """The compact form as a dict of JSON values."""
        return pack([r.model_dump(mode="json") for r in self], [_totals(r) for r in self])

    def model_dump_json(self, *, indent: int | None = None) -> str:
        """The compact form as JSON text (UTF-8, titles unescaped)."""
        separators = (",", ":") if indent is None else None
        return json.dumps(self.model_dump(), indent=indent, separators=separators,
                          ensure_ascii=False)

    @classmethod
    def model_validate(cls, data: Any) -> Recommendations:
        """The list a compact form (a dict) holds, every explanation whole."""
        return cls(unpack(data))

    @classmethod
    def model_validate_json(cls, data: str | bytes) -> Recommendations:
        """The list a compact form (JSON text) holds, every explanation whole."""
        try:
            doc = json.loads(data)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"not a JSON document of recommendations ({exc}); give the text "
                "Recommendations.model_dump_json() wrote",
                errors=[{"row": None, "field": "data", "message": "not JSON"}],
            ) from None
        return cls.model_validate(doc)

    @staticmethod
    def json_schema() -> dict[str, Any]:
        """The JSON Schema of :meth:`model_dump_json` output."""
        return _schema()

    def to_pandas(self, *, text: bool = True) -> Any:
        """The list as a tidy ``pandas.DataFrame``, one row per item, best first (``pd.
        DataFrame(recs)`` would give each recommendation's (field, value) pairs instead).
        Needs pandas (``pip install 'persona[pandas]'``).

        ==========  =================  ===================================================
        column      dtype              value
        ==========  =================  ===================================================
        ``rank``    ``int64``          position in the list, from 1
        ``item``    ids as given       the item id
        ``score``   ``float64``        the served score
        ``label``   string             the item's title (missing without an explanation)
        ``kind``    ``category``       the explanation's kind (categories:
                                       ``decomposition``, ``justification``,
                                       ``non_personalised``, ``curated``)
        ``model``   string             the recommender's class name
        ``text``    string             the explanation's text (``text=False``: no column;
                                       rendering the texts is the slow part)
        ==========  =================  ===================================================

        For a batch with a ``user`` column, see
        :func:`persona.explain.recommendations_to_pandas`.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from persona.data import Interactions
        >>> from persona.models import ItemKNN
        >>> X = Interactions.from_csr(sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]])),
        ...                          ["u1", "u2", "u3"], ["boots", "socks", "tent"])
        >>> recs = ItemKNN().fit(X).recommend("u1", n=1)
        >>> recs.to_pandas(text=False)[["rank", "item", "kind", "model"]]
           rank  item           kind    model
        0     1  tent  decomposition  ItemKNN
        """
        return _frames.to_pandas(list_columns(self, text=text))

    def to_arrow(self, *, text: bool = True) -> Any:
        """:meth:`to_pandas` as a ``pyarrow.Table`` (``kind`` as
        ``dictionary<int32, string>``). Needs pyarrow (``pip install 'persona[arrow]'``)."""
        return _frames.to_arrow(list_columns(self, text=text))


def _same(values: list[Any]) -> Any:
    """The value every element has, or ``_MISSING``."""
    if not values or values[0] is _MISSING:
        return _MISSING
    first = values[0]
    return first if all(v == first for v in values[1:]) else _MISSING


def _totals(r: Recommendation) -> tuple[float, float] | None:
    """The (support, against) the shares of a served explanation's reasons were taken
    of, when it holds them (a hint for :func:`pack`, which checks it)."""
    e = r.explanation
    if e is None:
        return None
    if e.evidence is not None:
        return e.evidence.support, e.evidence.against
    totals = getattr(e.reasons, "totals", None)
    return totals() if callable(totals) else None


def pack(items: list[dict[str, Any]],
         totals: list[tuple[float, float] | None] | None = None) -> dict[str, Any]:
    """The compact form of recommendations dumped one by one (``model_dump(mode="json")``);
    ``totals``: per item, the (support, against) its reasons' shares may be of."""
    labels: dict[str, str] = {}
    explained = [it["explanation"] for it in items if it.get("explanation") is not None]
    shared: dict[str, Any] = {}
    for key in SHARED:
        value = _same([e.get(key, _MISSING) for e in explained])
        if value is not _MISSING:
            shared[key] = value
    feature = _same([r.get("feature", _MISSING) for e in explained
                     for r in e.get("reasons", ())])
    if feature is not _MISSING:
        shared["reason_feature"] = feature
    out = []
    hints = totals if totals is not None else [None] * len(items)
    for position, (it, hint) in enumerate(zip(items, hints, strict=True), start=1):
        e = it.get("explanation")
        packed = _pack_item(it, e, shared, labels, hint) if e is not None else {
            **it, "explanation": None}
        if packed.get("rank") == position and type(packed["rank"]) is int:
            del packed["rank"]  # its place in the list
        out.append(packed)
    return {"format": FORMAT, "version": VERSION, "shared": shared, "labels": labels,
            "items": out}


def _label(labels: dict[str, str], item: str, label: Any) -> bool:
    """Whether ``label`` can be left to the table (entering it when the table has none;
    an item whose title is its id needs no entry)."""
    if not isinstance(label, str):
        return False
    known = labels.get(item)
    if known is None:
        if label != item:
            labels[item] = label
        return True
    return known == label


def _base(reasons: list[dict[str, Any]], positive: bool, hint: float | None) -> Any:
    """The total every listed reason on one side (``positive`` or negative) has its share
    of, exactly (``contribution / total == share``): ``hint`` or the one the first reason
    implies; ``None`` when no reason is on that side; ``_MISSING`` when the shares are not
    all of one total (then they are written as they are)."""
    side = []
    for r in reasons:
        c, s = r.get("contribution"), r.get("share")
        if type(c) is not float or type(s) is not float or c == 0 or s == 0:
            return _MISSING
        if (c > 0) == positive:
            side.append((c, s))
    if not side:
        return None
    candidates = [] if hint is None else [hint]
    candidates.append(side[0][0] / side[0][1])
    for base in candidates:
        if base != 0 and all(c / base == s for c, s in side):
            return base
    return _MISSING


def _pack_shares(out: dict[str, Any], reasons: list[dict[str, Any]],
                 hint: tuple[float, float] | None) -> None:
    """Write the totals the reasons' shares are of once (``support``, ``against``) and the
    reasons without ``share``, when that reads back exactly."""
    support = _base(reasons, True, None if hint is None else hint[0])
    against = _base(reasons, False, None if hint is None else hint[1])
    if support is _MISSING or against is _MISSING or (support is None and against is None):
        return
    for r in reasons:
        del r["share"]
    if support is not None:
        out["support"] = support
    if against is not None:
        out["against"] = against


def _pack_item(it: dict[str, Any], e: dict[str, Any], shared: dict[str, Any],
               labels: dict[str, str],
               totals: tuple[float, float] | None = None) -> dict[str, Any]:
    """One recommendation with its explanation's own fields beside its item, score and
    rank (nested under ``explanation`` when the explanation's item, score or rank
    differ from the recommendation's)."""
    out = {k: v for k, v in e.items() if k not in shared}
    own = {"item": it.get("item"), "score": it.get("score"), "rank": it.get("rank")}
    flat = all(key in out and out[key] == value and type(out[key]) is type(value)
               for key, value in own.items())
    if flat:
        del out["item"], out["score"], out["rank"]
    item = e.get("item")
    if isinstance(item, str) and _label(labels, item, out.get("label")):
        del out["label"]
    reasons = out.get("reasons")
    if reasons:
        feature = shared.get("reason_feature", _MISSING)
        packed = []
        for r in reasons:
            r = dict(r)
            if isinstance(r.get("item"), str) and _label(labels, r["item"], r.get("label")):
                del r["label"]
            if feature is not _MISSING and r.get("feature") == feature:
                del r["feature"]
            packed.append(r)
        _pack_shares(out, packed, totals)
        out["reasons"] = packed
    if flat:
        return {**own, **out}
    for key in ("item", "score", "rank"):
        out.setdefault(key, None)  # its own default, not the recommendation's value
    return {**it, "explanation": out}


def _refuse(message: str, field: str) -> ValidationError:
    return ValidationError(
        f"{message}; give the document Recommendations.model_dump_json() wrote",
        errors=[{"row": None, "field": field, "message": message}],
    )


def unpack(doc: Any) -> list[Recommendation]:
    """The recommendations a compact form holds (see :func:`pack`)."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _refuse(f"not a {FORMAT!r} document", "format")
    if doc.get("version") != VERSION or isinstance(doc.get("version"), bool):
        raise _refuse(f"version {doc.get('version')!r} is not {VERSION}, the one this "
                      "persona reads", "version")
    shared, labels, items = doc.get("shared", {}), doc.get("labels", {}), doc.get("items")
    if not isinstance(shared, dict) or not isinstance(labels, dict) or not isinstance(
            items, list):
        raise _refuse("shared and labels must be objects, items a list", "items")
    unknown = set(shared) - {*SHARED, "reason_feature"}
    if unknown:
        raise _refuse(f"unknown shared fields {sorted(unknown)}", "shared")
    out = []
    for k, it in enumerate(items):
        if not isinstance(it, dict):
            raise _refuse(f"item {k} is not an object", "items")
        own = {"item": it.get("item"), "score": it.get("score"), "rank": it.get("rank", k + 1)}
        if "explanation" in it:  # nested, or none
            e = it["explanation"]
            if e is not None and not isinstance(e, dict):
                raise _refuse(f"the explanation of item {k} is not an object", "items")
        else:  # the explanation's own fields beside the item's
            e = {key: v for key, v in it.items() if key not in own}
            e.update(own)
        # strict at the edge: no bool or text taken as a number, no number as an id
        if (not isinstance(own["item"], str) or isinstance(own["score"], bool)
                or not isinstance(own["score"], int | float) or isinstance(own["rank"], bool)
                or not isinstance(own["rank"], int)):
            raise _refuse(f"item {k} needs an id (text), a score (a number) and a rank (a "
                          "whole number)", "items")
        try:
            if e is not None:
                whole = _unpack_explanation(own, e, shared, labels)
                _strict(whole, f"item {k}")
                e = Explanation.model_validate(whole)
            out.append(Recommendation.model_validate({**own, "explanation": e}))
        except ValueError as exc:
            raise _refuse(f"item {k} is not a recommendation ({exc})", "items") from None
    return out


@cache
def _kinds() -> tuple[frozenset[str], frozenset[str]]:
    """The names of the explanation schema's fields that hold numbers, and of those that
    hold booleans."""
    numbers: set[str] = set()
    flags: set[str] = set()

    def types(spec: dict[str, Any]) -> set[str]:
        out = {spec["type"]} if isinstance(spec.get("type"), str) else set()
        for option in spec.get("anyOf", []):
            out |= types(option)
        return out

    schema = Explanation.model_json_schema(mode="serialization")
    for model in [schema, *schema.get("$defs", {}).values()]:
        for name, spec in model.get("properties", {}).items():
            kinds = types(spec)
            if kinds & {"number", "integer"}:
                numbers.add(name)
            if "boolean" in kinds:
                flags.add(name)
    return frozenset(numbers), frozenset(flags)


def _strict(value: Any, where: str) -> None:
    """Refuse a boolean where the schema has a number, anything but a number there, and
    anything but a boolean where it has one (pydantic would take ``true`` as 1, ``"1.5"``
    as 1.5 and ``"yes"`` as true)."""
    numbers, flags = _kinds()
    if isinstance(value, dict):
        for key, v in value.items():
            if isinstance(v, bool) and key not in flags:
                raise _refuse(f"{where}: {key} is a number, not {v!r}", "items")
            if (key in numbers and key not in flags and v is not None
                    and not isinstance(v, int | float)):
                raise _refuse(f"{where}: {key} must be a number, not {v!r}", "items")
            if key in flags and key not in numbers and v is not None and not isinstance(
                    v, bool):
                raise _refuse(f"{where}: {key} must be true or false, not {v!r}", "items")
            _strict(v, where)
    elif isinstance(value, list):
        for v in value:
            _strict(v, where)


def _unpack_explanation(it: dict[str, Any], e: dict[str, Any], shared: dict[str, Any],
                        labels: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in shared.items() if k != "reason_feature"}
    out.update(e)
    bases = {key: out.pop(key) for key in ("support", "against") if key in out}
    for key, base in bases.items():
        if isinstance(base, bool) or not isinstance(base, int | float) or base == 0:
            raise _refuse(f"{key} must be a number other than 0, not {base!r}", "items")
    for field in ("item", "score", "rank"):
        if field not in e:
            out[field] = it.get(field)
    if "label" not in e:
        item = out.get("item")
        out["label"] = labels.get(item, item) if isinstance(item, str) else item
    reasons = e.get("reasons")
    if isinstance(reasons, list):
        feature = shared.get("reason_feature", _MISSING)
        whole = []
        for r in reasons:
            if isinstance(r, dict):
                r = dict(r)
                if "label" not in r and isinstance(r.get("item"), str):  # else refused below
                    r["label"] = labels.get(r["item"], r["item"])
                if "feature" not in r and feature is not _MISSING:
                    r["feature"] = feature
                c = r.get("contribution")
                if ("share" not in r and bases and type(c) is float and c != 0
                        and (base := bases.get("support" if c > 0 else "against"))):
                    r["share"] = c / base  # as it was written (see _pack_shares)
            whole.append(r)
        out["reasons"] = whole
    return out


def _schema() -> dict[str, Any]:
    explanation = Explanation.model_json_schema(mode="serialization")
    defs = explanation.pop("$defs", {})
    props = dict(explanation["properties"])
    # in the compact form a reason's label may be left to the table, its feature to shared
    defs["CompactReason"] = {**defs["Reason"], "title": "CompactReason", "required": ["item"]}
    props["reasons"] = {**props["reasons"], "items": {"$ref": "#/$defs/CompactReason"}}
    return {
        "title": "Recommendations",
        "description": (
            "A served list of recommendations in compact form: the explanation fields all "
            "items share are in `shared`, titles in `labels`. Each item holds the "
            "recommendation's `item`, `score` and `rank` and, beside them, the other "
            "fields of its Explanation (see `Explanation`) without those in `shared`, "
            "without labels found in `labels`, with each reason's `feature` left out "
            "when it is `shared.reason_feature`, and with the reasons' `share` left out "
            "when the item gives `support` (and `against`) instead. When the "
            "explanation's item, score or rank differ from the recommendation's, the "
            "explanation is nested under `explanation` instead (`explanation: null`: none)."
        ),
        "type": "object",
        "required": ["format", "version", "items"],
        "properties": {
            "format": {"const": FORMAT},
            "version": {"const": VERSION},
            "shared": {
                "type": "object",
                "properties": {
                    **{k: props[k] for k in SHARED if k in props},
                    "reason_feature": {"type": "string", "description": (
                        "The feature of every reason of every item, when they all share "
                        "one.")},
                },
                "additionalProperties": False,
            },
            "labels": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": ("Item id to title, for the items and their "
                                       "reasons whose title is not their id.")},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["item", "score"],
                    "properties": {
                        "item": {"type": "string"},
                        "score": {"type": "number"},
                        "rank": {"type": "integer", "minimum": 1, "description": (
                            "Left out when it is the item's place in the list (1-based).")},
                        "support": {"type": "number", "description": (
                            "Written instead of each positive reason's `share`: the "
                            "positive evidence they are shares of (share = contribution "
                            "/ support).")},
                        "against": {"type": "number", "description": (
                            "Written instead of each negative reason's `share`: the "
                            "evidence against they are shares of (share = contribution "
                            "/ against).")},
                        "explanation": {"anyOf": [{"type": "object"}, {"type": "null"}],
                                        "description": "An Explanation, without what is "
                                                       "shared (see the description above)."},
                        **{k: v for k, v in props.items()
                           if k not in {*SHARED, "item", "score", "rank"}},
                    },
                },
            },
        },
        "$defs": {**defs, "Explanation": explanation},
    }
