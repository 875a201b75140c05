"""Plain-language rendering. Every word a shopper reads comes from one template file per
language (``persona/schema/templates/<language>.json``); this module only picks templates
and fills in labels, so adding a language means adding a file, not touching logic.

``.text`` holds at most three sentences: why the item was picked, then (when computed) the
checked counterfactual, then the most telling "not used" statement. Long item titles make
text hard to read, so when the richest version scores low on an estimate of Flesch reading
ease, fewer reasons are named; every detail stays in the structured fields.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from datetime import datetime
from functools import cache, lru_cache
from importlib import resources
from itertools import islice
from string import Formatter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from persona.schema._explanation import DataNotUsed, Explanation

__all__ = ["available_languages", "render", "render_statements", "render_text", "templates"]

#: Estimated reading ease the text aims for (the published bar is 60; estimates differ).
TARGET_EASE = 80.0
_VOWELS = re.compile(r"[aeiouy]+")
_HIATUS = re.compile(r"(?<![ctsg])i[aou]|eo|u[ao]")
_HAS_ALNUM = re.compile(r"[^\W_]")  # the same characters as str.isalnum


@cache
def templates(language: str = "en") -> dict[str, Any]:
    """The templates of ``language`` (see :func:`available_languages`).

    Examples
    --------
    >>> templates("en")["verbs"]["purchases"]
    'bought'
    """
    name = f"{language}.json"
    folder = resources.files("persona.schema") / "templates"
    path = folder / name
    if not path.is_file():
        from persona.errors import ValidationError

        raise ValidationError(
            f"no explanation templates for language {language!r}; available: "
            f"{available_languages()}. Add persona/schema/templates/{name} to add one."
        )
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def available_languages() -> list[str]:
    """Languages with a template file.

    Examples
    --------
    >>> "en" in available_languages()
    True
    """
    folder = resources.files("persona.schema") / "templates"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


@lru_cache(maxsize=1 << 16)  # the same titles come back in every list
def nice_label(label: str) -> str:
    """Labels written in capitals (``"WHITE METAL LANTERN"``) are shown in title case."""
    label = " ".join(label.split())
    if label.isupper():
        return " ".join(w.capitalize() if w.isalpha() else w.title() for w in label.split())
    return label


def date_text(at: datetime | None, t: dict[str, Any]) -> str:
    if at is None:
        return ""
    return str(t["date"]).format(day=at.day, month=t["months"][at.month - 1], year=at.year)


@lru_cache(maxsize=1 << 16)  # words repeat: template words and catalogue titles
def _syllables(word: str) -> int:
    """Vowel groups, counting hiatus ("Mariah") and a final "é" ("Beyoncé") as syllables."""
    low = word.lower()
    w = "".join(ch for ch in unicodedata.normalize("NFKD", low) if ch.isalpha())
    if not w:
        return 1  # numbers such as years
    n = len(_VOWELS.findall(w)) + len(_HIATUS.findall(w))
    # "é" read on the letters alone, so a title's own full stop does not change the count
    final_e_sounded = "".join(ch for ch in low if ch.isalpha()).endswith("é")
    if w.endswith("e") and not w.endswith(("le", "ee")) and not final_e_sounded and n > 1:
        n -= 1
    return max(n, 1)


@lru_cache(maxsize=1 << 16)  # template pieces and titles repeat
def _stats(text: str) -> tuple[int, int]:
    """(words, syllables) of ``text``: a word is a blank-separated token with a letter or
    digit in it."""
    words = [w for w in text.split() if _HAS_ALNUM.search(w)]
    return len(words), sum(_syllables(w) for w in words)


def _ease(words: int, syllables: int, sentences: int) -> float:
    if not words:
        return 100.0
    return 206.835 - 1.015 * words / sentences - 84.6 * syllables / words


@cache
def _pieces(template: str) -> tuple[tuple[str, str | None], ...] | None:
    """``template`` as (literal, field) pairs when the words of a filled template are the
    words of its pieces (no field touches a letter or digit of the literal text, or another
    field); ``None`` otherwise."""
    parsed = [(lit, field) for lit, field, _, _ in Formatter().parse(template)]
    for k, (lit, field) in enumerate(parsed):
        if field is None:
            continue
        before = lit.rsplit(None, 1)[-1] if lit and not lit[-1].isspace() else ""
        nxt = parsed[k + 1][0] if k + 1 < len(parsed) else ""
        after = nxt.split(None, 1)[0] if nxt and not nxt[0].isspace() else ""
        if (not lit and k > 0) or (k + 1 < len(parsed) and not nxt):
            return None  # two fields side by side
        if _HAS_ALNUM.search(before) or _HAS_ALNUM.search(after):
            return None
        if not field.isidentifier():
            return None
    return tuple(parsed)


@cache
def _template_counts(template: str) -> tuple[int, int, tuple[str, ...]] | None:
    """(words, syllables) of ``template``'s literal text and its fields, when the words of
    a filled template are the words of its pieces (:func:`_pieces`); ``None`` otherwise."""
    pieces = _pieces(template)
    if pieces is None:
        return None
    words = syllables = 0
    fields = []
    for lit, field in pieces:
        w, s = _stats(lit)
        words, syllables = words + w, syllables + s
        if field is not None:
            fields.append(field)
    return words, syllables, tuple(fields)


def _filled(template: str, values: dict[str, str]) -> tuple[int, int]:
    """The (words, syllables) of ``template`` filled with ``values`` (for a template whose
    pieces do not count apart: see :func:`_template_counts`)."""
    return _stats(template.format(**values))


def reading_ease(text: str, sentences: int | None = None) -> float:
    """A conservative estimate of Flesch reading ease (used to choose how much to say).

    ``sentences`` is how many sentences the templates made (full stops inside titles such
    as ``"a.k.a."`` do not end sentences).
    """
    if sentences is None:
        sentences = max(text.count(". ") + 1, 1)
    return _ease(*_stats(text), sentences)


def _verb(features: set[str | None], t: dict[str, Any], table: str = "verbs") -> str:
    verbs = t[table]
    named = {f for f in features if f is not None}
    if len(named) == 1:
        return str(verbs.get(next(iter(named)), verbs["default"]))
    return str(verbs["default"])


def _top(e: Explanation, k: int) -> list[Any]:
    """The ``k`` largest positive reasons, largest first (what a "why" sentence may name)."""
    if e.kind == "decomposition":
        # reasons come largest first, so the first k positive ones are the top k
        return list(islice((r for r in e.reasons if (r.contribution or 0.0) > 0), k))
    if e.kind == "justification":
        return list(islice((r for r in e.reasons if (r.similarity or 0.0) > 0), min(k, 2)))
    return []


def _why(e: Explanation, t: dict[str, Any], k: int, short: bool = False) -> tuple[str, list[Any]]:
    """The "why" part and the reasons it names: one sentence naming up to ``k`` reasons,
    or (``short``) two sentences with short words around the titles, which reads more
    easily. ``k = 0`` names none: the "bare" form, said only when a positive reason exists.
    """
    template, values, named = _Why(e, t, _top(e, 3)).parts(k, short)
    return _end(template.format(**values)), named


class _Why:
    """What the "why" part of one explanation is made of, each piece computed once while
    :func:`render` tries its forms."""

    __slots__ = ("_counts", "_labels", "_unique", "_verbs", "e", "item", "t", "top3")

    def __init__(self, e: Explanation, t: dict[str, Any], top3: list[Any]) -> None:
        self.e, self.t, self.top3 = e, t, top3
        self.item = nice_label(e.label)
        labels = self._labels = [nice_label(r.label) for r in top3]
        # the titles of the first n reasons, each once, in order, are the first
        # _counts[n] of _unique (the titles of all of them, each once)
        self._unique = list(dict.fromkeys(labels))
        self._counts = [0]
        for n in range(1, len(labels) + 1):
            self._counts.append(self._counts[-1] + (labels[n - 1] not in labels[:n - 1]))
        self._verbs: dict[int, str] = {}

    def _verb(self, n: int) -> str:
        verb = self._verbs.get(n)
        if verb is None:
            verb = self._verbs[n] = _verb({r.feature for r in self.top3[:n]}, self.t)
        return verb

    def parts(self, k: int, short: bool) -> tuple[str, dict[str, str], list[Any]]:
        """The template of form ``(k, short)``, its values and the reasons it names."""
        template, named, verb = self.form(k, short)
        return template, self.values(named, verb), named

    def form(self, k: int, short: bool) -> tuple[str, list[Any], str | None]:
        """The template of form ``(k, short)``, the reasons it names and its verb."""
        e, t, top3 = self.e, self.t, self.top3
        w = t["why_short"] if short else t["why"]
        kind = e.kind
        if kind == "non_personalised":
            return str(w["popular"]), [], None
        if e.seen:
            template, verb = _seen(e, t)
            return template, [], verb
        n = max(k, 1) if kind == "decomposition" else min(max(k, 1), 2)
        top = top3[:n]
        if not top:  # no reason from the person's own data speaks for the item
            return str(w["none"]), [], None
        if k == 0:
            return str(w["bare"]), [], self._verb(len(top))
        keys = _DECOMPOSITION_KEYS if kind == "decomposition" else _JUSTIFICATION_KEYS
        titles = self._titles(len(top))  # reasons with one title are named by it once
        key = keys[len(titles) - 1]
        if key not in w:  # the short forms name at most two titles
            key = keys[1]
            top = [r for k, r in enumerate(top) if self._labels[k] in titles[:2]]
        return str(w[key]), top, self._verb(len(top))

    def _titles(self, n: int) -> list[str]:
        """The titles of the first ``n`` reasons, each once, in order."""
        return self._unique[:self._counts[n]]

    def values(self, named: list[Any], verb: str | None) -> dict[str, str]:
        values = dict(zip("abc", self._titles(len(named)), strict=False))
        values["item"] = self.item
        if verb is not None:
            values["verb"] = verb
        return values

    def count(self, template: str, named: list[Any], verb: str | None) -> tuple[int, int]:
        """(words, syllables) of the filled template, from the cached counts of its
        pieces (:func:`_template_counts`), without building its values."""
        base = _template_counts(template)
        if base is None:
            return _filled(template, self.values(named, verb))
        words, syllables, fields = base
        titles = self._titles(len(named))
        for field in fields:
            if field == "item":
                w, s = _stats(self.item)
            elif field == "verb" and verb is not None:
                w, s = _stats(verb)
            elif field in _ABC and _ABC[field] < len(titles):
                w, s = _stats(titles[_ABC[field]])
            else:  # a field the values lack: as formatting would (it raises)
                return _filled(template, self.values(named, verb))
            words, syllables = words + w, syllables + s
        return words, syllables


_DECOMPOSITION_KEYS = ("one", "two", "three")
_JUSTIFICATION_KEYS = ("like_one", "like_two")
_ABC = {"a": 0, "b": 1, "c": 2}  # the fields that hold the named titles, in order


def _seen(e: Explanation, t: dict[str, Any]) -> tuple[str, str]:
    """An item already in the person's history: never "picked because of" itself. The
    template and its verb (how they came to have it)."""
    own = {r.feature for r in e.reasons if r.item == e.item} or {None}
    verb = _verb(own, t, "participles")
    key = "seen" if e.rank is None else "again"
    return str(t["why"][key]), verb


def _end(text: str) -> str:
    """A title that ends in a full stop (``"t.A.T.u."``) does not get a second one."""
    return text[:-1] if text.endswith("..") else text


def _forms(e: Explanation, top3: list[Any] | None = None) -> list[tuple[int, bool]]:
    """Ways to say why, richest first: (how many reasons to name, short form)."""
    if top3 is None:
        top3 = _top(e, 3)
    if e.kind == "non_personalised" or e.seen or not top3:
        return [(1, False), (1, True)]
    return [(3, False), (2, False), (1, False), (2, True), (1, True), (0, True)]


def _join(labels: list[str], t: dict[str, Any]) -> str:
    if len(labels) <= 1:
        return "".join(labels)
    return ", ".join(labels[:-1]) + f" {t['and']} " + labels[-1]


def _counterfactual(e: Explanation, t: dict[str, Any]) -> str | None:
    cf = e.counterfactual
    if cf is None:
        return None
    c = t["counterfactual"]
    if cf.rank_before is None:
        return str(c["not_in_top"]).format(n=cf.n)
    if cf.verified:
        removed = _join([nice_label(x) for x in cf.removed_labels], t)
        features = {r.item: r.feature for r in e.reasons}
        verb = _verb({features.get(x) for x in cf.removed}, t, "participles")
        return str(c["found"]).format(removed=removed, n=cf.n, verb=verb)
    return str(c["not_found"]).format(n=cf.n)


def _purpose(name: str | None) -> str:
    return (name or "").replace("_", " ").replace("-", " ")


def not_used_sentence(d: DataNotUsed, t: dict[str, Any]) -> str:
    """The plain sentence for one left-out kind of data."""
    s = t["not_used"]
    category = d.category
    if d.reason == "non_profiling_chosen":  # the person's own choice (DSA Art. 38)
        return str(t["non_profiling"]).format(category=category)
    if d.reason == "not_allowed_for_purpose":
        if d.choice is not None and d.choice.action != "grant":
            return str(s["not_allowed_choice"]).format(
                category=category, purpose=_purpose(d.choice.purpose),
                date=date_text(d.choice.at, t),
            )
        if not d.allowed_for:
            return str(s["not_allowed_plain"]).format(category=category,
                                                      purpose=_purpose(d.purpose))
        allowed = _join([_purpose(p) for p in d.allowed_for], t)
        return str(s["not_allowed_for_purpose"]).format(category=category, allowed=allowed)
    return str(s[d.reason]).format(
        category=category, purpose=_purpose(d.purpose), date=date_text(d.since, t),
        days=d.retention_days,
    )


def _not_used_rank(d: DataNotUsed) -> tuple[int, int]:
    """The person's own choices first (they asked for them), then rules, then age."""
    order = {
        "withdrawn": 0, "declined": 0, "not_allowed_for_purpose": 1, "no_consent": 2,
        "excluded_by_person": 0, "outside_retention": 3, "not_personalised": 4,
        "non_profiling_chosen": 0,
    }
    own = 0 if (d.choice is not None or d.since is not None) else 1
    return own, order[d.reason]


