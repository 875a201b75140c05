"""Reports a regulator can file (issue 18): DSA Art. 27, GDPR Art. 15 and Art. 30 in human
words, with the organisation's details validated and the gaps said out loud."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import get_args

import pytest

import persona
from persona import reports
from persona.data import Interactions
from persona.models import ALS
from persona.schema import PrivacySpent
from store_helpers import Clock, event, shop

SRC = Path(persona.__file__).parent
CODE = re.compile(r"store\.|\w+\(|\bkind=|_\w+_\b|'personalization'\)")


@pytest.fixture
def fitted():
    clock = Clock()
    store = shop(clock=clock)
    people = [f"p{k}" for k in range(8)]
    for p in people:
        store.grant(p, "personalization", source="signup form v3", notice_version="2026-10")
    store.ingest([event(p, f"sku-{(k + j) % 5}", "purchases", at=f"2026-10-0{1 + j}T10:00:00Z")
                  for k, p in enumerate(people) for j in range(3)])
    store.ingest([event("p0", "sku-2", "views", at="2026-11-20T10:00:00Z")])
    store.feedback("p0", "sku-4", kind="not_interested", source="product page")
    clock.advance(days=1)
    model = ALS(factors=4, iterations=3, random_state=0).fit(
        Interactions.from_view(store.scope("personalization")))
    return store, model


# ------------------------------------------------------------------ DSA Art. 27
def test_art27_has_no_code_no_knobs_and_rounds_epsilon(fitted) -> None:
    store, model = fitted
    model.privacy_spent_ = PrivacySpent(mechanism="dp-als", epsilon=7.199999388211364,
                                        delta=1.0000000000000002e-06, rho=0.3)
    r = reports.main_parameters(model, store)
    md, html = r.to_markdown(), r.to_html()
    for text in (md, html):
        assert "store.withdraw" not in text and "store.feedback" not in text
        assert "store.export" not in text and "store.erase" not in text
        for knob in ("num_threads", "cg_steps", "regularization", "random_state",
                     "show_progress", "iterations", "7.199999", "rho", "zCDP",
                     "max_events_per_person"):
            assert knob not in text, knob
    assert "ε = 7.2" in md and "δ = 1 × 10⁻⁶" in md
    how = [o.how for o in r.options]
    assert how and not any(CODE.search(h) for h in how), how
    assert any("withdraw" in o.how.lower() for o in r.options)
    labels = [s.setting for s in r.parameters]
    assert not any("_" in label for label in labels), labels
    assert "4" in {s.value.split()[0] for s in r.parameters}  # the patterns learned


def test_art27_names_the_non_profiling_option_where_the_store_offers_it(fitted) -> None:
    store, model = fitted

    def offered(report) -> bool:
        return any("not based on profiling" in o.choice for o in report.options)

    assert offered(reports.main_parameters(model, store)) == hasattr(
        store, "prefer_non_profiling")

    class WithChoice(persona.Store):
        def prefer_non_profiling(self, user: str) -> None:  # pragma: no cover
            raise NotImplementedError

    other = WithChoice(":memory:")
    for name, spec in store.purposes.items():
        other.define_purpose(name, description=spec.description, sharing=spec.sharing)
    r = reports.main_parameters(model, other)
    assert offered(r)
    choice = next(o for o in r.options if "not based on profiling" in o.choice)
    assert "consent" in choice.effect and "undo" in choice.how.lower()


def test_art27_states_weights_recency_and_list_length_from_a_personalizer(fitted) -> None:
    from datetime import timedelta

    store, _ = fitted
    p = persona.Personalizer(store, model=ALS(factors=4, iterations=3, random_state=0),
                             weights={"purchases": 1.0, "views": 0.5}, scaling="log",
                             half_life=timedelta(days=30)).fit()
    r = reports.main_parameters(p, list_length=8)
    values = {s.setting: s.value for s in r.parameters}
    text = r.to_markdown()
    assert "half as much after 30 days" in text
    assert "purchase history × 1" in text and "browsing history × 0.5" in text
    assert values["Suggestions shown at a time"] == "up to 8"
    assert r.model == "ALS" and "matrix factorisation" in values["Kind of model"]


def test_randomness_is_a_fixed_vocabulary_not_free_text(fitted) -> None:
    with pytest.raises(persona.ValidationError, match="randomness"):
        persona.DP(epsilon=1.0, randomness="certified hardware RNG, audited by X")
    assert persona.DP(epsilon=1.0).randomness == "os-csprng"
    # a model file written before the vocabulary keeps loading
    legacy = persona.DP.model_validate(
        {"epsilon": 1.0, "randomness": "os.urandom (the operating system's CSPRNG)"})
    assert legacy.randomness == "os-csprng"
    store, model = fitted
    model.privacy = persona.DP(epsilon=2.0)
    model.privacy_spent_ = PrivacySpent(mechanism="dp-als", epsilon=2.0, delta=1e-6)
    text = reports.main_parameters(model, store).to_markdown()
    assert "operating system" in text and "OpenDP" in text
    assert "certified hardware RNG" not in text
    # a value forced past validation is refused, not printed
    model.privacy = persona.DP(epsilon=2.0).model_copy(
        update={"randomness": "certified hardware RNG, audited by X"})
    with pytest.raises(persona.ValidationError, match="randomness"):
        reports.main_parameters(model, store)


# ------------------------------------------------------------------ GDPR Art. 30
ORG = {
    "controller": {"name": "Example Shop Ltd", "contact": "privacy@example.com"},
    "dpo": {"name": "A. Reviewer", "contact": "dpo@example.com"},
    "recipients": [{"name": "Cloud Host GmbH", "role": "processor: hosting",
                    "purposes": ["personalization"], "country": "Germany"},
                   {"name": "AdNet Inc.", "role": "third party: advertising",
                    "purposes": ["ads"], "country": "United States"}],
    "transfers": [{"recipient": "AdNet Inc.", "country": "United States",
                   "safeguard": "standard_contractual_clauses",
                   "documents": "ask dpo@example.com for a copy"}],
    "security_measures": ["encryption at rest of the disks", "staff access by role"],
}


def test_art30_files_controller_dpo_subjects_recipients_transfers_and_measures(
    fitted,
) -> None:
    store, _ = fitted
    r = reports.records_of_processing(store, **ORG)
    md = r.to_markdown()
    assert "Example Shop Ltd" in md and "privacy@example.com" in md
    assert "dpo@example.com" in md and "not fileable" not in md.lower()
    assert r.fileable
    subjects = " ".join(s.description for s in r.data_subjects)
    assert "Recommend products from what you buy" in subjects
    assert "Cloud Host GmbH" in md and "AdNet Inc." in md
    assert "United States" in md and "standard contractual clauses" in md.lower()
    retention = {(c.category, c.retention) for c in r.categories}
    assert ("purchase history", "730 days") in retention
    measures = " ".join(m.measure for m in r.security_measures)
    for own in ("pseudonym", "hash-chained", "erasure", "encryption at rest"):
        assert own in measures, own
    ads = next(p for p in r.purposes if p.name == "ads")
    assert "AdNet Inc." in ads.recipients
    assert json.loads(r.model_dump_json())["controller"]["name"] == "Example Shop Ltd"


def test_art30_without_controller_or_dpo_says_it_is_not_fileable(fitted) -> None:
    store, _ = fitted
    r = reports.records_of_processing(store)
    md = r.to_markdown()
    assert not r.fileable
    assert "not fileable" in md.lower()
    assert "controller" in r.missing and "dpo" in r.missing
    assert "MISSING" in md


@pytest.mark.parametrize(("change", "field"), [
    ({"controller": "Example Shop Ltd"}, "controller"),
    ({"controller": {"name": "Example Shop Ltd"}}, "controller.contact"),
    ({"controller": {"name": 7, "contact": "x@example.com"}}, "controller.name"),
    ({"recipients": "Cloud Host GmbH"}, "recipients"),
    ({"security_measures": "encryption"}, "security_measures"),
    ({"transfers": [{"recipient": "AdNet Inc.", "country": "United States",
                     "safeguard": "a handshake"}]}, "transfers.0.safeguard"),
    ({"recipients": [{"name": "X", "role": "processor", "purposes": ["nope"]}]},
     "recipients.0.purposes"),
])
def test_art30_refuses_bad_details_with_the_fix(fitted, change, field) -> None:
    store, _ = fitted
    with pytest.raises(persona.ValidationError) as info:
        reports.records_of_processing(store, **{**ORG, **change})
    assert field in str(info.value)
    assert info.value.http_status == 422


def test_organisation_details_load_from_json_and_toml(tmp_path: Path, fitted) -> None:
    store, _ = fitted
    (tmp_path / "org.json").write_text(json.dumps(ORG))
    (tmp_path / "org.toml").write_text(
        '[controller]\nname = "Example Shop Ltd"\ncontact = "privacy@example.com"\n'
        '[dpo]\nname = "A. Reviewer"\ncontact = "dpo@example.com"\n')
    for name in ("org.json", "org.toml"):
        org = reports.Organisation.load(tmp_path / name)
        r = reports.records_of_processing(store, **org.arguments())
        assert r.fileable and r.controller.name == "Example Shop Ltd"
    (tmp_path / "bad.toml").write_text("[controller]\nname = 3\n")
    with pytest.raises(persona.ValidationError, match="controller"):
        reports.Organisation.load(tmp_path / "bad.toml")


# ------------------------------------------------------------------ GDPR Art. 15
def test_art15_lists_recipients_sources_and_rights(fitted) -> None:
    store, _ = fitted
    store.grant("p0", "ads", source="cookie banner")
    r = reports.transparency(store, "p0", recipients=ORG["recipients"],
                             controller=ORG["controller"], dpo=ORG["dpo"],
                             supervisory_authority={"name": "The Information Commissioner",
                                                    "contact": "ico.org.uk"})
    md = r.to_markdown()
    assert "Cloud Host GmbH" in md
    assert "AdNet Inc." in md  # p0 consented to ads: their data may reach it
    sources = " ".join(s.source for s in r.sources)
    assert "signup form v3" in sources and "cookie banner" in sources
    assert "product page" in sources
    for right in ("complaint", "Information Commissioner", "rectif", "erase", "object"):
        assert right.lower() in md.lower(), right
    assert "dpo@example.com" in md


def test_art15_audit_entries_read_in_plain_words(fitted) -> None:
    store, model = fitted
    model.explain("p0", "sku-1", store=store)  # a scoped_history_read
    r = reports.transparency(store, "p0")
    md = r.to_markdown()
    whats = [a["what"] for a in r.audit]
    assert whats and all("_" not in w for w in whats), whats
    assert "scoped_history_read" not in md and "consent_grant" not in md
    assert any("read to" in w for w in whats)


def test_art15_without_recipients_still_names_sharing_purposes(fitted) -> None:
    store, _ = fitted
    r = reports.transparency(store, "p0")
    text = " ".join(x.recipient for x in r.recipients)
    assert "no one outside" in text  # personalization is not shared
    assert "supervisory authority" in r.to_markdown()


# ------------------------------------------------------------------ the audit vocabulary
def _store_actions() -> set[str]:
    """Every action persona's own code passes to ``audit.append``."""
    from persona.schema import ConsentAction, FeedbackKind
    from persona.store._rows import LEDGER_ACTIONS

    expand = {"consent_": get_args(ConsentAction), "feedback_": get_args(FeedbackKind),
              "define_": ("purpose", "feature"), "redefine_": ("purpose", "feature")}
    names = {"action": {f"{p}{k}" for p in ("define_", "redefine_")
                        for k in ("purpose", "feature")} | set(LEDGER_ACTIONS)}
    out: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "append" and node.args
                    and ast.unparse(node.func.value).endswith("audit")):
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant):
                out.add(arg.value)
            elif (isinstance(arg, ast.IfExp) and isinstance(arg.body, ast.Constant)
                  and isinstance(arg.orelse, ast.Constant)):
                out |= {arg.body.value, arg.orelse.value}
            elif isinstance(arg, ast.JoinedStr):
                prefix = arg.values[0].value if isinstance(arg.values[0], ast.Constant) else ""
                assert prefix in expand, f"{path}: new computed action {ast.unparse(arg)}"
                out |= {prefix + k for k in expand[prefix]}
            else:
                name = ast.unparse(arg)
                assert name in names, f"{path}: audit action from {name}: list its values"
                out |= names[name]
    return out


def test_every_audit_action_the_store_writes_has_a_plain_phrase() -> None:
    from persona.reports import AUDIT_PHRASES, describe_action

    actions = _store_actions()
    assert {"consent_grant", "scoped_history_read", "erase", "privacy_charge"} <= actions
    missing = actions - set(AUDIT_PHRASES)
    assert not missing, f"add a phrase to persona.reports.AUDIT_PHRASES for {missing}"
    for action in actions:
        phrase = describe_action(action, {})
        assert "_" not in phrase and phrase[0].isupper(), (action, phrase)
    assert "curation" in describe_action("app.curation", {})


# ------------------------------------------------------------------ rendering
def test_html_is_a_styled_printable_document(fitted) -> None:
    store, model = fitted
    for r in (reports.main_parameters(model, store), reports.records_of_processing(store),
              reports.transparency(store, "p0")):
        page = r.to_html(document=True)
        assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
        assert "@media print" in page and "<style>" in page
        fragment = r.to_html()
        assert fragment.startswith('<div class="persona-report">') and "<style>" in fragment
