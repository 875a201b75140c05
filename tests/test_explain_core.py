"""Explanations on synthetic data: faithful sums, kinds, counterfactuals, renderers."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import persona
from explain_helpers import JARGON, reading_ease, sentences, without_labels
from persona.data import Interactions
from persona.errors import UnknownItemError, UnknownUserError, ValidationError
from persona.explain import (
    Counterfactual,
    DataNotUsed,
    Explanation,
    PrivacyStatement,
    Reason,
    json_schema,
    privacy_statement,
)
from persona.models import ALS, BPR, ItemKNN, Popularity
from persona.models._attribution import sandbox as _sandbox
from persona.schema import construct
from persona.testing import block_interactions, interaction_matrices

LABELS = {f"i{j}": name for j, name in enumerate(
    ["Hiking Boots", "Rain Jacket", "Trail Socks", "Tent", "Sleeping Bag", "Camp Stove",
     "Head Torch", "Water Bottle", "Sun Hat", "Road Bike", "Bike Lock", "Bike Pump",
     "Helmet", "Bike Light", "Gloves", "Saddle Bag"])}


def _fitted(model):
    return model.fit(block_interactions()).set_item_labels(LABELS)


MODELS = {
    "ALS": lambda: ALS(factors=8, iterations=10, random_state=0),
    "ItemKNN": lambda: ItemKNN(neighbours=10),
    "BPR": lambda: BPR(factors=8, iterations=60, learning_rate=0.05, random_state=0,
                       num_threads=1),
    "Popularity": lambda: Popularity(),
}


# ------------------------------------------------------------------ faithful
@given(X=interaction_matrices())
@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=40)
@pytest.mark.parametrize("name", ["ALS", "ItemKNN"])
def test_reasons_sum_to_served_score_property(name: str, X: Interactions) -> None:
    model = MODELS[name]().fit(X)
    users = list(X.users)
    summaries = model.recommend_batch(users, n=5)
    for user, recs, short in zip(users, model.recommend_batch(users, n=5, detail="full"),
                                 summaries, strict=True):
        for r, s in zip(recs, short, strict=True):
            e = r.explanation
            assert e.score == r.score and e.rank == r.rank and e.item == r.item
            total = sum(x.contribution for x in e.reasons)
            scale = max(abs(r.score), sum(abs(x.contribution) for x in e.reasons))
            assert abs(total - r.score) <= 1e-9 * scale, (user, r.item)
            # shares: of the evidence for (positive reasons), of the evidence against
            for side in (1, -1):
                shares = [x.share for x in e.reasons if side * x.contribution > 0]
                assert all(0 < x <= 1 for x in shares)
                if shares:
                    assert sum(shares) == pytest.approx(1.0, rel=1e-9)
            assert e.evidence.support + e.evidence.against == pytest.approx(
                r.score, rel=1e-9, abs=1e-9 * scale)
            # the summary: the top reasons of the full list, the rest totalled exactly
            x = s.explanation
            assert x.detail == "summary" and e.detail == "full" and e.rest is None
            assert x.text == e.text and x.evidence is None and e.evidence is not None
            assert x.reasons == [y for y in e.reasons if y in x.reasons]
            assert x.rest.count == len(e.reasons) - len(x.reasons)
            listed = sum(y.contribution for y in x.reasons) + x.rest.contribution
            assert abs(listed - r.score) <= 1e-9 * scale
            assert x.total == pytest.approx(e.total, rel=1e-9, abs=1e-9 * scale)
            items, parts = model.contributions(str(user), r.item)
            got = {x.item: x.contribution for x in e.reasons}
            want = {str(i): float(p) for i, p in zip(items, parts, strict=True) if p != 0}
            assert got.keys() == want.keys()
            for k in got:
                assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", ["ALS", "ItemKNN"])
def test_folded_in_people_are_explained_faithfully(name: str) -> None:
    model = _fitted(MODELS[name]())
    model.fold_in("new", {"i0": 2.0, "i3": 1.0, "i9": 1.0})
    for r, s in zip(model.recommend("new", n=5, detail="full"), model.recommend("new", n=5),
                    strict=True):
        assert s.explanation.total == pytest.approx(r.score, rel=1e-9)
        total = sum(x.contribution for x in r.explanation.reasons)
        assert total == pytest.approx(r.score, rel=1e-9)
        assert {x.item for x in r.explanation.reasons} <= {"i0", "i3", "i9"}


def test_kinds_per_model() -> None:
    kinds = {name: _fitted(make()).recommend("u0", n=3)[0].explanation.kind
             for name, make in MODELS.items()}
    assert kinds == {"ALS": "decomposition", "ItemKNN": "decomposition",
                     "BPR": "justification", "Popularity": "non_personalised"}


def test_justification_says_so_and_cites_similar_history() -> None:
    model = _fitted(MODELS["BPR"]())
    e = model.recommend("u0", n=1)[0].explanation
    assert e.kind == "justification"
    assert all(x.contribution is None and x.share is None for x in e.reasons)
    sims = [x.similarity for x in e.reasons]
    assert sims == sorted(sims, reverse=True) and all(s > 0 for s in sims)
    seen = set(block_interactions().history("u0"))
    assert {x.item for x in e.reasons} <= seen
    assert "like" in e.text


def test_popularity_cites_no_personal_data() -> None:
    model = _fitted(MODELS["Popularity"]())
    r = model.recommend("someone-new", n=1)[0]
    e = r.explanation
    assert e.kind == "non_personalised" and e.reasons == []
    assert "shoppers like it" in e.text
    assert model.explain("someone-new", "i5").reasons == []


def test_explain_any_item_and_rank() -> None:
    model = _fitted(MODELS["ALS"]())
    recs = model.recommend("u0", n=10)
    for r in recs:
        e = model.explain("u0", r.item)
        assert e.rank == r.rank
        assert e.score == pytest.approx(r.score, rel=1e-12)
    last = model.explain("u0", "i23")  # another group's item: low rank but explained
    assert last.rank is not None and last.rank > 10
    assert sum(x.contribution for x in last.reasons) == pytest.approx(last.score, rel=1e-9,
                                                                       abs=1e-12)
    seen = next(iter(block_interactions().history("u0")))
    assert model.explain("u0", seen).rank is None
    with pytest.raises(UnknownItemError):
        model.explain("u0", "nope")
    with pytest.raises(UnknownUserError):
        model.explain("nobody", "i1")
    with pytest.raises(ValidationError):
        model.explain("u0", "i1", n=0)


def test_explain_false_and_arrays_are_bare() -> None:
    model = _fitted(MODELS["ALS"]())
    bare = model.recommend("u0", n=3, explain=False)
    assert all(r.explanation is None for r in bare)
    assert [(r.item, r.score) for r in bare] == [
        (r.item, r.score) for r in model.recommend("u0", n=3)]
    assert all(r.explanation is None for rs in model.recommend_batch(["u0"], explain=False)
               for r in rs)


def test_fast_construction_equals_validated() -> None:
    model = _fitted(MODELS["ALS"]())
    e = model.recommend("u0", n=1)[0].explanation
    again = Explanation.model_validate(e.model_dump())
    assert again == e
    assert Reason(**e.reasons[0].model_dump()) == e.reasons[0]
    r = e.reasons[0]
    fields = {k: getattr(r, k) for k in Reason.model_fields}
    assert construct(Reason, fields, frozenset(Reason.model_fields)) == r


@pytest.mark.parametrize("name", ["ALS", "ItemKNN"])
def test_served_reasons_are_the_list_they_stand_for(name: str) -> None:
    """Served explanations build their Reason objects on first read; whatever is read
    first (one item, a slice, the text, the JSON), the result is the eager list's."""
    model = _fitted(MODELS[name]())
    reads = [
        lambda e: e.reasons[0],
        lambda e: e.reasons[1:3],
        lambda e: e.text,
        lambda e: e.model_dump_json(),
        lambda e: len(e.reasons),
        lambda e: list(reversed(e.reasons)),
    ]
    for first in reads:
        fresh = model.recommend("u0", n=4, detail="full")
        for rec, again in zip(model.recommend("u0", n=4, detail="full"), fresh, strict=True):
            e = rec.explanation
            first(e)
            eager = list(again.explanation.reasons)  # everything built at once
            assert not isinstance(e.reasons, list)
            one = model.explain("u0", rec.item).reasons  # the single-item path
            assert [r.item for r in one] == [r.item for r in eager]
            assert np.allclose([r.contribution for r in one], [r.contribution for r in eager],
                               rtol=1e-12, atol=0)
            assert e.reasons == eager and eager == e.reasons
            assert list(e.reasons) == eager and len(e.reasons) == len(eager)
            assert e.reasons[:2] == eager[:2] and e.reasons[-1] == eager[-1]
            assert bool(e.reasons) == bool(eager)
            dumped = json.loads(e.model_dump_json())
            assert dumped["reasons"] == [json.loads(r.model_dump_json()) for r in eager]
            assert e.model_dump()["reasons"] == [r.model_dump() for r in eager]
            assert Explanation.model_validate_json(e.model_dump_json()) == e
            assert copy.deepcopy(e) == e and e.model_copy() == e
    with pytest.raises(IndexError):
        model.recommend("u0", n=1)[0].explanation.reasons[10_000]


