"""A served list's compact JSON: what its explanations share is written once (issue 18)."""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import persona
from persona.errors import PersonaError, ValidationError
from persona.explain import Recommendations
from store_helpers import Clock
from test_explain_core import MODELS, _fitted
from test_personalizer import shop_with_people


def _per_item(recs: list[persona.Recommendation]) -> str:
    return "[" + ",".join(r.model_dump_json() for r in recs) + "]"


def _round_trip(recs: Recommendations) -> dict:
    doc = recs.model_dump_json()
    jsonschema.validate(json.loads(doc), Recommendations.json_schema())
    back = Recommendations.model_validate_json(doc)
    assert isinstance(back, Recommendations)
    assert back == recs  # every field of every explanation
    for b, r in zip(back, recs, strict=True):
        if r.explanation is not None:
            assert b.explanation.text == r.explanation.text
            assert b.explanation.model_dump_json() == r.explanation.model_dump_json()
    return json.loads(doc)


@pytest.fixture(scope="module")
def p() -> persona.Personalizer:
    store = shop_with_people(clock=Clock())
    p = persona.Personalizer(store, model=persona.ALS(factors=8, iterations=10,
                                                       random_state=0), record_shown=False)
    return p.fit()


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(Recommendations.json_schema())


def test_a_served_list_writes_the_persons_context_once_and_reads_back_whole(p) -> None:
    recs = p.recommend("p0", n=6)
    assert isinstance(recs, Recommendations) and len(recs) == 6
    doc = _round_trip(recs)
    assert doc["format"] == "persona.recommendations" and doc["version"] == 1
    first = recs[0].explanation
    shared = doc["shared"]
    # the person's context, the model and the kind are written once, not per item
    assert shared["data_used"] == json.loads(first.model_dump_json())["data_used"]
    assert shared["lineage"]["purpose"] == "personalization"
    assert shared["model"] == "ALS" and shared["kind"] == "decomposition"
    features = {json.dumps(x.get("feature")) for r in recs
                for x in json.loads(r.explanation.model_dump_json()).get("reasons", [])}
    # every reason's feature is the same (here: unknown, so not written at all)
    assert features == {"null"} and "reason_feature" not in shared
    text = json.dumps(doc)
    assert text.count('"data_used"') == 1 and text.count('"store_id"') == 1
    for k, (it, r) in enumerate(zip(doc["items"], recs, strict=True)):
        assert it["item"] == r.item and it["score"] == r.score
        assert "rank" not in it  # its place in the list
        assert "explanation" not in it and it["text"] == r.explanation.text
        assert "data_used" not in it and "label" not in it
        assert doc["labels"][r.item] == r.explanation.label
        for reason in it.get("reasons", []):
            assert set(reason) <= {"item", "contribution", "share"}
            assert doc["labels"][reason["item"]].startswith("Product")
        assert r.rank == k + 1
    assert len(recs.model_dump_json()) < len(_per_item(recs)) / 2


def test_every_model_and_both_forms_round_trip() -> None:
    for name, make in MODELS.items():
        model = _fitted(make())
        for detail in ("summary", "full"):
            recs = model.recommend("u0", n=4, detail=detail)
            assert isinstance(recs, Recommendations), name
            doc = _round_trip(recs)
            assert doc["shared"]["model"] == type(model).__name__
            features = [x.get("feature", "\x00") for r in recs for x in
                        json.loads(r.explanation.model_dump_json()).get("reasons", [])]
            if features and len(set(features)) == 1 and features[0] != "\x00":
                assert doc["shared"]["reason_feature"] == features[0]
                assert not any("feature" in x for it in doc["items"]
                               for x in it.get("reasons", []))
        assert isinstance(model.recommend("u0", n=2, explain=False), Recommendations)
        assert all(isinstance(x, Recommendations)
                   for x in model.recommend_batch(["u0", "u1"], n=2))
    # a privacy statement shared by all the items is written once too
    model = _fitted(MODELS["ALS"]())
    model.privacy_spent_ = {"epsilon": 1.0, "delta": 1e-7}
    doc = _round_trip(model.recommend("u0", n=3))
    assert "privacy" in doc["shared"]


