"""A recommendation service on persona, with FastAPI.

Run it with the bundled demo shop (a store in memory, built at startup)::

    pip install 'persona[demo]' fastapi uvicorn
    uvicorn fastapi_app:app --app-dir docs/examples

or on your own store and a model saved by ``persona train`` / ``Personalizer.save``::

    PERSONA_STORE=shop.db PERSONA_MODEL=model/ uvicorn fastapi_app:app --app-dir docs/examples

Every persona error becomes one JSON answer ``{"code": ..., "message": ...}`` with the HTTP
status the error class states (``PersonaError.http_status``): an unknown purpose is 404, a
bad field 422, a spent privacy budget 429, a store that cannot be used 503.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

import persona
from persona import reports
from persona.errors import PersonaError

PURPOSE = "personalization"


def demo_personalizer(customers: int = 600) -> persona.Personalizer:
    """A store in memory with the bundled shop's customers (all consenting), fitted."""
    from persona.datasets import load_demo_shop

    shop = load_demo_shop()
    people = set(shop.customers[:customers])
    store = persona.Store(":memory:")
    store.define_purpose(PURPOSE, description="Suggest products based on what you bought")
    store.define_feature("purchases", purposes=[PURPOSE], category="purchase history",
                         retention_days=None)
    for user in sorted(people):
        store.grant(user, PURPOSE, source="signup form")
    store.ingest([e for e in shop.events if e["user"] in people])
    store.label_items(shop.labels)
    model = persona.ALS(factors=16, iterations=6, random_state=0)
    return persona.Personalizer(store, model=model).fit()


def load_personalizer() -> persona.Personalizer:
    """From ``$PERSONA_STORE`` and ``$PERSONA_MODEL`` when set, else the demo shop."""
    store_path, model_path = os.environ.get("PERSONA_STORE"), os.environ.get("PERSONA_MODEL")
    if store_path and model_path:
        return persona.Personalizer.load(model_path, persona.Store(store_path))
    return demo_personalizer(int(os.environ.get("PERSONA_DEMO_CUSTOMERS", "600")))


class Consent(BaseModel):
    action: Literal["grant", "withdraw"]
    source: str = Field(min_length=1, max_length=200, description="where the choice was made")


class Feedback(BaseModel):
    item: str = Field(min_length=1)
    kind: Literal["not_interested", "dont_use"]


def create_app(personalizer: persona.Personalizer | None = None) -> FastAPI:
    """The service; builds its Personalizer at startup unless one is given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.p = personalizer if personalizer is not None else load_personalizer()
        yield

    app = FastAPI(title="persona recommendations", lifespan=lifespan)

    @app.exception_handler(PersonaError)
    async def persona_error(request: Request, exc: PersonaError) -> JSONResponse:
        return JSONResponse({"code": exc.code, "message": exc.message},
                            status_code=exc.http_status)

    def p(request: Request) -> persona.Personalizer:
        return request.app.state.p

    @app.get("/users/{user}/recommendations")
    def recommendations(user: str, request: Request, n: int = 10) -> Response:
        """Recommendations with their explanations (consent is checked on every call), in
        the compact form: the person's context once, then the items (see
        ``persona.Recommendations.json_schema()``)."""
        recs = p(request).recommend(user, n=n)
        return Response(recs.model_dump_json(), media_type="application/json")

    @app.get("/users/{user}/explain/{item}")
    def explain(user: str, item: str, request: Request) -> dict[str, Any]:
        """Why ``item`` is (or is not) recommended to ``user``."""
        return p(request).explain(user, item).model_dump(mode="json")

    @app.post("/users/{user}/consent/{purpose}")
    def consent(user: str, purpose: str, body: Consent, request: Request) -> dict[str, Any]:
        """Record a consent choice; the next recommendation follows it."""
        store = p(request).store
        record = (store.grant if body.action == "grant" else store.withdraw)(
            user, purpose, source=body.source)
        return record.model_dump(mode="json")

    @app.post("/users/{user}/feedback", status_code=204)
    def feedback(user: str, body: Feedback, request: Request) -> None:
        """Mark an item "not interested", or ask for it not to be used; effective at once."""
        p(request).feedback(user, body.item, body.kind)

    @app.delete("/users/{user}")
    def erase(user: str, request: Request) -> dict[str, Any]:
        """Erase everything held about the person (store and serving model)."""
        p(request).forget(user)
        return {"erased": user, "at": datetime.now(UTC).isoformat()}

    @app.get("/users/{user}/report", response_model=None)
    def report(user: str, request: Request,
               format: Literal["json", "html"] = "json") -> Any:
        """The person's GDPR Art. 15 report, as JSON or a printable page."""
        rep = reports.transparency(p(request).store, user)
        if format == "html":
            return HTMLResponse(rep.to_html(document=True))
        return JSONResponse(rep.model_dump(mode="json"))

    return app


app = create_app()
