"""persona: personalization that people can trust.

Consent-scoped feature stores, differential-privacy noise layers on OpenDP, and an
explanation API that says in plain language why each item was recommended.

>>> import persona
>>> store = persona.Store(":memory:")
>>> store.define_purpose("personalization", description="Recommend products from what you buy")
>>> sorted(store.purposes)
['personalization']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from persona.errors import (
    AuditError,
    ConsentError,
    ModelFileError,
    NotFittedError,
    PersonaError,
    PrivacyBudgetExceeded,
    StoreError,
    SuppressedSubjectError,
    UnknownFeatureError,
    UnknownItemError,
    UnknownPurposeError,
    UnknownUserError,
    ValidationError,
)

__version__ = "0.1.0"

# Public names that live in submodules, imported on first use so that ``import persona``
# stays fast and a notebook only pays for what it touches.
_LAZY: dict[str, str] = {
    "Store": "persona.store",
    "ScopedView": "persona.store",
    "DP": "persona.privacy",
}

if TYPE_CHECKING:  # pragma: no cover
    from persona.privacy import DP as DP
    from persona.store import ScopedView as ScopedView
    from persona.store import Store as Store


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'persona' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AuditError",
    "ConsentError",
    "ModelFileError",
    "NotFittedError",
    "PersonaError",
    "PrivacyBudgetExceeded",
    "StoreError",
    "SuppressedSubjectError",
    "UnknownFeatureError",
    "UnknownItemError",
    "UnknownPurposeError",
    "UnknownUserError",
    "ValidationError",
    "__version__",
    *_LAZY,
]
