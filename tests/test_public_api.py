"""The public surface: every name in ``persona.__all__`` resolves."""

from __future__ import annotations

import importlib

import pytest

import persona


def test_every_exported_name_resolves() -> None:
    for name in persona.__all__:
        assert getattr(persona, name) is not None, name


def test_errors_share_one_base() -> None:
    for name in persona.__all__:
        obj = getattr(persona, name)
        if isinstance(obj, type) and name.endswith(("Error", "Exceeded")):
            assert issubclass(obj, persona.PersonaError), name


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        persona.NoSuchThing  # noqa: B018


# What each subpackage exports (issue 19): a change to a public surface is a deliberate edit
# here. The parts restructured by other helpers of issue 19 add theirs beside these.
ALL_SNAPSHOT: dict[str, set[str]] = {
    "persona.privacy": {
        "DP", "RANDOMNESS", "ALSTimings", "BudgetLedger", "ChargeStorage",
        "JsonlChargeStorage", "MemoryChargeStorage", "PrivacyBudgetPolicy", "PrivacyCharge",
        "PrivacyReservation", "PrivacySettlement", "PrivacySpent", "RandomnessSource",
        "accounting", "bound_contributions", "plan_als", "plan_cooccurrence",
        "plan_item_counts", "plan_item_selection", "private_als_item_factors",
        "private_cooccurrence", "private_item_counts", "private_item_selection",
        "randomness_statement", "sampler",
    },
    "persona.privacy.sampler": {
        "OS_BITS", "RandomBits", "SeededBits", "discrete_gaussian", "discrete_gaussian_pmf",
        "discrete_laplace", "discrete_laplace_pmf", "gaussian_on_grid", "laplace_on_grid",
        "round_to_grid",
    },
    "persona.privacy.accounting": {
        "GaussianPlan", "ZCDPAccountant", "gaussian_rho", "grid_for", "grid_sensitivity",
        "laplace_epsilon", "pld_epsilon", "rho_budget", "zcdp_to_epsilon",
    },
    "persona.data": {"Interactions", "Scaling", "leave_k_out", "time_split"},
    "persona.evaluate": {
        "CrossValidationResult", "EvaluationReport", "EvaluationResult", "PersonMetrics",
        "cross_validate", "evaluate", "leave_k_out", "person_folds", "ranking_metrics",
        "time_split",
    },
    "persona.reports": {
        "AUDIT_PHRASES", "Contact", "MainParametersReport", "Organisation", "Recipient",
        "RecordsOfProcessingReport", "Report", "SAFEGUARDS", "Transfer", "TransparencyReport",
        "describe_action", "human_number", "main_parameters", "records_of_processing",
        "transparency",
    },
    "persona.testing": {
        "AuditResult", "GDPAuditResult", "ModelConformance", "audit_gdp", "audit_samples",
        "block_interactions", "clopper_pearson", "epsilon_lower_bound", "fitted_history",
        "gdp_mu", "interaction_matrices", "mu_lower_bound", "rho_to_mu", "run_audit",
        "run_gdp_audit",
    },
    "persona.datasets": {"ATTRIBUTION", "DemoShop", "load_demo_shop"},
}


@pytest.mark.parametrize("module", sorted(ALL_SNAPSHOT))
def test_subpackage_exports_are_the_snapshot(module: str) -> None:
    mod = importlib.import_module(module)
    assert set(mod.__all__) == ALL_SNAPSHOT[module]
    assert len(mod.__all__) == len(set(mod.__all__)), "a name is listed twice"
    for name in mod.__all__:
        assert getattr(mod, name, None) is not None, f"{module}.{name} does not resolve"


def test_privacy_keeps_sampler_internals_out_of_its_surface() -> None:
    """Users get DP, the ledger, the releases and the charges from ``persona.privacy``;
    the exact samplers are for auditors, in ``persona.privacy.sampler`` (issue 19)."""
    import persona.privacy as privacy

    assert not {"SeededBits", "discrete_gaussian", "OS_BITS", "round_to_grid"} & set(
        privacy.__all__)
    assert privacy.sampler.discrete_gaussian.__module__ == "persona.privacy._sampler"
