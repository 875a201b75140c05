"""How persona counts privacy cost, public for reviewers: each release's cost from OpenDP's
own measurements, zCDP composition and its conversion to (ε, δ).

These are the figures behind :func:`persona.privacy.plan_item_counts` and the other
``plan_*`` functions; a reviewer can recompute a model's claim from its public settings.

>>> from persona.privacy.accounting import gaussian_rho, zcdp_to_epsilon
>>> gaussian_rho(scale=2.0, sensitivity=1.0)
0.125
>>> round(zcdp_to_epsilon(0.5, 1e-6), 4)
5.2215
"""

from persona.privacy._accountant import (
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
from persona.privacy._composition import compose_zcdp

__all__ = [
    "GaussianPlan",
    "ZCDPAccountant",
    "compose_zcdp",
    "gaussian_rho",
    "grid_for",
    "grid_sensitivity",
    "laplace_epsilon",
    "pld_epsilon",
    "rho_budget",
    "zcdp_to_epsilon",
]
