"""Public test helpers: the model conformance suite, hypothesis strategies and empirical
privacy audits.

Needs the test extras (``pytest``, ``hypothesis``): ``pip install 'persona[test]'``;
without them, importing it is a :class:`~persona.errors.MissingDependencyError` saying so.
"""

from persona.testing import _requires  # noqa: F401  (first: says what is missing)
from persona.testing._conformance import ModelConformance, fitted_history
from persona.testing._fixtures import block_interactions, interaction_matrices
from persona.testing.audit import (
    AuditResult,
    GDPAuditResult,
    audit_gdp,
    audit_samples,
    clopper_pearson,
    epsilon_lower_bound,
    gdp_mu,
    mu_lower_bound,
    rho_to_mu,
    run_audit,
    run_gdp_audit,
)

__all__ = [
    "AuditResult",
    "GDPAuditResult",
    "ModelConformance",
    "audit_gdp",
    "audit_samples",
    "block_interactions",
    "clopper_pearson",
    "epsilon_lower_bound",
    "fitted_history",
    "gdp_mu",
    "interaction_matrices",
    "mu_lower_bound",
    "rho_to_mu",
    "run_audit",
    "run_gdp_audit",
]