def _curated(e: Explanation, t: dict[str, Any]) -> str:
    """A person, not a model, chose the item: say so, with the reason they gave."""
    reason = (e.note or "").strip().rstrip(".")
    return str(t["curated"]).format(reason=reason, item=e.label)


def render_statements(e: Explanation) -> dict[str, Any]:
    t = templates(e.language)
    if e.kind == "curated":
        return {"why": _curated(e, t), "counterfactual": None, "not_used": [], "privacy": None,
                "named": []}
    return {
        "why": _why(e, t, 3)[0],
        "counterfactual": _counterfactual(e, t),
        "not_used": [not_used_sentence(d, t) for d in e.data_not_used],
        "privacy": None if e.privacy is None else str(t["privacy"]),
        "named": [r.item for r in render(e)[1]],
    }


def render_text(e: Explanation) -> str:
    """At most three sentences; fewer names when long labels make the text hard to read."""
    return render(e)[0]


def render(e: Explanation) -> tuple[str, list[Any]]:
    """:attr:`Explanation.text` and the reasons its "why" sentence names, in order."""
    t = templates(e.language)
    if e.kind == "curated":
        return _curated(e, t), []
    return choose(e, t, extra_sentences(e, t))


def extra_sentences(e: Any, t: dict[str, Any]) -> list[str]:
    """The sentences that may follow the "why" part, in order: the checked
    counterfactual, then the most telling of the person's own left-out data (``events``
    is known once their lineage was read; rules about data they may not have stay in the
    fields). Items of one served list share them (:func:`choose` takes them as given)."""
    extra: list[str] = []
    cf = _counterfactual(e, t)
    if cf is not None:
        extra.append(cf)
    mine = [d for d in e.data_not_used if d.events is not None]
    if mine:
        extra.append(not_used_sentence(min(mine, key=_not_used_rank), t))
    return extra


