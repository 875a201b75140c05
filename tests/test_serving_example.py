"""The FastAPI serving example in docs/examples: every endpoint through FastAPI's test
client, and persona's errors mapped to HTTP by ``PersonaError.http_status``."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import pytest

import persona

with warnings.catch_warnings():  # starlette asks for httpx2; httpx (the test extra) works
    warnings.filterwarnings("ignore", message=".*install `httpx2`")
    from fastapi.testclient import TestClient

EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "fastapi_app.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("fastapi_app", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fastapi_app"] = module  # FastAPI resolves the annotations from it
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("fastapi_app", None)


@pytest.fixture(scope="module")
def client(example):
    p = example.demo_personalizer(customers=40)
    with TestClient(example.create_app(p)) as c:
        yield c, p


def test_recommend_explain_consent_feedback_erase_report(client) -> None:
    c, p = client
    user = sorted(p.model_.users_)[0]
    r = c.get(f"/users/{user}/recommendations", params={"n": 3})
    assert r.status_code == 200
    doc = r.json()
    recs = doc["items"]
    assert len(recs) == 3 and recs[0]["text"]
    back = persona.Recommendations.model_validate(doc)  # the client can read it back whole
    assert [x.item for x in back] == [x["item"] for x in recs]
    item = recs[0]["item"]
    r = c.get(f"/users/{user}/explain/{item}")
    assert r.status_code == 200 and r.json()["item"] == item
    r = c.post(f"/users/{user}/feedback", json={"item": item, "kind": "not_interested"})
    assert r.status_code == 204
    assert item not in [x["item"] for x in
                        c.get(f"/users/{user}/recommendations").json()["items"]]
    r = c.post(f"/users/{user}/consent/personalization",
               json={"action": "withdraw", "source": "privacy settings"})
    assert r.status_code == 200 and r.json()["action"] == "withdraw"
    after = c.get(f"/users/{user}/recommendations", params={"n": 3}).json()
    assert after["shared"]["kind"] != "decomposition"
    report = c.get(f"/users/{user}/report").json()
    assert [x["action"] for x in report["consents"]] == ["grant", "withdraw"]
    page = c.get(f"/users/{user}/report", params={"format": "html"})
    assert page.status_code == 200 and page.text.startswith("<!DOCTYPE html>")
    r = c.delete(f"/users/{user}")
    assert r.status_code == 200
    assert c.get(f"/users/{user}/report").json()["held"] is False


@pytest.mark.parametrize(("call", "status", "code"), [
    (lambda c, u: c.post(f"/users/{u}/consent/marketing",
                         json={"action": "grant", "source": "form"}), 404, "unknown_purpose"),
    (lambda c, u: c.get(f"/users/{u}/explain/no-such-item"), 404, "unknown_item"),
    (lambda c, u: c.get(f"/users/{u}/recommendations", params={"n": 0}), 422,
     "validation_error"),
])
def test_persona_errors_become_http_answers(client, call, status, code) -> None:
    c, p = client
    user = sorted(p.model_.users_)[-1]
    r = call(c, user)
    assert r.status_code == status, r.text
    assert r.json() == {"code": code, "message": r.json()["message"]}
    assert r.json()["message"]


def test_every_error_class_maps_through_the_one_handler(client) -> None:
    c, _ = client
    app = c.app

    @app.get("/boom/{name}")
    def boom(name: str) -> None:
        raise getattr(persona, name)("it broke; do this instead")

    for name, status in (("PrivacyBudgetExceeded", 429), ("StoreError", 503),
                         ("ConsentError", 403), ("NotFittedError", 503)):
        r = c.get(f"/boom/{name}")
        assert r.status_code == status
        assert r.json()["message"] == "it broke; do this instead"
