"""Public test helpers: the model conformance suite, hypothesis strategies and empirical
privacy audits.

Needs the test extras (``pytest``, ``hypothesis``): ``pip install 'persona[test]'``.
"""

from persona.testing._conformance import ModelConformance, fitted_history
from persona.testing._fixtures import block_interactions, interaction_matrices
from persona.testing.audit import (
    AuditResult,
    audit_samples,
    clopper_pearson,
    epsilon_lower_bound,
    run_audit,
)

__all__ = [
    "AuditResult",
    "ModelConformance",
    "audit_samples",
    "block_interactions",
    "clopper_pearson",
    "epsilon_lower_bound",
    "fitted_history",
    "interaction_matrices",
    "run_audit",
]
