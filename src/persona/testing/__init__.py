"""Test helpers that ship with persona: empirical privacy audits (and, from the models,
the conformance suite)."""

from persona.testing.audit import (
    AuditResult,
    audit_samples,
    clopper_pearson,
    epsilon_lower_bound,
    run_audit,
)

__all__ = [
    "AuditResult",
    "audit_samples",
    "clopper_pearson",
    "epsilon_lower_bound",
    "run_audit",
]