def choose(e: Any, t: dict[str, Any], extra: list[str]) -> tuple[str, list[Any]]:
    """:func:`render` for an explanation that is not curated, with its
    :func:`extra_sentences` given: the richest text that reads easily enough, and the
    reasons it names. ``e`` needs only the fields the text reads (``label``, ``kind``,
    ``seen``, ``rank``, ``item`` and ``reasons``: largest first, each with ``item``,
    ``label``, ``feature`` and ``contribution`` or ``similarity``)."""
    top3 = _top(e, 3)
    if top3 and not e.seen and e.kind in _PLANNED:
        planned = _choose_planned(e, t, extra, top3)
        if planned is not None:
            return planned
    forms = _forms(e, top3)
    why = _Why(e, t, top3)
    for n_extra, words, syllables in _extra_counts(extra):
        for k, short in forms:
            if short and n_extra > 1:
                continue  # a two-sentence "why" leaves room for one more sentence
            template, named, verb = why.form(k, short)
            w, s = why.count(template, named, verb)
            if _ease(words + w, syllables + s, (2 if short else 1) + n_extra) >= TARGET_EASE:
                said = _end(template.format(**why.values(named, verb)))
                return " ".join([said, *extra[:n_extra]]), named
    # even the shortest form is hard to read (the titles themselves are long): say least,
    # which is the bare form when a reason of the person's own speaks for the item (with
    # none, the form asked names none whatever its count: "none", "popular" or "seen")
    template, values, named = why.parts(0, True)
    return _end(template.format(**values)), named


