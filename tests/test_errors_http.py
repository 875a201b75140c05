"""Every persona error says which HTTP status a web service should answer with."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import persona
from persona.errors import PersonaError


def _all_subclasses() -> list[type[PersonaError]]:
    for mod in pkgutil.walk_packages(persona.__path__, "persona."):
        importlib.import_module(mod.name)
    out, todo = [], [PersonaError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("persona."):
                out.append(sub)
                todo.append(sub)
    return out


def test_every_error_class_chooses_its_http_status_and_documents_it() -> None:
    classes = _all_subclasses()
    assert len(classes) >= 15
    for cls in [PersonaError, *classes]:
        assert "http_status" in cls.__dict__, f"{cls.__qualname__} inherits its http_status"
        status = cls.http_status
        assert type(status) is int and 400 <= status <= 599, cls
        assert f"HTTP {status}" in (cls.__doc__ or ""), f"{cls.__qualname__} doc lacks it"


@pytest.mark.parametrize(("cls", "status"), [
    (persona.ValidationError, 422),
    (persona.UnknownUserError, 404),
    (persona.UnknownItemError, 404),
    (persona.UnknownPurposeError, 404),
    (persona.ConsentError, 403),
    (persona.StoreError, 503),
    (persona.NotFittedError, 503),
    (persona.PrivacyBudgetExceeded, 429),
    (persona.errors.SuppressedSubjectError, 409),
])
def test_the_status_fits_the_meaning(cls: type[PersonaError], status: int) -> None:
    assert cls.http_status == status
    assert cls("x").http_status == status
