"""The forms the text is chosen from, and their counts, pinned one by one (what the counted
renderer relies on: a form's words and syllables must be those of its filled text)."""

from __future__ import annotations

import itertools

import pytest

from persona.explain import Explanation, Reason
from persona.explain._text import (
    TARGET_EASE,
    _ease,
    _end,
    _forms,
    _stats,
    _Why,
    choose,
    templates,
)

T = templates("en")
TITLES = ["Lamp", "Lamp", "White Hanging Heart T-Light Holder", "Tent", "東京タワー",
          "Set/2 Red Retrospot Tea Towels", "t.A.T.u."]


LABEL_SETS = [*[tuple(c) for c in itertools.combinations(TITLES, 3)][:12],
              ("Lamp", "Lamp", "Lamp"), ("Lamp", "Tent", "Lamp")]


def _e(kind: str = "decomposition", labels=("Tent", "Boots", "Socks"), *, seen: bool = False,
       rank: int | None = 1, item_label: str = "Camp Stove", values=(0.5, 0.3, 0.2)) -> Explanation:
    field = "contribution" if kind == "decomposition" else "similarity"
    reasons = [Reason(item=f"r{k}", label=label, feature="purchases", **{field: v})
               for k, (label, v) in enumerate(zip(labels, values, strict=False))]
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


@pytest.mark.parametrize("item_label", ["Tent", "White Hanging Heart T-Light Holder Deluxe"])
@pytest.mark.parametrize("labels", [("Tent", "Boots", "Socks"),
                                    ("Wooden Picture Frame White Finish",
                                     "Set/2 Red Retrospot Tea Towels",
                                     "3 Drawer Antique White Wood Cabinet")])
def test_the_text_is_the_first_form_that_reads_easily(item_label, labels) -> None:
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