def _extra_counts(extra: list[str]) -> Iterator[tuple[int, int, int]]:
    """How many of the ``extra`` sentences to keep, most first, with their (words,
    syllables): what each try of :func:`choose` adds to the "why" part's counts."""
    counted = [_stats(x) for x in extra]
    for n_extra in range(len(extra), -1, -1):
        yield (n_extra, sum(c[0] for c in counted[:n_extra]),
               sum(c[1] for c in counted[:n_extra]))


# ------------------------------------------------------------------ form plans
# Which form a text takes depends on its words (their counts) and on its *shape*: the
# explanation's kind, which of its top reasons share a title, and their features. For a
# shape, the forms :func:`choose` tries (each one's template, the reasons it names, its
# verb and the fields it fills) are worked out once by :class:`_Why` and kept as a plan;
# an explanation of that shape then only adds up the counts of its own words. A test
# checks that both ways give the same text.
_PLANNED = frozenset({"decomposition", "justification"})
_PLAN_LIMIT = 4096  # shapes kept (each is a few tuples); past it, plans are not kept
_PLANS: dict[tuple[Any, ...], tuple[dict[str, Any], tuple[Any, ...] | None]] = {}
_ITEM, _VERB = -1, -2  # field codes besides the titles' positions
_TITLE_FIELDS = tuple(_ABC)  # "a", "b", "c": the titles' fields, in order


