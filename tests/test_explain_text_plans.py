"""The planned way of choosing a text's form (the forms of a *shape* worked out once, then
only the counts of the words added up) gives the text the general way gives, word for word,
and the reasons it names."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

import persona.schema._text as text_module
from persona.explain import Explanation, Reason
from persona.schema import choose_text as choose
from persona.schema import templates

T = templates("en")
TITLES = ["Lamp", "Tent", "White Hanging Heart T-Light Holder", "東京タワー", "t.A.T.u.",
          "Set/2 Red Retrospot Tea Towels", "Regency Cakestand 3 Tier", "Beyoncé",
          "Assorted Colour Bird Ornament", "A", "Wooden Picture Frame White Finish", "Ü"]
EXTRA = ["You can ask us to stop.",
         "We did not use your precisely recorded geographical whereabouts, as "
         "personalization is not an allowed purpose for that information."]


@contextmanager
def general() -> Iterator[None]:
    """Every text chosen the general way (no plans)."""
    planned = text_module._PLANNED
    text_module._PLANNED = frozenset()
    try:
        yield
    finally:
        text_module._PLANNED = planned


def _e(kind: str, labels: list[str], features: list[str | None], values: list[float],
       item_label: str) -> Explanation:
    field = "contribution" if kind == "decomposition" else "similarity"
    reasons = [Reason(item=f"r{k}", label=label, feature=feature, **{field: v})
               for k, (label, feature, v) in enumerate(zip(labels, features, values,
                                                            strict=False))]
    return Explanation(item="x", label=item_label, score=1.0, rank=1, kind=kind,
                       model="ALS", reasons=reasons)


def _both(e: Explanation, t: dict, extra: list[str]) -> tuple[tuple, tuple]:
    text, named = choose(e, t, extra)
    with general():
        text2, named2 = choose(e, t, extra)
    return (text, [r.item for r in named]), (text2, [r.item for r in named2])


explanations = st.builds(
    _e,
    kind=st.sampled_from(["decomposition", "justification"]),
    labels=st.lists(st.sampled_from(TITLES), min_size=0, max_size=4),
    features=st.lists(st.sampled_from(["purchases", "views", None]), min_size=4,
                      max_size=4),
    values=st.lists(st.sampled_from([0.5, 0.3, 0.2, 0.1, -0.2, 0.0]), min_size=4,
                    max_size=4),
    item_label=st.sampled_from(TITLES),
)


@given(e=explanations, extra=st.lists(st.sampled_from(EXTRA), max_size=2))
def test_a_planned_text_is_the_general_ways_word_for_word(e: Explanation,
                                                           extra: list[str]) -> None:
    planned, general_way = _both(e, T, extra)
    assert planned == general_way
    assert _both(e, T, extra)[0] == planned  # once its shape's plan is kept, too


def _odd_templates() -> dict:
    """English, but with a "why" form whose fields touch letters (its words are not the
    words of its pieces), which only the general way can count."""
    t = copy.deepcopy(T)
    t["why"]["two"] = "We picked {item} because you {verb} {a}&{b}s."
    return t


@pytest.mark.parametrize("labels", [["Tent", "Lamp", "A"], ["Tent", "Tent", "Lamp"],
                                    ["White Hanging Heart T-Light Holder", "Lamp", "A"]])
def test_a_shape_whose_templates_do_not_count_apart_is_chosen_the_general_way(
        labels: list[str]) -> None:
    t = _odd_templates()
    e = _e("decomposition", labels, ["purchases"] * 3, [0.5, 0.3, 0.2], "Lamp")
    top3 = list(e.reasons)
    assert text_module._plan(text_module._Why(e, t, top3)) is None
    assert text_module._plan(text_module._Why(e, T, top3)) is not None
    planned, general_way = _both(e, t, [])
    assert planned == general_way
    assert _both(e, T, [])[0] == _both(e, T, [])[1]


def test_each_template_set_gets_its_own_plans() -> None:
    t = copy.deepcopy(T)
    t["why"]["one"] = "Here is {item}, since you {verb} {a}."
    e = _e("decomposition", ["Tent"], ["purchases"], [0.5], "Lamp")
    assert choose(e, T, [])[0] == "We picked Lamp for you because you bought Tent."
    assert choose(e, t, [])[0] == "Here is Lamp, since you bought Tent."
    assert choose(e, T, [])[0] == "We picked Lamp for you because you bought Tent."


def test_past_the_limit_plans_are_worked_out_but_not_kept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_module, "_PLANS", {})
    monkeypatch.setattr(text_module, "_PLAN_LIMIT", 1)
    one = _e("decomposition", ["Tent", "Lamp"], ["purchases"] * 2, [0.5, 0.3], "Lamp")
    two = _e("decomposition", ["Tent", "Tent"], ["purchases"] * 2, [0.5, 0.3], "Lamp")
    for e in (one, two, one, two):
        planned, general_way = _both(e, T, [])
        assert planned == general_way
    assert len(text_module._PLANS) == 1


@given(e=explanations)
def test_every_planned_form_counts_the_words_of_its_filled_text(e: Explanation) -> None:
    top3 = text_module._top(e, 3)
    if not top3:
        return
    why = text_module._Why(e, T, top3)
    plan = text_module._plan(why)
    assert plan is not None  # the English templates count apart
    labels = [text_module.nice_label(r.label) for r in top3]
    unique = list(dict.fromkeys(labels))
    stats = [text_module._stats(x) for x in unique]
    item = text_module.nice_label(e.label)
    forms = text_module._forms(e, top3)
    assert len(plan) == len(forms)
    for row, (k, short) in zip(plan, forms, strict=True):
        template, named, verb = why.form(k, short)
        assert row[:4] == (short, template,
                           tuple(top3.index(r) for r in named), verb)
        filled = template.format(**why.values(named, verb))
        assert text_module._row_counts(row, stats, text_module._stats(item)) == \
            text_module._stats(filled)


def test_a_shapes_plan_is_worked_out_once_per_template_set(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The second text of a shape adds up counts only: no plan, no form counted again."""
    monkeypatch.setattr(text_module, "_PLANS", {})
    made: list[int] = []
    plan = text_module._plan
    monkeypatch.setattr(text_module, "_plan", lambda why: made.append(1) or plan(why))
    other = copy.deepcopy(T)
    first = _e("decomposition", ["Tent", "Lamp"], ["purchases"] * 2, [0.5, 0.3], "Lamp")
    second = _e("decomposition", ["Boots", "Socks"], ["purchases"] * 2, [0.4, 0.1], "Stove")
    choose(first, T, [])
    choose(first, other, [])
    assert len(made) == 2  # one plan per template set

    def counted(*args: object) -> None:
        raise AssertionError("a planned shape's form was counted the general way")

    monkeypatch.setattr(text_module._Why, "count", counted)
    monkeypatch.setattr(text_module._Why, "form", counted)
    for t in (T, other, T):
        assert choose(second, t, [])[0] == "We picked Stove for you because you bought " \
                                           "Boots and Socks."
    assert len(made) == 2