def test_served_reasons_keep_the_state_that_served_them() -> None:
    """A later change to the model (the person forgotten) does not rewrite the reasons of
    an explanation already served, even when they are first read afterwards."""
    model = _fitted(MODELS["ALS"]())
    e = model.recommend("u0", n=1, detail="full")[0].explanation
    s = model.recommend("u0", n=1)[0].explanation
    before = list(model.recommend("u0", n=1, detail="full")[0].explanation.reasons)
    model.forget("u0")
    assert s.rest.contribution + sum(r.contribution for r in s.reasons) == pytest.approx(
        e.score, rel=1e-9)
    assert list(e.reasons) == before
    assert abs(sum(r.contribution for r in e.reasons) - e.score) <= 1e-9 * abs(e.score)


def test_labels_fall_back_to_ids() -> None:
    model = MODELS["ItemKNN"]().fit(block_interactions())
    e = model.recommend("u0", n=1)[0].explanation
    assert e.label == e.item
    assert all(x.label == x.item for x in e.reasons)


# ------------------------------------------------------------------ counterfactual
@pytest.mark.parametrize("name", ["ALS", "ItemKNN", "BPR"])
def test_counterfactual_is_verified_by_fold_in(name: str) -> None:
    model = _fitted(MODELS[name]())
    before = copy.deepcopy(model)
    found = 0
    for user in ("u0", "u21", "u45"):
        for r in model.recommend(user, n=3):
            e = model.explain(user, r.item, counterfactual=True, n=3)
            cf = e.counterfactual
            assert cf is not None and cf.n == 3 and cf.rank_before == r.rank
            if not cf.verified:
                assert cf.removed == [] and "did not find" in e.text
                continue
            found += 1
            assert "Had you not chosen" in e.text
            # check independently: a copy of the model, the person folded in again with
            # the reduced history, ranks the item outside the top n
            twin = copy.deepcopy(before)
            history = block_interactions().history(user)
            twin.fold_in(user, {k: v for k, v in history.items() if k not in cf.removed})
            top = [x.item for x in twin.recommend(user, n=3, exclude=cf.removed,
                                                  explain=False)]
            assert r.item not in top
            # and greedy: the removed items are the largest reasons, in order
            order = [x.item for x in e.reasons
                     if (x.contribution if x.contribution is not None else x.similarity) > 0]
            assert cf.removed == order[:len(cf.removed)]
    assert found > 0
    # the served model is untouched
    users = list(before.users_)
    assert model.recommend_batch(users, n=5) == before.recommend_batch(users, n=5)
    assert list(model.users_) == users


