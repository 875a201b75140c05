"""Differential privacy for persona: OpenDP-accounted noise from an exact, fast sampler,
contribution bounding, private mechanisms and a budget ledger.

The unit of privacy is one person (all of their events). What is pooled across people is
released with noise; each person's own profile is computed from their own data and shown only
to them.

This package exports what a user of the private models needs: the :class:`DP` settings, the
budget ledger and its storages, the charges it records, the ``private_*`` releases with
their ``plan_*`` costs, contribution bounding and the randomness vocabulary. Two public
submodules serve reviewers: :mod:`persona.privacy.sampler` (the exact noise samplers) and
:mod:`persona.privacy.accounting` (how each release's cost is counted, from OpenDP).

>>> from persona.privacy import DP
>>> DP(epsilon=1.0, delta=1e-6).max_events_per_person
64
"""

import importlib
import warnings
from typing import Any

from persona.privacy import accounting, sampler
from persona.privacy._accountant import DP
from persona.privacy._bounding import bound_contributions
from persona.privacy._ledger import (
    BudgetLedger,
    ChargeStorage,
    JsonlChargeStorage,
    MemoryChargeStorage,
)
from persona.privacy._mechanisms import (
    ALSTimings,
    private_als_item_factors,
    private_cooccurrence,
    private_item_counts,
)
from persona.privacy._plans import (
    plan_als,
    plan_cooccurrence,
    plan_item_counts,
    plan_item_selection,
)
from persona.privacy._randomness import RANDOMNESS, RandomnessSource, randomness_statement
from persona.privacy._selection import private_item_selection
from persona.schema import (
    PrivacyBudgetPolicy,
    PrivacyCharge,
    PrivacyReservation,
    PrivacySettlement,
    PrivacySpent,
)

__all__ = [
    "DP",
    "RANDOMNESS",
    "ALSTimings",
    "BudgetLedger",
    "ChargeStorage",
    "JsonlChargeStorage",
    "MemoryChargeStorage",
    "PrivacyBudgetPolicy",
    "PrivacyCharge",
    "PrivacyReservation",
    "PrivacySettlement",
    "PrivacySpent",
    "RandomnessSource",
    "accounting",
    "bound_contributions",
    "plan_als",
    "plan_cooccurrence",
    "plan_item_counts",
    "plan_item_selection",
    "private_als_item_factors",
    "private_cooccurrence",
    "private_item_counts",
    "private_item_selection",
    "randomness_statement",
    "sampler",
]

# Names persona.privacy exported before the exact samplers and the accounting got their own
# public submodules: still importable from here, with a DeprecationWarning saying where
# they live now (issue 19).
_MOVED = {
    **{n: "persona.privacy.sampler" for n in (
        "OS_BITS", "RandomBits", "SeededBits", "discrete_gaussian", "discrete_gaussian_pmf",
        "discrete_laplace", "discrete_laplace_pmf", "gaussian_on_grid", "laplace_on_grid",
        "round_to_grid")},
    **{n: "persona.privacy.accounting" for n in (
        "GaussianPlan", "ZCDPAccountant", "gaussian_rho", "grid_for", "grid_sensitivity",
        "laplace_epsilon", "pld_epsilon", "rho_budget", "zcdp_to_epsilon")},
}
_INTERNAL = {"cap_events": "persona.privacy._bounding", "clip_rows": "persona.privacy._bounding",
             "clip_values": "persona.privacy._bounding",
             "solve_user_factors": "persona.privacy._als"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            f"persona.privacy.{name} moved to {_MOVED[name]}.{name}; import it from there",
            DeprecationWarning, stacklevel=2,
        )
        return getattr(importlib.import_module(_MOVED[name]), name)
    if name in _INTERNAL:
        warnings.warn(
            f"persona.privacy.{name} is internal and will be removed; private models bound "
            "each person's contribution themselves (see persona.privacy.bound_contributions)",
            DeprecationWarning, stacklevel=2,
        )
        return getattr(importlib.import_module(_INTERNAL[name]), name)
    raise AttributeError(f"module 'persona.privacy' has no attribute {name!r}")
