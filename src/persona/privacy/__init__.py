"""Differential privacy for persona: OpenDP-accounted noise from an exact, fast sampler,
contribution bounding, private mechanisms and a budget ledger.

The unit of privacy is one person (all of their events). What is pooled across people is
released with noise; each person's own profile is computed from their own data and shown only
to them.

>>> from persona.privacy import DP
>>> DP(epsilon=1.0, delta=1e-6).max_events_per_person
64
"""

from persona.privacy._accountant import (
    DP,
    GaussianPlan,
    ZCDPAccountant,
    gaussian_rho,
    grid_for,
    grid_sensitivity,
    laplace_epsilon,
    pld_epsilon,
    rho_budget,
    zcdp_to_epsilon,
)
from persona.privacy._bounding import bound_contributions, cap_events, clip_rows, clip_values
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
    solve_user_factors,
)
from persona.privacy._plans import (
    plan_als,
    plan_cooccurrence,
    plan_item_counts,
    plan_item_selection,
)
from persona.privacy._randomness import RANDOMNESS, RandomnessSource
from persona.privacy._sampler import (
    OS_BITS,
    RandomBits,
    SeededBits,
    discrete_gaussian,
    discrete_gaussian_pmf,
    discrete_laplace,
    discrete_laplace_pmf,
    gaussian_on_grid,
    laplace_on_grid,
    round_to_grid,
)
from persona.privacy._selection import private_item_selection
from persona.schema._privacy import (
    PrivacyBudgetPolicy,
    PrivacyCharge,
    PrivacyReservation,
    PrivacySettlement,
    PrivacySpent,
)

__all__ = [
    "DP",
    "OS_BITS",
    "RANDOMNESS",
    "ALSTimings",
    "BudgetLedger",
    "ChargeStorage",
    "GaussianPlan",
    "JsonlChargeStorage",
    "MemoryChargeStorage",
    "PrivacyBudgetPolicy",
    "PrivacyCharge",
    "PrivacyReservation",
    "PrivacySettlement",
    "PrivacySpent",
    "RandomBits",
    "RandomnessSource",
    "SeededBits",
    "ZCDPAccountant",
    "bound_contributions",
    "cap_events",
    "clip_rows",
    "clip_values",
    "discrete_gaussian",
    "discrete_gaussian_pmf",
    "discrete_laplace",
    "discrete_laplace_pmf",
    "gaussian_on_grid",
    "gaussian_rho",
    "grid_for",
    "grid_sensitivity",
    "laplace_epsilon",
    "laplace_on_grid",
    "plan_als",
    "plan_cooccurrence",
    "plan_item_counts",
    "plan_item_selection",
    "pld_epsilon",
    "private_als_item_factors",
    "private_cooccurrence",
    "private_item_counts",
    "private_item_selection",
    "rho_budget",
    "round_to_grid",
    "solve_user_factors",
    "zcdp_to_epsilon",
]