def test_counterfactual_for_item_outside_top_n() -> None:
    model = _fitted(MODELS["ALS"]())
    e = model.explain("u0", "i23", counterfactual=True, n=3)
    assert e.counterfactual == Counterfactual(removed=[], removed_labels=[], verified=False,
                                              n=3, rank_before=None, rank_after=None)
    assert "not in your top 3" in e.text


def test_sandbox_does_not_share_mutable_state() -> None:
    model = _fitted(MODELS["ALS"]())
    twin = _sandbox(model)
    twin.fold_in("tmp", ["i0"])
    assert not model.has_user("tmp") and "tmp" not in set(model.users_)
    assert model.history_.shape[0] == block_interactions().n_users


# ------------------------------------------------------------------ text
def _explanations(tmp: Path) -> list[Explanation]:
    out = []
    for make in MODELS.values():
        model = _fitted(make())
        for recs in model.recommend_batch([f"u{k}" for k in range(0, 60, 5)], n=4):
            out.extend(r.explanation for r in recs)
        out.append(model.explain("u3", "i5", counterfactual=True, n=4))
    return out


def test_text_is_plain_short_and_readable(tmp_path: Path) -> None:
    texts = [e.text for e in _explanations(tmp_path)]
    assert len(texts) > 100
    for text in texts:
        assert sentences(text) <= 3, text
        low = without_labels(text, list(LABELS.values())).lower()
        assert not [w for w in JARGON if w in low], text
        assert reading_ease(text, tmp_path) >= 60, text