def test_curated_and_fallback_items_and_empty_lists_round_trip(p) -> None:
    p.curate(pin={"sku-3": 1}, reason="Autumn sale")
    try:
        recs = p.recommend("p5", n=4)
        assert recs[0].explanation.kind == "curated"
        doc = _round_trip(recs)
        assert "kind" not in doc["shared"]  # items differ in kind: each says its own
        assert doc["items"][0]["kind"] == "curated"
    finally:
        p.curate(reason="end of sale")
    fallback = p.recommend("p39", n=3)  # no consent: the non-profiling list
    assert fallback[0].explanation.kind == "non_personalised"
    _round_trip(fallback)
    assert Recommendations.model_validate_json(Recommendations().model_dump_json()) == []


def test_an_explanation_whose_rank_differs_is_nested_and_kept(p) -> None:
    recs = p.recommend("p1", n=3)
    r = recs[1]
    odd = r.model_copy(update={"explanation": r.explanation.model_copy(update={"rank": None})})
    lst = Recommendations([recs[0], odd, recs[2]])
    doc = _round_trip(lst)
    assert doc["items"][1]["explanation"]["rank"] is None
    assert Recommendations.model_validate_json(lst.model_dump_json())[1].explanation.rank is None
    plain = Recommendations([persona.Recommendation(item="sku-1", score=0.5, rank=1)])
    doc = _round_trip(plain)
    assert doc["items"] == [{"item": "sku-1", "score": 0.5, "explanation": None}]


@pytest.mark.parametrize("bad", [
    "not json", "[]", json.dumps({"format": "other", "version": 1, "items": []}),
    json.dumps({"format": "persona.recommendations", "version": 2, "items": []}),
    json.dumps({"format": "persona.recommendations", "version": True, "items": []}),
    json.dumps({"format": "persona.recommendations", "version": 1, "items": {}}),
    json.dumps({"format": "persona.recommendations", "version": 1, "items": [1]}),
    json.dumps({"format": "persona.recommendations", "version": 1, "items": [{"item": 1}]}),
    json.dumps({"format": "persona.recommendations", "version": 1, "shared": {"x": 1},
                "items": []}),
    json.dumps({"format": "persona.recommendations", "version": 1,
                "items": [{"item": "a", "score": 1.0, "kind": "story", "label": "A"}]}),
    json.dumps({"format": "persona.recommendations", "version": 1,
                "items": [{"item": "a", "score": 1.0, "explanation": "why"}]}),
    json.dumps({"format": "persona.recommendations", "version": 1,
                "items": [{"item": "a", "score": 1.0, "label": "A", "kind": "decomposition",
                           "model": "ALS", "reasons": [{"item": ["x"], "contribution": 1.0}]}]}),
    json.dumps({"format": "persona.recommendations", "version": 1,
                "items": [{"item": "a", "score": 1.0, "kind": "decomposition", "model": "ALS",
                           "reasons": [{"item": {"x": 1}}]}]}),
    json.dumps({"format": "persona.recommendations", "version": 1,
                "items": [{"item": "a", "score": 1.0, "rank": 1,
                           "explanation": {"item": ["a"], "score": 1.0}}]}),
])
def test_a_document_that_is_not_one_is_refused_with_a_persona_error(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        Recommendations.model_validate_json(bad)
    assert isinstance(info.value, PersonaError) and info.value.code
    assert "model_dump_json" in str(info.value)


def test_one_feature_behind_every_reason_is_written_once() -> None:
    store = persona.Store(":memory:", clock=Clock())
    store.define_purpose("personalization", description="Recommend products")
    store.define_feature("purchases", purposes=["personalization"], category="purchases",
                         retention_days=None)
    events = [{"user": f"p{u}", "item": f"sku-{(u % 3) * 3 + k}", "feature": "purchases",
               "value": 1.0, "at": "2026-11-01T10:00:00Z"} for u in range(12) for k in range(3)]
    events += [{"user": f"p{u}", "item": f"sku-{(u % 3) * 3 + 3}", "feature": "purchases",
                "value": 1.0, "at": "2026-11-01T10:00:00Z"} for u in range(0, 12, 2)]
    store.ingest(events)
    for u in range(12):
        store.grant(f"p{u}", "personalization", source="test")
    p = persona.Personalizer(store, model=persona.ALS(factors=4, iterations=10,
                                                       random_state=0), record_shown=False)
    recs = p.fit().recommend("p1", n=3, detail="full")
    assert {x.feature for r in recs for x in r.explanation.reasons} == {"purchases"}
    doc = _round_trip(recs)
    assert doc["shared"]["reason_feature"] == "purchases"
    assert not any("feature" in x for it in doc["items"] for x in it.get("reasons", []))


def test_published_schema_file_is_current() -> None:
    """docs/recommendations.schema.json is Recommendations.json_schema(); regenerate it:
    python -c "import json, persona; print(json.dumps(persona.Recommendations.json_schema(),
    indent=2, sort_keys=True))" > docs/recommendations.schema.json"""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "recommendations.schema.json"
    assert json.loads(path.read_text()) == Recommendations.json_schema()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["format", "version", "shared", "labels", "items", "item",
                                       "score", "rank", "explanation", "reasons", "kind",
                                       "label", "text", "model", "x"]), children, max_size=6),
    max_leaves=20,
)