@pytest.mark.parametrize("way", ["planned", "general"])
def test_a_form_whose_template_lacks_a_field_fails_as_filling_it_would(way: str) -> None:
    """A "why" template naming more titles than its form has (a broken template file):
    counting that form fails as formatting it would, whichever way the text is chosen,
    even when a later form would read easily."""
    t = copy.deepcopy(T)
    t["why"]["one"] = "We picked {item} for you because you {verb} {a} and {b}."
    long = "Wooden Picture Frame White Finish With Extraordinarily Decorative Ornaments"
    e = _e("decomposition", [long, "Lamp"], ["purchases"] * 2, [0.5, 0.3], "Lamp")
    if way == "general":
        with general(), pytest.raises(KeyError, match="'b'"):
            choose(e, t, [])
    else:
        with pytest.raises(KeyError, match="'b'"):
            choose(e, t, [])


@pytest.mark.parametrize("labels", [["White Hanging Heart T-Light Holder", "Lamp", "A"],
                                    ["Tent", "Tent", "東京タワー"], ["Beyoncé"]])
@pytest.mark.parametrize("item_label", ["Regency Cakestand 3 Tier", "A", "t.A.T.u."])
@pytest.mark.parametrize("features", [["purchases"] * 3, ["views", "purchases", None]])
def test_each_planned_forms_counts_are_its_filled_texts(labels: list[str], item_label: str,
                                                       features: list[str | None]) -> None:
    e = _e("decomposition", labels, features, [0.5, 0.3, 0.2], item_label)
    top3 = text_module._top(e, 3)
    why = text_module._Why(e, T, top3)
    plan = text_module._plan(why)
    assert plan is not None
    stats = [text_module._stats(x) for x in dict.fromkeys(
        text_module.nice_label(r.label) for r in top3)]
    item_stats = text_module._stats(text_module.nice_label(item_label))
    for row, (k, short) in zip(plan, text_module._forms(e, top3), strict=True):
        template, named, verb = why.form(k, short)
        filled = template.format(**why.values(named, verb))
        assert text_module._row_counts(row, stats, item_stats) == text_module._stats(filled)


@pytest.mark.parametrize("way", ["planned", "general"])
def test_a_text_too_hard_to_read_in_any_form_says_least_with_its_largest_reasons_verb(
        way: str) -> None:
    """Nothing reads easily: the bare form, whose verb is that of the largest reason
    alone (here "viewed"), not of the two largest ("used" for mixed kinds of data)."""
    item = "Extraordinarily Decorative Polychromatic Commemorative Ceramic Candleholder"
    e = _e("decomposition", ["Assorted Colour Bird Ornament", "Regency Cakestand 3 Tier"],
           ["views", "purchases"], [0.5, 0.3], item)
    if way == "general":
        with general():
            text, named = choose(e, T, [])
    else:
        text, named = choose(e, T, [])
    assert named == []
    bare = T["why_short"]["bare"].format(item=item, verb=T["verbs"]["views"])
    assert text == bare


def test_a_planned_form_counts_its_item_and_verb_apart() -> None:
    """A template naming the item but no verb (or the verb but not the item) counts the
    words of what it names."""
    t = copy.deepcopy(T)
    t["why_short"]["bare"] = "Try {item}."
    t["why"]["one"] = "You {verb} {a}, so here is one more."
    e = _e("decomposition", ["Tent"], ["purchases"], [0.5],
           "Extraordinarily Decorative Polychromatic Commemorative Candleholder")
    top3 = text_module._top(e, 3)
    why = text_module._Why(e, t, top3)
    plan = text_module._plan(why)
    assert plan is not None
    stats = [text_module._stats("Tent")]
    item_stats = text_module._stats(text_module.nice_label(e.label))
    for row, (k, short) in zip(plan, text_module._forms(e, top3), strict=True):
        template, named, verb = why.form(k, short)
        filled = template.format(**why.values(named, verb))
        assert text_module._row_counts(row, stats, item_stats) == text_module._stats(filled)