def test_text_names_only_the_largest_reasons() -> None:
    model = _fitted(MODELS["ALS"]())
    e = model.recommend("u0", n=1, detail="full")[0].explanation
    named = [x.label for x in e.reasons if x.label in e.text]
    assert 1 <= len(named) <= 3
    assert named == [x.label for x in e.reasons[:len(named)]]
    assert len(e.reasons) == len(block_interactions().history("u0"))


def test_privacy_statement_is_structured_only() -> None:
    model = _fitted(MODELS["ALS"]())
    model.privacy_spent_ = {"epsilon": 2.0, "delta": 1e-6, "mechanism": "gaussian",
                            "unit": "one person", "rho": 0.1}
    e = model.recommend("u0", n=1)[0].explanation
    assert e.privacy == PrivacyStatement(epsilon=2.0, delta=1e-6, mechanism="gaussian",
                                         details={"rho": 0.1})
    assert "epsilon" not in e.text.lower() and "2.0" not in e.text
    assert "blurred with random noise" in e.statements["privacy"]
    assert json.loads(e.model_dump_json())["privacy"]["epsilon"] == 2.0

    class Spent:
        def __init__(self) -> None:
            self.statement = {"epsilon": 1.0, "delta": 0.0}

    assert privacy_statement(Spent()).epsilon == 1.0
    from persona.schema import PrivacySpent

    spent = PrivacySpent(mechanism="dp-item-counts", epsilon=1.0, delta=1e-6, rho=0.02,
                         bounds={"max_events_per_person": 50})
    st = privacy_statement(spent)
    assert (st.epsilon, st.delta, st.unit, st.mechanism) == (1.0, 1e-6, "one person",
                                                           "dp-item-counts")
    assert st.description == spent.describe() and st.details["rho"] == 0.02
    model.privacy_spent_ = spent
    e = model.recommend("u0", n=1)[0].explanation
    assert e.privacy == st and "ε" not in e.text and "noise" not in e.text
    assert "no single person" in e._repr_html_()
    assert _fitted(MODELS["ALS"]()).recommend("u0", n=1)[0].explanation.privacy is None


def test_templates_are_one_file_per_language() -> None:
    from persona.explain import available_languages, templates

    assert available_languages() == ["en"]
    with pytest.raises(ValidationError, match="templates"):
        templates("xx")
    model = _fitted(MODELS["ALS"]())
    with pytest.raises(ValidationError):
        model.explain("u0", "i1", language="xx").text  # noqa: B018


# ------------------------------------------------------------------ renderers
def test_json_schema_validates_dumped_json() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    model = _fitted(MODELS["ALS"]())
    model.privacy_spent_ = {"epsilon": 1.0, "delta": 1e-7}
    docs = [r.explanation for r in model.recommend("u0", n=3)]
    docs.append(model.explain("u0", "i2", counterfactual=True, n=3))
    docs.append(_fitted(MODELS["Popularity"]()).recommend("x", n=1)[0].explanation)
    docs.append(_fitted(MODELS["BPR"]()).recommend("u0", n=1)[0].explanation)
    for e in docs:
        doc = json.loads(e.model_dump_json())
        jsonschema.validate(doc, schema)
        assert doc["text"] == e.text
        assert Explanation.model_validate_json(e.model_dump_json()) == e
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**doc, "kind": "story"}, schema)