@given(doc=_JSON, base=st.booleans())
@settings(max_examples=100, deadline=None)
def test_any_json_is_read_or_refused_with_a_persona_error(doc, base: bool) -> None:
    if base and isinstance(doc, dict):  # most documents should get past the header
        doc = {**doc, "format": "persona.recommendations", "version": 1}
    try:
        out = Recommendations.model_validate_json(json.dumps(doc))
    except PersonaError as exc:
        outcome = exc.code  # refused with a code, and nothing else escapes
    else:
        outcome = type(out).__name__
    assert outcome in {"validation_error", "Recommendations"}


@pytest.mark.parametrize("item", [
    {"item": "a", "score": True},
    {"item": "a", "score": "1.5"},
    {"item": 7, "score": 1.0},
    {"item": "a", "score": 1.0, "rank": True},
    {"item": "a", "score": 1.0, "rank": 1.0},
    {"item": "a", "score": 1.0, "label": "A", "kind": "decomposition", "model": "ALS",
     "reasons": [{"item": "b", "label": "B", "contribution": True}]},
    {"item": "a", "score": 1.0, "label": "A", "kind": "decomposition", "model": "ALS",
     "seen": "yes"},
])
def test_strict_types_no_bool_or_text_taken_as_a_number(item: dict) -> None:
    doc = {"format": "persona.recommendations", "version": 1, "items": [item]}
    with pytest.raises(ValidationError):
        Recommendations.model_validate(doc)


def test_shares_are_written_once_per_item_as_the_totals_they_are_of(p) -> None:
    """A reason's share is its contribution over the evidence on its side: the item writes
    that total once and its reasons no share, and reading gives back every share exactly."""
    for detail in ("summary", "full"):
        recs = p.recommend("p0", n=6, detail=detail)
        doc = _round_trip(recs)
        for it, r in zip(doc["items"], recs, strict=True):
            reasons = r.explanation.reasons
            assert all("share" not in x for x in it.get("reasons", []))
            positive = [x for x in reasons if x.contribution > 0]
            negative = [x for x in reasons if x.contribution < 0]
            assert ("support" in it) == bool(positive) and ("against" in it) == bool(negative)
            for x in positive:
                assert x.contribution / it["support"] == x.share
            for x in negative:
                assert x.contribution / it["against"] == x.share


def test_shares_of_no_single_total_are_written_as_they_are(p) -> None:
    """Shares that are not all of one total (an explanation built by hand) stay per reason."""
    r = p.recommend("p0", n=1, detail="full")[0]
    e = r.explanation
    assert len([x for x in e.reasons if x.contribution > 0]) > 1
    first = e.reasons[0]
    odd = first.model_copy(update={"contribution": first.contribution * 2,
                                   "share": first.share / 3})
    e2 = e.model_copy(update={"reasons": [odd, *e.reasons[1:]]})
    recs = Recommendations([r.model_copy(update={"explanation": e2})])
    doc = json.loads(recs.model_dump_json())
    assert doc["items"][0]["reasons"][0]["share"] == odd.share
    assert "support" not in doc["items"][0]
    assert Recommendations.model_validate_json(recs.model_dump_json()) == recs


@pytest.mark.parametrize("bad", [True, "0.5", 0, None, [1.0]])
def test_a_total_that_is_not_a_number_is_refused(p, bad) -> None:
    doc = json.loads(p.recommend("p0", n=2).model_dump_json())
    doc["items"][0]["support"] = bad
    with pytest.raises(ValidationError, match="support must be a number"):
        Recommendations.model_validate(doc)


@pytest.mark.parametrize("contribution", [10**400, -(10**400)])
def test_a_contribution_too_large_for_a_share_is_refused_with_a_persona_error(
        p, contribution) -> None:
    doc = json.loads(p.recommend("p0", n=2).model_dump_json())
    it = doc["items"][0]
    it["reasons"][0]["contribution"] = contribution
    it["support"], it["against"] = 1.5, -1.5
    with pytest.raises(ValidationError):
        Recommendations.model_validate(doc)
