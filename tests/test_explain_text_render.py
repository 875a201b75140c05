"""The rendering of explanation text, sentence by sentence (``persona.schema._text``).

Explanations are built by hand here, so every sentence is known word for word: which
template each kind of explanation and each kind of left-out data takes, the verbs, the
order and number of the names, dates and numbers, and how much is said when long titles
make the text hard to read. The other explanation tests check the text against models.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from persona.explain import ConsentBasis, Counterfactual, DataNotUsed, Explanation, Reason
from persona.schema import available_languages, templates
from persona.schema import explanation_text as render
from persona.schema._text import (
    TARGET_EASE,
    _not_used_rank,
    _pieces,
    _stats,
    _syllables,
    _template_counts,
    date_text,
    nice_label,
    not_used_sentence,
    reading_ease,
    render_statements,
)

T = templates("en")
WHEN = datetime(2025, 3, 7, 12, tzinfo=UTC)


def _r(item: str, contribution: float, feature: str | None = "purchases",
       label: str | None = None) -> Reason:
    return Reason(item=item, label=label or item.capitalize(), contribution=contribution,
                  feature=feature)


def _e(reasons=(), kind: str = "decomposition", **kw) -> Explanation:
    base = {"item": "t", "label": "Tent", "score": 1.0, "rank": 1, "kind": kind,
            "model": "ALS", "reasons": list(reasons)}
    return Explanation(**{**base, **kw})


# ------------------------------------------------------------------ why: decompositions


@pytest.mark.parametrize(("reasons", "text"), [
    ([_r("boots", 0.5)], "We picked Tent for you because you bought Boots."),
    ([_r("boots", 0.5), _r("rope", 0.3)],
     "We picked Tent for you because you bought Boots and Rope."),
    ([_r("boots", 0.5), _r("rope", 0.3), _r("map", 0.1)],
     "We picked Tent for you because you bought Boots, Rope and Map."),
    # at most three, largest first, negative and zero parts never named
    ([_r("boots", 0.5), _r("mud", -0.4), _r("rope", 0.3), _r("zero", 0.0), _r("map", 0.1),
      _r("cup", 0.05)],
     "We picked Tent for you because you bought Boots, Rope and Map."),
])
def test_decomposition_names_the_largest_positive_reasons(reasons, text) -> None:
    e = _e(reasons)
    assert e.text == text
    assert render(e)[0] == text
    named = [r.item for r in reasons if (r.contribution or 0) > 0][:3]
    assert [r.item for r in render(e)[1]] == named
    assert render_statements(e)["named"] == named
    assert render_statements(e)["why"] == text


@pytest.mark.parametrize(("features", "verb"), [
    (["purchases"], "bought"), (["views", "views"], "looked at"), (["plays"], "played"),
    (["ratings"], "rated"), (["watches"], "watched"), (["likes"], "liked"),
    (["clicks", "views"], "chose"),  # two kinds of data: the verb that fits both
    ([None], "chose"), (["hikes"], "chose"), (["views", None], "looked at"),
])
def test_verb_follows_the_kind_of_data(features, verb) -> None:
    reasons = [_r(f"i{k}", 0.5 - 0.1 * k, f) for k, f in enumerate(features)]
    assert f"because you {verb} I0" in _e(reasons).text


def test_no_positive_reason_fills_out_the_list() -> None:
    e = _e([_r("mud", -0.2), _r("zero", 0.0)])
    assert e.text == "We picked Tent to fill out your list, not because of what you did."
    assert render(e)[1] == []
    assert _e([]).text == e.text


def test_titles_in_capitals_read_in_title_case_and_end_with_one_full_stop() -> None:
    e = _e([_r("a", 0.5, label="WHITE  METAL LANTERN"), _r("b", 0.2, label="t.A.T.u.")],
           label="12PK PAPER 50'S CUPS")
    assert render_statements(e)["why"] == (
        "We picked 12Pk Paper 50'S Cups for you because you bought White Metal Lantern and "
        "t.A.T.u.")
    assert e.text == ("We think you will like 12Pk Paper 50'S Cups. It is due to what you "
                      "bought: White Metal Lantern and t.A.T.u.")


@pytest.mark.parametrize(("label", "shown"), [
    ("WHITE METAL LANTERN", "White Metal Lantern"),
    ("  WHITE\tMETAL \n LANTERN ", "White Metal Lantern"),
    ("SET OF 3 HOOKS", "Set Of 3 Hooks"),
    ("12PK CUPS", "12Pk Cups"),
    ("Mixed Case KEPT", "Mixed Case KEPT"),
    (" a  b ", "a b"),
    ("", ""),
])
def test_nice_label(label: str, shown: str) -> None:
    assert nice_label(label) == shown


# ------------------------------------------------------------------ why: other kinds


def test_justification_names_at_most_two_similar_items() -> None:
    def sim(item: str, s: float, feature: str = "views") -> Reason:
        return Reason(item=item, label=item.capitalize(), similarity=s, feature=feature)

    one = _e([sim("boots", 0.9), sim("mud", -0.3), sim("none", 0.0)], kind="justification")
    assert one.text == "We picked Tent for you as it is much like Boots, which you looked at."
    three = _e([sim("boots", 0.9), sim("rope", 0.5), sim("map", 0.4)], kind="justification")
    assert three.text == ("We picked Tent for you as it is much like Boots and Rope, "
                          "which you looked at.")
    assert [r.item for r in render(three)[1]] == ["boots", "rope"]
    nothing = _e([sim("mud", -0.1)], kind="justification")
    assert nothing.text == "We picked Tent to fill out your list, not because of what you did."


def test_non_personalised_and_curated() -> None:
    e = _e(kind="non_personalised", model="Popularity")
    assert e.text == "We picked Tent for you as lots of shoppers like it."
    assert render(e) == (e.text, [])
    c = _e(kind="curated", model="curation", note="  Holiday gift guide. ")
    assert c.text == "Chosen by our team: Holiday gift guide."
    assert render(c) == (c.text, [])
    assert render_statements(c) == {"why": c.text, "counterfactual": None, "not_used": [],
                                    "privacy": None, "named": []}
    assert _e(kind="curated", model="curation").text == "Chosen by our team: ."


def test_items_already_seen_are_never_picked_because_of_themselves() -> None:
    own = [_r("t", 0.6, "views"), _r("boots", 0.3)]
    assert _e(own, seen=True, rank=None).text == (
        "You have looked at Tent already, so it is not on your list.")
    assert _e(own, seen=True, rank=3).text == (
        "You have looked at Tent already, and it is on your list again.")
    # the person's own events of the item give the verb; none known: the general one
    assert _e([_r("boots", 0.3)], seen=True, rank=None).text == (
        "You have chosen Tent already, so it is not on your list.")
    assert render(_e(own, seen=True, rank=None))[1] == []


# ------------------------------------------------------------------ counterfactuals


def _cf(**kw) -> Counterfactual:
    base = {"removed": ["boots"], "removed_labels": ["HIKING BOOTS"], "verified": True,
            "n": 10, "rank_before": 2, "rank_after": None}
    return Counterfactual(**{**base, **kw})


@pytest.mark.parametrize(("cf", "sentence"), [
    (_cf(), "Had you not bought Hiking Boots, it would not be in your top 10."),
    (_cf(removed=["boots", "rope"], removed_labels=["Boots", "Rope"]),
     "Had you not bought Boots and Rope, it would not be in your top 10."),
    (_cf(removed=["boots", "rope", "map"], removed_labels=["Boots", "Rope", "Map"], n=5),
     "Had you not bought Boots, Rope and Map, it would not be in your top 5."),
    (_cf(removed=["boots", "song"], removed_labels=["Boots", "Song"]),
     "Had you not chosen Boots and Song, it would not be in your top 10."),
    (_cf(verified=False, rank_after=4),
     "We did not find a small change to your past that would take it out of your top 10."),
    (_cf(rank_before=None, removed=[], removed_labels=[], verified=False, n=20),
     "It is not in your top 20 now."),
])
def test_counterfactual_sentences(cf: Counterfactual, sentence: str) -> None:
    reasons = [_r("boots", 0.5), _r("rope", 0.3), _r("map", 0.1), _r("song", 0.05, "plays")]
    e = _e(reasons, counterfactual=cf)
    assert render_statements(e)["counterfactual"] == sentence
    assert e.text == "We picked Tent for you because you bought Boots, Rope and Map. " + sentence


def test_counterfactual_of_an_item_outside_the_reasons_uses_the_general_verb() -> None:
    e = _e([_r("boots", 0.5)], counterfactual=_cf(removed=["x"], removed_labels=["X"]))
    assert render_statements(e)["counterfactual"] == (
        "Had you not chosen X, it would not be in your top 10.")


# ------------------------------------------------------------------ data not used


def _nu(reason: str, **kw) -> DataNotUsed:
    return DataNotUsed(feature="views", category="page views", reason=reason, **kw)


def _choice(action: str, purpose: str = "ad_targeting-eu") -> ConsentBasis:
    return ConsentBasis(purpose=purpose, action=action, at=WHEN, source="form")


@pytest.mark.parametrize(("d", "sentence"), [
    (_nu("no_consent", purpose="personalised_ads-eu"),
     "We did not use your page views, as you have not said yes to personalised ads eu."),
    (_nu("declined", purpose="recs", since=WHEN),
     "We did not use your page views, as you said no to recs on 7 March 2025."),
    (_nu("withdrawn", purpose="recs", since=datetime(2024, 12, 31, tzinfo=UTC)),
     "We did not use your page views, as you turned off recs on 31 December 2024."),
    (_nu("withdrawn", purpose="recs", since=datetime(2024, 1, 1, tzinfo=UTC)),
     "We did not use your page views, as you turned off recs on 1 January 2024."),
    (_nu("withdrawn", purpose=None),
     "We did not use your page views, as you turned off  on ."),
    (_nu("not_allowed_for_purpose", purpose="ads", allowed_for=["recs"]),
     "We did not use your page views, as we keep it for recs only."),
    (_nu("not_allowed_for_purpose", purpose="ads", allowed_for=["recs", "site_search", "x-y"]),
     "We did not use your page views, as we keep it for recs, site search and x y only."),
    (_nu("not_allowed_for_purpose", purpose="ads_eu"),
     "We did not use your page views, as it is not meant for ads eu."),
    (_nu("not_allowed_for_purpose", purpose="ads", allowed_for=["recs"],
         choice=_choice("withdraw")),
     "We did not use your page views, as you turned off ad targeting eu on 7 March 2025."),
    (_nu("not_allowed_for_purpose", purpose="ads", allowed_for=["recs"],
         choice=_choice("decline")),
     "We did not use your page views, as you turned off ad targeting eu on 7 March 2025."),
    # a grant is no refusal: the rule is what left the data out
    (_nu("not_allowed_for_purpose", purpose="ads", allowed_for=["recs"],
         choice=_choice("grant")),
     "We did not use your page views, as we keep it for recs only."),
    (_nu("outside_retention", retention_days=30),
     "We did not use your page views from more than 30 days ago."),
    (_nu("excluded_by_person"),
     "We did not use some of your page views, as you asked us not to."),
    (_nu("not_personalised"),
     "We did not use your page views: this list is the same for all."),
    (_nu("non_profiling_chosen"),
     "You asked for a list that is not based on you, so we did not use your page views."),
])
def test_not_used_sentences(d: DataNotUsed, sentence: str) -> None:
    assert not_used_sentence(d, T) == sentence
    e = _e([_r("boots", 0.5)], data_not_used=[d])
    assert render_statements(e)["not_used"] == [sentence]
    # only the person's own left-out data (its events were counted) goes into the text
    assert e.text == "We picked Tent for you because you bought Boots."
    mine = _e([_r("boots", 0.5)], data_not_used=[d.model_copy(update={"events": 0})])
    assert mine.text == "We picked Tent for you because you bought Boots. " + sentence


def test_date_text() -> None:
    assert date_text(None, T) == ""
    assert [date_text(datetime(2020, m, 9, tzinfo=UTC), T) for m in (1, 6, 12)] == [
        "9 January 2020", "9 June 2020", "9 December 2020"]


def test_the_text_says_the_persons_own_choice_first_then_rules_then_age() -> None:
    retention = _nu("outside_retention", retention_days=30, events=4)
    not_personalised = _nu("not_personalised", events=1)
    no_consent = _nu("no_consent", purpose="recs", events=2)
    rule = _nu("not_allowed_for_purpose", purpose="ads", allowed_for=["recs"], events=2)
    withdrawn = _nu("withdrawn", purpose="recs", since=WHEN, events=3)
    excluded = _nu("excluded_by_person", events=1)
    declined = _nu("declined", purpose="recs", since=WHEN, events=1)
    refused = _nu("not_allowed_for_purpose", purpose="ads", choice=_choice("withdraw"),
                  events=1)

    def said(*ds: DataNotUsed) -> str:
        return _e([_r("boots", 0.5)], data_not_used=list(ds)).text.split(". ", 1)[1]

    assert said(retention, not_personalised) == not_used_sentence(retention, T)
    assert said(not_personalised, no_consent, retention) == not_used_sentence(no_consent, T)
    assert said(retention, no_consent, rule) == not_used_sentence(rule, T)
    assert said(rule, withdrawn) == not_used_sentence(withdrawn, T)
    # among the person's own choices, a refused purpose after the earlier ones
    assert said(refused, declined) == not_used_sentence(declined, T)
    assert said(rule, refused) == not_used_sentence(refused, T)
    # their own "don't use" comes with the rules' rank only when nothing dates it
    assert said(excluded, rule) == not_used_sentence(excluded, T)
    assert said(excluded, withdrawn) == not_used_sentence(withdrawn, T)
    assert said(withdrawn, excluded) == not_used_sentence(withdrawn, T)
    assert _not_used_rank(withdrawn) == (0, 0)
    assert _not_used_rank(excluded) == (1, 0)
    assert _not_used_rank(retention) == (1, 3)
    assert _not_used_rank(refused) == (0, 1)
    assert [_not_used_rank(_nu(k)) for k in (
        "no_consent", "not_personalised", "non_profiling_chosen", "declined")] == [
        (1, 2), (1, 4), (1, 0), (1, 0)]


def test_privacy_statement_is_one_fixed_sentence_outside_the_text() -> None:
    from persona.explain import PrivacyStatement

    e = _e([_r("boots", 0.5)], privacy=PrivacyStatement(epsilon=1.0))
    assert render_statements(e)["privacy"] == T["privacy"]
    assert render_statements(_e([_r("boots", 0.5)]))["privacy"] is None
    assert e.text == "We picked Tent for you because you bought Boots."


# ------------------------------------------------------------------ reading ease


@pytest.mark.parametrize(("word", "n"), [
    ("cat", 1), ("the", 1), ("cake", 1), ("free", 1), ("table", 2), ("Mariah", 3),
    ("station", 2), ("video", 3), ("dual", 2), ("Beyoncé", 2), ("Beyoncé.", 2),
    ("1999", 1), ("--", 1), ("rhythm", 1), ("queue", 1), ("sky", 1),
    ("precious", 2), ("toe", 1), ("Café", 2),
])
def test_syllables(word: str, n: int) -> None:
    assert _syllables(word) == n


def test_words_are_tokens_with_a_letter_or_digit() -> None:
    assert _stats("Hello, world! -- 42 _ é") == (4, 5)
    assert _stats("") == (0, 0)


def test_reading_ease_is_flesch_on_the_estimates() -> None:
    assert reading_ease("The cat sat.") == pytest.approx(206.835 - 1.015 * 3 - 84.6 * 1)
    text = "We like it. The table is good."  # 7 words, 8 syllables, 2 sentences
    assert reading_ease(text) == pytest.approx(206.835 - 1.015 * 7 / 2 - 84.6 * 8 / 7)
    assert reading_ease(text, 1) == pytest.approx(206.835 - 1.015 * 7 - 84.6 * 8 / 7)
    assert reading_ease("") == 100.0
    assert reading_ease("--") == 100.0


@pytest.mark.parametrize("template", [
    "We picked {item} for you.", "{item}", "{a} and {b}.", "x{a}", "{a}x", "{a}{b}",
    "({a})", "{a}, {b} and {c}.", "It is {a}'s.", "Word {a} word",
])
@pytest.mark.parametrize("values", [
    {"item": "Tent", "a": "Hiking Boots", "b": "t.A.T.u.", "c": "1999"},
    {"item": "", "a": "-- !", "b": "Zoë", "c": "a b c d"},
])
def test_filled_templates_count_what_they_say(template: str, values: dict) -> None:
    """A template's counted pieces plus its values' counts are the filled text's counts
    (templates whose fields touch letters or each other are not counted apart)."""
    text = template.format(**values)
    base = _template_counts(template)
    if base is None:
        assert template in ("x{a}", "{a}x", "{a}{b}", "It is {a}'s.")
        return
    words, syllables, fields = base
    for field in fields:
        w, s = _stats(values[field])
        words, syllables = words + w, syllables + s
    assert (words, syllables) == _stats(text)


def test_template_pieces_split_only_where_words_do() -> None:
    assert _pieces("We picked {item} for you.") == (("We picked ", "item"), (" for you.", None))
    assert _pieces("{a}") == (("", "a"),)
    assert _pieces("({a}).") == (("(", "a"), (").", None))
    for glued in ("x{a}", "{a}x", "{a}{b}", "{a} {b}{c}", "{0} and", "{a.b} and", "{a}9"):
        assert _pieces(glued) is None, glued


def test_long_titles_name_fewer_reasons_and_say_less() -> None:
    """The richest form that reads at the target ease: three names, two, one, the short
    two-sentence forms, then the bare one; the extra sentences go first."""
    long = "SET OF 3 WOODEN HEART DECORATIONS WITH RIBBON HANGERS AND GLITTER"
    reasons = [_r("a", 0.5, label="Boots"), _r("b", 0.4, label="Rope"),
               _r("c", 0.3, label=long)]
    e = _e(reasons)
    text, named = render(e)
    # three names read too hard with this title, two do not
    three = "We picked Tent for you because you bought Boots, Rope and " + nice_label(long) + "."
    assert reading_ease(three, 1) < TARGET_EASE
    assert text == "We picked Tent for you because you bought Boots and Rope."
    assert reading_ease(text, 1) >= TARGET_EASE
    assert [r.item for r in named] == ["a", "b"]
    # statements always say the richest form
    assert render_statements(e)["why"] == three
    assert render_statements(e)["named"] == ["a", "b"]


def test_a_hard_title_says_the_bare_form() -> None:
    hard = "EXTRAORDINARILY INTERNATIONALISATION CONSIDERATIONS DECORATIVE ILLUMINATION"
    e = _e([_r("a", 0.5, label=hard)], label=hard)
    assert render(e) == (f"We think you will like {nice_label(hard)}. "
                         "It fits with what you bought.", [])
    # no reason of the person's: the short "none" form, never the bare one
    e = _e([_r("a", -0.5)], label=hard)
    assert render(e) == (f"We think you will like {nice_label(hard)}. "
                         "We did not pick it due to what you did.", [])
    p = _e(kind="non_personalised", label=hard)
    assert render(p) == (f"We think you will like {nice_label(hard)}. "
                         "A lot of shoppers like it.", [])


def test_extra_sentences_are_dropped_before_names() -> None:
    cf = _cf(removed=["a"], removed_labels=["Boots"])
    d = _nu("outside_retention", retention_days=30, events=3)
    e = _e([_r("a", 0.5, label="Boots"), _r("b", 0.4, label="Rope")], counterfactual=cf,
           data_not_used=[d])
    why = "We picked Tent for you because you bought Boots and Rope."
    cf_text = "Had you not bought Boots, it would not be in your top 10."
    nu_text = "We did not use your page views from more than 30 days ago."
    full = " ".join([why, cf_text, nu_text])
    if reading_ease(full, 3) >= TARGET_EASE:
        assert e.text == full
    else:
        assert e.text in (f"{why} {cf_text}", why) or e.text.startswith("We think")
    # a title long enough to need the short form drops every extra sentence but one
    hard = "EXTRAORDINARILY INTERNATIONALISATION CONSIDERATIONS"
    e = _e([_r("a", 0.5, label=hard)], counterfactual=cf, data_not_used=[d])
    text = e.text
    assert text.count(". ") <= 2
    assert text.startswith(("We picked Tent", "We think you will like Tent."))


def test_only_english_templates_ship_and_every_key_is_filled() -> None:
    assert available_languages() == ["en"]
    assert T["language"] == "en"
    for key in ("one", "two", "three", "like_one", "like_two", "popular", "none"):
        assert "{item}" in T["why"][key]
    assert set(T["why_short"]) < set(T["why"]) | {"bare"}
    assert len(T["months"]) == 12
    from persona.errors import ValidationError

    with pytest.raises(ValidationError, match="available: \\['en'\\]"):
        templates("xx")


def test_a_curated_template_may_name_the_item(monkeypatch) -> None:
    """A language's "curated" template may put the item's label in (English does not)."""
    from persona.schema import _text

    assert _e(kind="curated", model="curation", note="Picks for BOX.").text == (
        "Chosen by our team: Picks for BOX.")
    worded = {**T, "curated": "{item}, chosen by our team: {reason}."}
    monkeypatch.setattr(_text, "templates", lambda language="en": worded)
    e = _e(kind="curated", model="curation", note="Gift guide...", label="Trail Socks")
    assert _text.render_text(e) == "Trail Socks, chosen by our team: Gift guide."


def test_a_long_second_title_leaves_one_name() -> None:
    long = "SET OF 3 WOODEN HEART DECORATIONS WITH RIBBON HANGERS AND GLITTER"
    e = _e([_r("a", 0.5, label="Boots"), _r("b", 0.4, label=long)])
    two = f"We picked Tent for you because you bought Boots and {nice_label(long)}."
    assert reading_ease(two, 1) < TARGET_EASE
    assert render(e)[0] == "We picked Tent for you because you bought Boots."
    assert [r.item for r in render(e)[1]] == ["a"]
