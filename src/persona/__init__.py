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
    MissingDependencyError,
    ModelFileError,
    NotFittedError,
    NotShownError,
    PersonaError,
    PrivacyBudgetExceeded,
    PrivateInputError,
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
    "Interactions": "persona.data",
    "ALS": "persona.models",
    "BPR": "persona.models",
    "ItemKNN": "persona.models",
    "ContentKNN": "persona.models",
    "Popularity": "persona.models",
    "Recommendation": "persona.schema",
    "evaluate": "persona.evaluate",
    "Explanation": "persona.explain",
    "Reason": "persona.explain",
    "Recommendations": "persona.explain",
    "Counterfactual": "persona.explain",
    "DP": "persona.privacy",
    "Personalizer": "persona.personalizer",
}
#: Subpackages importable as attributes (``persona.models.load``), imported on first use.
#: ``persona.evaluate`` is the function of that name (see ``_LAZY``).
_SUBMODULES = (
    "data",
    "datasets",
    "explain",
    "models",
    "personalizer",
    "privacy",
    "reports",
    "schema",
    "store",
    "testing",
)
#: Left out of ``from persona import *``: it needs the test extras (pytest, hypothesis).
_NOT_STARRED = ("testing",)

if TYPE_CHECKING:  # pragma: no cover
    from persona import data as data
    from persona import datasets as datasets
    from persona import explain as explain
    from persona import models as models
    from persona import personalizer as personalizer
    from persona import privacy as privacy
    from persona import reports as reports
    from persona import schema as schema
    from persona import store as store
    from persona import testing as testing
    from persona.data import Interactions as Interactions
    from persona.evaluate import evaluate as evaluate
    from persona.explain import Counterfactual as Counterfactual
    from persona.explain import Explanation as Explanation
    from persona.explain import Reason as Reason
    from persona.explain import Recommendations as Recommendations
    from persona.models import ALS as ALS
    from persona.models import BPR as BPR
    from persona.models import ContentKNN as ContentKNN
    from persona.models import ItemKNN as ItemKNN
    from persona.models import Popularity as Popularity
    from persona.personalizer import Personalizer as Personalizer
    from persona.privacy import DP as DP
    from persona.schema import Recommendation as Recommendation
    from persona.store import ScopedView as ScopedView
    from persona.store import Store as Store


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None and name in _SUBMODULES:
        return importlib.import_module(f"persona.{name}")
    if module is None:
        raise AttributeError(f"module 'persona' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


__all__ = [
    "AuditError",
    "ConsentError",
    "MissingDependencyError",
    "ModelFileError",
    "NotFittedError",
    "NotShownError",
    "PersonaError",
    "PrivacyBudgetExceeded",
    "PrivateInputError",
    "StoreError",
    "SuppressedSubjectError",
    "UnknownFeatureError",
    "UnknownItemError",
    "UnknownPurposeError",
    "UnknownUserError",
    "ValidationError",
    "__version__",
    *_LAZY,
    *(name for name in _SUBMODULES if name not in _NOT_STARRED),
]
