"""The forms the text is chosen from, and their counts, pinned one by one (what the counted
renderer relies on: a form's words and syllables must be those of its filled text)."""

from __future__ import annotations

import itertools

import pytest

import persona.schema._text as text_module
from persona.explain import Explanation, Reason, available_languages
from persona.schema import choose_text as choose
from persona.schema import templates
from persona.schema._text import (
    TARGET_EASE,
    _ease,
    _end,
    _forms,
    _stats,
    _Why,
)

T = templates("en")
TITLES = ["Lamp", "Lamp", "White Hanging Heart T-Light Holder", "Tent", "東京タワー",
          "Set/2 Red Retrospot Tea Towels", "t.A.T.u."]


LABEL_SETS = [*[tuple(c) for c in itertools.combinations(TITLES, 3)][:12],
              ("Lamp", "Lamp", "Lamp"), ("Lamp", "Tent", "Lamp")]


@pytest.fixture(params=["planned", "general"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Choose texts from the plan of their shape (the usual way) or the general way."""
    if request.param == "general":
        monkeypatch.setattr(text_module, "_PLANNED", frozenset())
    return str(request.param)


def _e(kind: str = "decomposition", labels=("Tent", "Boots", "Socks"), *, seen: bool = False,
       rank: int | None = 1, item_label: str = "Camp Stove", values=(0.5, 0.3, 0.2),
       features=("purchases", "purchases", "purchases")) -> Explanation:
    field = "contribution" if kind == "decomposition" else "similarity"
    reasons = [Reason(item=f"r{k}", label=label, feature=feature, **{field: v})
               for k, (label, v, feature) in enumerate(zip(labels, values, features,
                                                           strict=False))]
    if seen:
        reasons.append(Reason(item="x", label=item_label, feature="purchases",
                              **{field: 0.1}))
    return Explanation(item="x", label=item_label, score=1.0, rank=rank, kind=kind,
                       model="ALS", reasons=[] if kind == "non_personalised" else reasons,
                       seen=seen)


def test_the_forms_richest_first() -> None:
    assert _forms(_e()) == [(3, False), (2, False), (1, False), (2, True), (1, True),
                            (0, True)]
    assert _forms(_e(kind="justification")) == _forms(_e())
    assert _forms(_e(kind="non_personalised")) == [(1, False), (1, True)]
    assert _forms(_e(seen=True)) == [(1, False), (1, True)]
    assert _forms(_e(values=(-0.5, -0.3, -0.2))) == [(1, False), (1, True)]  # none positive
    # a non-personalised explanation read from JSON with reasons in it still names none
    crafted = _e().model_copy(update={"kind": "non_personalised"})
    assert _forms(crafted) == [(1, False), (1, True)]
    assert crafted.text == _e(kind="non_personalised").text


@pytest.mark.parametrize("kind", ["decomposition", "justification", "non_personalised"])
@pytest.mark.parametrize("labels", LABEL_SETS)
@pytest.mark.parametrize("seen", [False, True])
def test_every_forms_count_is_that_of_its_filled_text(kind, labels, seen) -> None:
    e = _e(kind, labels, seen=seen)
    top3 = [r for r in e.reasons if ((r.contribution if kind == "decomposition"
                                      else r.similarity) or 0) > 0][:3]
    why = _Why(e, T, top3)
    for k, short in [(3, False), (2, False), (1, False), (3, True), (2, True), (1, True),
                     (0, True)]:
        template, named, verb = why.form(k, short)
        filled = template.format(**why.values(named, verb))
        assert why.count(template, named, verb) == _stats(filled), (k, short, filled)
        template2, values, named2 = why.parts(k, short)
        assert (template2, named2) == (template, named)
        assert template2.format(**values) == filled
        # a title is said once, however many of the named reasons carry it
        titles = [r.label for r in named]
        for title in set(titles):
            if title != e.label:
                assert filled.count(title) == 1, filled


@pytest.mark.parametrize("item_label", [
    "Tent", "White Hanging Heart T-Light Holder Deluxe",
    # so long that even the bare form reads hard: the text says least
    "Extraordinarily Decorative Polychromatic Commemorative Ceramic Candleholder"])
@pytest.mark.parametrize("labels", [("Tent", "Boots", "Socks"),
                                    ("Wooden Picture Frame White Finish",
                                     "Set/2 Red Retrospot Tea Towels",
                                     "3 Drawer Antique White Wood Cabinet")])
def test_the_text_is_the_first_form_that_reads_easily(item_label, labels, way) -> None:
    """What ``choose`` returns is the first form, richest first, whose ease reaches the
    target (computed here from the filled sentences), else the shortest."""
    e = _e(labels=labels, item_label=item_label)
    top3 = list(e.reasons[:3])
    why = _Why(e, T, top3)
    expected = None
    for k, short in _forms(e):
        template, values, named = why.parts(k, short)
        text = _end(template.format(**values))
        words, syllables = _stats(template.format(**values))
        if _ease(words, syllables, 2 if short else 1) >= TARGET_EASE:
            expected = (text, [r.item for r in named])
            break
    if expected is None:
        template, values, named = why.parts(0, True)
        expected = (_end(template.format(**values)), [])
    text, named = choose(e, T, [])
    assert (text, [r.item for r in named]) == expected
    assert text == e.text


def _top3(e: Explanation) -> list[Reason]:
    field = "contribution" if e.kind == "decomposition" else "similarity"
    return [r for r in e.reasons if (getattr(r, field) or 0) > 0][:3]


ALL_FORMS = [(3, False), (2, False), (1, False), (3, True), (2, True), (1, True), (0, True)]


@pytest.mark.parametrize("language", available_languages())
@pytest.mark.parametrize("kind", ["decomposition", "justification", "non_personalised"])
@pytest.mark.parametrize("seen", [False, True])
@pytest.mark.parametrize("labels", [("Tent", "Boots", "Socks"), ("Lamp", "Lamp", "Tent")])
def test_counts_come_from_the_pieces_without_filling_the_template(
        monkeypatch, language, kind, seen, labels) -> None:
    """Every template of every language counts from its cached pieces: the counted
    renderer never formats a form to count it (the fallback is for templates whose
    fields touch letters, which no language file has)."""
    t = templates(language)
    e = _e(kind, labels, seen=seen)
    why = _Why(e, t, _top3(e))
    forms = [why.form(k, short) for k, short in ALL_FORMS]
    expected = [_stats(template.format(**why.values(named, verb)))
                for template, named, verb in forms]

    def formatted(*args, **kwargs):
        raise AssertionError("a form was filled in to count it")

    monkeypatch.setattr(text_module, "_filled", formatted)
    assert [why.count(*form) for form in forms] == expected


def test_a_template_whose_fields_touch_letters_is_counted_filled() -> None:
    e = _e()
    why = _Why(e, T, _top3(e))
    named = list(e.reasons[:2])
    for template in ("{item}s go with {a}'s {verb} friends and {b}", "x{item} {verb}{a}"):
        filled = template.format(**why.values(named, "bought"))
        assert why.count(template, named, "bought") == _stats(filled)


@pytest.mark.parametrize(("template", "named", "verb", "missing"), [
    ("We think you will like {item}: {a}, {b} and {c}.", 2, "bought", "c"),
    ("We think you will like {item} as you {verb} {a}.", 1, None, "verb"),
    ("{item} {n}", 1, "bought", "n"),
    ("{item}: you {verb} {a}, {b} and {c}.", 2, "bought", "c"),
])
def test_a_field_the_form_lacks_fails_as_filling_it_would(template, named, verb,
                                                            missing) -> None:
    e = _e()
    why = _Why(e, T, _top3(e))
    with pytest.raises(KeyError, match=repr(missing)):
        template.format(**why.values(list(e.reasons[:named]), verb))
    with pytest.raises(KeyError, match=repr(missing)):
        why.count(template, list(e.reasons[:named]), verb)


@pytest.mark.parametrize("kind", ["decomposition", "justification"])
@pytest.mark.parametrize("labels", [("Tent", "Boots", "Socks"), ("Lamp", "Lamp", "Tent"),
                                    ("Lamp", "Tent", "Lamp")])
@pytest.mark.parametrize("features", [("purchases", "views", "purchases"),
                                      ("views", "purchases", "purchases"),
                                      ("purchases", "purchases", "views")])
def test_a_form_names_as_many_titles_as_asked_with_their_own_verb(kind, labels,
                                                                  features) -> None:
    """Form ``(k, short)`` names at most ``k`` titles (a justification two, a short form
    two), as many as there are; its verb is that of the reasons it names (the bare form:
    of the largest one), not of reasons it leaves out."""
    t = templates("en")
    e = _e(kind, labels, features=features)
    top3 = _top3(e)
    why = _Why(e, t, top3)
    cap = 3 if kind == "decomposition" else 2
    for k, short in ALL_FORMS:
        _, named, verb = why.form(k, short)
        speaking = top3[:max(k, 1) if kind == "decomposition" else min(max(k, 1), 2)]
        distinct = list(dict.fromkeys(r.label for r in speaking))
        titles = list(dict.fromkeys(r.label for r in named))
        if k == 0:
            assert named == [] and verb == text_module._verb({top3[0].feature}, t)
            continue
        assert titles == distinct[:min(cap, 2 if short else 3)], (k, short)
        assert verb == text_module._verb({r.feature for r in named}, t), (k, short)


def _reference(e: Explanation, extra: list[str]) -> str:
    """The text :func:`choose` must give, worked out the long way: the most extra
    sentences first, then the forms richest first (a two-sentence form leaves room for one
    extra sentence at most), each filled in and measured; else the bare form."""
    why = _Why(e, T, _top3(e))
    for n_extra in range(len(extra), -1, -1):
        for k, short in _forms(e):
            if short and n_extra > 1:
                continue
            template, values, _ = why.parts(k, short)
            said = template.format(**values)
            text = " ".join([said, *extra[:n_extra]])
            words, syllables = _stats(text)
            if _ease(words, syllables, (2 if short else 1) + n_extra) >= TARGET_EASE:
                return " ".join([_end(said), *extra[:n_extra]])
    template, values, _ = why.parts(0, True)
    return _end(template.format(**values))


SHORT_EXTRA = "You can ask us to stop."
LONG_EXTRA = ("We did not use your precisely recorded geographical whereabouts, as "
              "personalization is not an allowed purpose for that information.")


@pytest.mark.parametrize("labels", [("Tent", "Boots", "Socks"),
                                    ("Wooden Picture Frame White Finish",
                                     "Set/2 Red Retrospot Tea Towels", "Lamp"),
                                    ("Assorted Colour Bird Ornament", "Tent", "Lamp"),
                                    # two extra sentences fit only after a long form:
                                    # a short form then keeps one
                                    ("Assorted Colour Bird Ornament",
                                     "Regency Cakestand 3 Tier", "Boots")])
@pytest.mark.parametrize("item_label", ["Tent", "Regency Cakestand 3 Tier"])
@pytest.mark.parametrize("extra", [[SHORT_EXTRA], [LONG_EXTRA], [SHORT_EXTRA, SHORT_EXTRA],
                                   [SHORT_EXTRA, LONG_EXTRA], [LONG_EXTRA, SHORT_EXTRA]])
def test_extra_sentences_are_kept_while_the_text_reads_easily(labels, item_label,
                                                              extra, way) -> None:
    e = _e(labels=labels, item_label=item_label)
    assert choose(e, T, extra)[0] == _reference(e, extra)


def test_no_text_of_up_to_200_words_sits_exactly_on_the_target_ease() -> None:
    """Why ``>=`` and ``>`` pick the same form in practice (see the mutation
    justifications): no count of words, syllables and sentences a text can have here puts
    the estimated ease exactly on the target."""
    on_target = [(w, s, n) for w in range(1, 201) for s in range(w, 4 * w + 1)
                 for n in range(1, 5) if _ease(w, s, n) == TARGET_EASE]
    assert on_target == []
