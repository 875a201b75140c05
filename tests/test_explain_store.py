"""Consent-aware explanations and reviewer reports on a real Store."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

import persona
from explain_helpers import reading_ease
from persona.data import Interactions
from persona.models import ALS, ItemKNN, Popularity
from store_helpers import Clock, event, shop, two_groups


@pytest.fixture
def setup(tmp_path: Path):
    clock = Clock()
    store = shop(str(tmp_path / "shop.db"), clock=clock)  # a file: tests may read it directly
    store.label_items({"sku-1": "Hiking Boots", "sku-2": "Rain Jacket", "sku-3": "Trail Socks",
                       "sku-4": "Tent", "sku-5": "Road Bike", "sku-6": "Bike Lock"})
    events = two_groups(store, source="signup form v3")
    events.append(event("p0", "sku-2", "views", at="2026-11-20T10:00:00Z"))
    events.append(event("p0", "sku-9", "location", at="2026-11-20T10:00:00Z"))
    store.ingest(events)
    store.grant("p0", "ads", source="banner")
    clock.advance(days=1)
    store.withdraw("p0", "ads", source="privacy settings")  # turned off ads on 27 November
    clock.advance(days=1)
    X = Interactions.from_view(store.scope("personalization"))
    return store, X


def test_not_used_statements_come_from_the_persons_lineage(setup, tmp_path: Path) -> None:
    store, X = setup
    model = ItemKNN(neighbours=5).fit(X)
    e = model.explain("p0", "sku-4", store=store)
    not_used = {d.feature: d for d in e.data_not_used}
    loc = not_used["location"]
    assert loc.reason == "not_allowed_for_purpose"
    assert loc.choice is not None and loc.choice.action == "withdraw"
    assert loc.choice.at.date().isoformat() == "2026-11-27"
    assert "turned off ads on 27 November 2026" in e.statements["not_used"][0]
    assert "approximate location" in e.text and "27 November 2026" in e.text
    used = {d.feature: d for d in e.data_used}
    assert used["purchases"].consent.source == "signup form v3"
    assert used["purchases"].consent.notice_version == "2026-10"
    assert used["purchases"].events >= 1
    # reasons carry the feature and time of the person's own events, labels from the store
    assert {r.feature for r in e.reasons} <= {"purchases", "views"}
    assert all(r.at is not None for r in e.reasons)
    assert e.label == "Tent"
    assert e.lineage.person_audit_seq is not None
    assert e.lineage.audit_seq == X.lineage.audit_seq
    assert reading_ease(e.text, tmp_path / "nltk") >= 60


def test_a_view_alone_explains_as_the_store_does(setup) -> None:
    """model.explain(view=...) says which purposes a left-out feature is allowed for, as
    with store=... (a view keeps its store's feature definitions)."""
    store, X = setup
    model = ItemKNN(neighbours=5).fit(X)
    by_store = model.explain("p0", "sku-4", store=store)
    by_view = model.explain("p0", "sku-4", view=store.scope("personalization"))
    loc = {d.feature: d for d in by_view.data_not_used}["location"]
    assert loc.allowed_for == ["ads"]
    assert by_view.data_not_used == by_store.data_not_used
    assert by_view.text == by_store.text


def test_withdrawn_consent_is_said_with_its_date(setup) -> None:
    store, X = setup
    model = ALS(factors=4, iterations=5, random_state=0).fit(X)
    store.withdraw("p2", "personalization", source="privacy settings")
    e = model.explain("p2", "sku-4", view=store.scope("personalization"))
    assert e.data_used == []
    reasons = {d.reason for d in e.data_not_used}
    assert "withdrawn" in reasons
    assert any("turned off personalization on 28 November 2026" in s
               for s in e.statements["not_used"])


def test_without_store_data_comes_from_model_lineage(setup) -> None:
    _, X = setup
    model = ALS(factors=4, iterations=5, random_state=0).fit(X)
    e = model.recommend("p0", n=1)[0].explanation
    assert {d.feature for d in e.data_used} == {"purchases", "views"}
    assert {d.feature: d.reason for d in e.data_not_used} == {
        "location": "not_allowed_for_purpose"}
    assert e.data_not_used[0].allowed_for == ["ads"]
    assert e.lineage.purpose == "personalization"
    assert "location" not in e.text  # only the person's own data goes into the text
    assert e.total == pytest.approx(e.score, rel=1e-9)  # listed reasons and the rest


def test_popularity_with_store_uses_none_of_the_persons_data(setup) -> None:
    store, X = setup
    model = Popularity().fit(X)
    e = model.explain("p0", "sku-1", store=store)
    assert e.kind == "non_personalised" and e.reasons == []
    assert all(d.whose == "pooled" for d in e.data_used)
    assert "not_personalised" in {d.reason for d in e.data_not_used}


def test_shown_explanations_are_recorded_and_erased(setup) -> None:
    store, X = setup
    model = ItemKNN(neighbours=5).fit(X)
    e = model.recommend("p0", n=1)[0].explanation
    seq = store.record_explanation("p0", e)
    entry = store.audit.entries(action="explanation_shown")[-1]
    assert entry.seq == seq and entry.subject == store.pseudonym("p0")
    assert "p0" not in json.dumps(entry.detail) and e.item not in json.dumps(entry.detail)
    shown = store.shown_explanations("p0")
    assert shown[0]["verified"] and shown[0]["explanation"]["text"] == e.text
    report = persona.reports.transparency(store, "p0")
    assert report.explanations[0]["explanation"]["item"] == e.item
    md = report.to_markdown()
    assert "## Explanations you were shown" in md and e.text in md
    assert "signup form v3" in md
    assert store.audit.verify()
    store.erase("p0")
    assert store.shown_explanations("p0") == []
    store.flush()
    with closing(sqlite3.connect(store.path)) as con:  # the file itself, not through the store
        assert con.execute("SELECT count(*) FROM shown_explanations").fetchone()[0] == 0


def test_transparency_report_lists_data_and_consents(setup) -> None:
    store, _ = setup
    report = persona.reports.transparency(store, "p0")
    data = {d["feature"]: d for d in report.data}
    assert data["location"]["category"] == "approximate location"
    assert data["purchases"]["events"] == 3
    assert [c["action"] for c in report.consents if c["purpose"] == "ads"] == ["grant",
                                                                              "withdraw"]
    assert report.pseudonym == store.pseudonym("p0")
    assert "p0" not in report.model_dump_json().replace('"p0"', "")  # no id besides export's
    html = report.to_html()
    assert "<h2>Your data</h2>" in html and "approximate location" in html


def test_main_parameters_report(setup) -> None:
    store, X = setup
    model = ALS(factors=4, iterations=5, random_state=0).fit(X)
    r = persona.reports.main_parameters(model, store)
    assert r.model == "ALS" and r.personalised and r.purpose == "personalization"
    assert {s.feature: s.used for s in r.signals} == {"purchases": True, "views": True,
                                                     "location": False}
    assert {s.setting: s.value for s in r.parameters}[
        "Patterns learned from everyone's choices"] == "4 patterns"
    assert any("Withdraw your consent" in o.how for o in r.options)
    md = r.to_markdown()
    assert "browsing history" in md and "30 days" in md
    assert "| Patterns learned from everyone's choices | 4 patterns |" in md
    assert json.loads(r.model_dump_json())["purpose_description"] == \
        "Recommend products from what you buy"


def test_records_of_processing_report(setup) -> None:
    store, _ = setup
    r = persona.reports.records_of_processing(store)
    by = {p.name: p for p in r.purposes}
    assert set(by) == set(store.purposes)
    assert by["ads"].recipients.startswith("third parties")
    assert by["personalization"].categories == ["browsing history", "purchase history"]
    assert {c.feature: c.retention for c in r.categories} == {
        "location": "until erased", "purchases": "730 days", "views": "30 days"}
    assert r.audit_intact and r.audit_entries == len(store.audit)
    md = r.to_markdown()
    assert "| ads | Show our ads on other sites |" in md
    html = r.to_html()
    assert "<table>" in html
    assert json.loads(r.model_dump_json())["purposes"]


def test_reports_escape_html(setup) -> None:
    store, _ = setup
    store.define_purpose("promo", description='<script>alert("x")</script>')
    html = persona.reports.records_of_processing(store).to_html()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_reports_carry_the_privacy_guarantee(setup) -> None:
    from persona.privacy import BudgetLedger
    from persona.schema import PrivacySpent

    store, X = setup
    model = ALS(factors=4, iterations=5, random_state=0).fit(X)
    assert persona.reports.main_parameters(model, store).privacy is None
    spent = PrivacySpent(mechanism="dp-als", epsilon=2.0, delta=1e-6, rho=0.05)
    model.privacy_spent_ = spent
    r = persona.reports.main_parameters(model, store)
    assert r.privacy["epsilon"] == 2.0 and r.privacy["description"] == spent.describe()
    assert "| the patterns the model learned from everyone (private matrix factorisation) " \
        "| 2 | 1 × 10⁻⁶ |" in r.to_markdown()
    ledger = BudgetLedger(epsilon_budget=5.0)
    ledger.charge(spent, purpose="personalization", snapshot="s1")
    rop = persona.reports.records_of_processing(store, ledger=ledger)
    assert rop.privacy_charges[0]["epsilon"] == 2.0
    assert "| personalization | the patterns the model learned from everyone (private " \
        "matrix factorisation) | 2 |" in rop.to_markdown()
    # the store's own persisted ledger and budgets
    store.set_privacy_budget("personalization", epsilon=5.0, delta=1e-5)
    BudgetLedger(store.charge_storage(), epsilon_budget=5.0).charge(
        spent, purpose="personalization", snapshot="audit#1")
    rop = persona.reports.records_of_processing(store)
    assert [c["mechanism"] for c in rop.privacy_charges] == ["dp-als"]
    assert {p.name: p.privacy_budget for p in rop.purposes}["personalization"] == (5.0, 1e-5)
    assert "| ε = 5, δ = 1 × 10⁻⁵ in total for the lifetime of the store" in rop.to_markdown()


def test_counterfactual_names_what_the_person_did(setup) -> None:
    store, X = setup
    model = ALS(factors=4, iterations=5, random_state=0).fit(X)
    found = []
    for person in ("p0", "p2", "p4", "p6", "p8"):
        r = model.recommend(person, n=1)[0]
        e = model.explain(person, r.item, counterfactual=True, n=1, store=store)
        if e.counterfactual.verified:
            found.append(e.text)
    assert found, "no counterfactual found on the shop fixture"
    assert all("Had you not bought" in t or "Had you not chosen" in t for t in found), found
    assert any("Had you not bought" in t for t in found), found