def test_published_schema_file_is_current() -> None:
    """docs/explanation.schema.json is json_schema(); regenerate it when fields change:
    python -c "import json, persona.explain as e; print(json.dumps(e.json_schema(),
    indent=2, sort_keys=True))" > docs/explanation.schema.json"""
    path = Path(__file__).resolve().parents[1] / "docs" / "explanation.schema.json"
    assert json.loads(path.read_text()) == json_schema()


def test_recommendation_with_explanation_dumps_to_json() -> None:
    r = _fitted(MODELS["ALS"]()).recommend("u0", n=1)[0]
    doc = json.loads(r.model_dump_json())
    assert doc["explanation"]["score"] == r.score
    assert doc["explanation"]["reasons"][0]["item"] == r.explanation.reasons[0].item


def test_html_escapes_everything() -> None:
    evil = '<script>alert("x")</script>'
    model = MODELS["ItemKNN"]().fit(block_interactions())
    model.set_item_labels({f"i{j}": f"{evil} {j}" for j in range(24)})
    e = model.recommend("u0", n=1, detail="full")[0].explanation
    e = e.model_copy(update={"data_not_used": [DataNotUsed(
        feature="loc<b>", category=evil, reason="declined", purpose="ads&co")]})
    html = e._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>" not in html
    assert html.startswith('<div class="persona-explanation">')
    assert "<table>" in html and html.count("<tr>") == len(e.reasons) + 1


def test_public_names() -> None:
    assert persona.Explanation is Explanation
    assert persona.Reason is Reason
    assert persona.explain.json_schema is json_schema
    # persona.reports.records_of_processing is the GDPR Art. 30 report: it lists each purpose
    # with the features and categories it reads, and each category with its retention
    store = persona.Store(":memory:")
    store.define_purpose("personalization", description="Suggest products")
    store.define_feature("purchases", purposes=["personalization"], category="purchase history",
                         retention_days=30)
    report = persona.reports.records_of_processing(store)
    assert isinstance(report, persona.reports.RecordsOfProcessingReport)
    assert report.title == "Records of processing activities"
    assert report.store_id == store.store_id and report.audit_intact
    assert [(p.name, p.description, p.features, p.categories, p.recipients)
            for p in report.purposes] == [("personalization", "Suggest products", ["purchases"],
                                           ["purchase history"], "no one outside the controller")]
    assert [(c.feature, c.category, c.purposes, c.retention) for c in report.categories] == [
        ("purchases", "purchase history", ["personalization"], "30 days")]


def test_model_file_round_trip_keeps_explanations(tmp_path: Path) -> None:
    model = _fitted(MODELS["ALS"]())
    same = ALS.load(model.save(tmp_path / "m")).set_item_labels(LABELS)
    assert same.recommend("u0", n=3) == model.recommend("u0", n=3)


def test_empty_history_person() -> None:
    model = _fitted(MODELS["ALS"]())
    model.fold_in("empty", [])
    e = model.recommend("empty", n=1)[0].explanation
    assert e.reasons == [] and e.score == 0.0
    assert "not because of what you did" in e.text


def test_text_for_csr_model_without_lineage() -> None:
    X = Interactions.from_csr(sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]])),
                              ["u1", "u2", "u3"], ["a", "b", "c"])
    e = ItemKNN(neighbours=3).fit(X).recommend("u1", n=1)[0].explanation
    assert e.lineage is None and e.data_used == [] and e.data_not_used == []


@given(st.lists(st.sampled_from(list(LABELS.values())), min_size=1, max_size=3))
@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_text_from_any_reasons(tmp_path: Path, labels: list[str]) -> None:
    reasons = [Reason(item=f"x{k}", label=lab, contribution=1.0 / (k + 1), share=0.3,
                      feature="purchases") for k, lab in enumerate(labels)]
    e = Explanation(item="t", label="Trail Socks", score=1.0, kind="decomposition",
                    model="ALS", reasons=reasons)
    assert e.text.startswith(("We picked Trail Socks", "We think you will like Trail Socks"))
    assert labels[0] in e.text
    assert reading_ease(e.text, tmp_path) >= 60