def _choose_planned(e: Any, t: dict[str, Any], extra: list[str],
                    top3: list[Any]) -> tuple[str, list[Any]] | None:
    """:func:`choose` for an item not in the history whose top reasons exist, from the
    plan of its shape; ``None`` when its templates do not count apart (then the general
    way renders it)."""
    labels = [nice_label(r.label) for r in top3]
    key = (id(t), e.kind, tuple(map(labels.index, labels)), tuple(r.feature for r in top3))
    entry = _PLANS.get(key)
    if entry is None or entry[0] is not t:
        entry = (t, _plan(_Why(e, t, top3)))
        if len(_PLANS) < _PLAN_LIMIT:
            _PLANS[key] = entry
    plan = entry[1]
    if plan is None:
        return None
    unique = list(dict.fromkeys(labels))
    stats = [_stats(x) for x in unique]
    item = nice_label(e.label)
    item_stats = _stats(item)
    for n_extra, words, syllables in _extra_counts(extra):
        for row in plan:
            short, template, positions, verb, shown = row[:5]
            if short and n_extra > 1:
                continue  # a two-sentence "why" leaves room for one more sentence
            w, s = _row_counts(row, stats, item_stats)
            if _ease(words + w, syllables + s, (2 if short else 1) + n_extra) >= TARGET_EASE:
                values = {_TITLE_FIELDS[i]: unique[i] for i in range(shown)}
                values["item"], values["verb"] = item, verb
                said = _end(template.format(**values))
                return " ".join([said, *extra[:n_extra]]), [top3[i] for i in positions]
    # even the shortest form is hard to read (the titles themselves are long): say least,
    # the last form tried, the bare one, which names no title (as the general way does)
    template, verb = plan[-1][1], plan[-1][3]
    return _end(template.format(item=item, verb=verb)), []


def _row_counts(row: tuple[Any, ...], stats: list[tuple[int, int]],
                item_stats: tuple[int, int]) -> tuple[int, int]:
    """(words, syllables) of a plan's form filled with an explanation's words: ``stats``
    of its titles (each once, in order) and ``item_stats`` of its item's."""
    verb, words, syllables, codes = row[3], row[5], row[6], row[7]
    for code in codes:
        c = stats[code] if code >= 0 else item_stats if code == _ITEM else _stats(verb)
        words, syllables = words + c[0], syllables + c[1]
    return words, syllables


def _plan(why: _Why) -> tuple[Any, ...] | None:
    """The forms of ``why``'s shape, in the order :func:`choose` tries them: ``(short,
    template, positions of the reasons named, verb, titles shown, words, syllables,
    field codes)``; ``None`` when a template's words are not the words of its pieces."""
    plan = []
    for k, short in _forms(why.e, why.top3):
        template, named, verb = why.form(k, short)
        counts = _template_counts(template)
        if counts is None:
            return None
        words, syllables, fields = counts
        shown = why._counts[len(named)]
        codes = []
        for field in fields:
            if field == "item":
                codes.append(_ITEM)
            elif field == "verb" and verb is not None:
                codes.append(_VERB)
            elif field in _ABC and _ABC[field] < shown:
                codes.append(_ABC[field])
            else:  # a field the values lack (formatting raises): the general way
                return None
        positions = tuple(i for i, r in enumerate(why.top3) if any(r is x for x in named))
        plan.append((short, template, positions, verb, shown, words, syllables,
                     tuple(codes)))
    return tuple(plan)
