"""Several releases on the same data as one spend, by zero-concentrated DP composition: their
ρ add up and the total is converted to (ε, δ) once, by OpenDP's ``make_zCDP_to_approxDP``.

This is the rule each private model already applies to its own releases (DP-ALS's
iterations, a selection's counts); :func:`compose_zcdp` applies it across models, as a
private model choice that fits several candidates on the same people does. Adding up the
parts' ε instead (:meth:`persona.schema.PrivacySpent.composed`) is always valid but loose:
two Gaussian releases that each cost ε/2 cost together about ε/√2 in zCDP terms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from persona.errors import ValidationError
from persona.privacy._accountant import zcdp_to_epsilon
from persona.schema import PrivacySpent

__all__ = ["compose_zcdp"]


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(message, errors=[{"row": None, "field": field,
                                            "message": message}])


def _rho(part: PrivacySpent) -> float:
    """A part's zCDP cost: its ρ, or ε²/2 for a pure ε-DP part (OpenDP's
    ``make_pureDP_to_zCDP``); refused for an approximate-DP part."""
    if part.rho is not None:
        return float(part.rho)
    if part.delta == 0:
        return float(part.epsilon) ** 2 / 2
    raise _invalid("parts", (
        f"{part.mechanism} is an (ε, δ) release with no ρ (a thresholded selection or a basic "
        "composition), which zCDP composition cannot count; add it with "
        "PrivacySpent.composed (basic composition) instead"))


def compose_zcdp(parts: Sequence[PrivacySpent], delta: float, *,
                 mechanism: str | None = None) -> PrivacySpent:
    """The releases ``parts``, made on the same data, as one spend: ρ is their sum (a pure
    ε-DP part counts ε²/2) and ε is OpenDP's conversion of it at ``delta``. Each part's
    bounds and noise are kept under its mechanism's name (``name#2`` for a second part of
    the same name). A part with δ > 0 and no ρ is refused: it is no zCDP release.

    >>> from persona.privacy import DP, plan_item_counts
    >>> from persona.privacy.accounting import rho_budget
    >>> whole = DP(epsilon=2.0, delta=1e-6)
    >>> half = whole.for_rho(rho_budget(2.0, 1e-6) / 2)
    >>> a, b = plan_item_counts(10, half), plan_item_counts(10, half)
    >>> spent = compose_zcdp([a, b], 1e-6)
    >>> round(spent.epsilon, 3), round(a.epsilon + b.epsilon, 3)
    (2.0, 2.75)
    """
    if isinstance(parts, str | bytes) or not isinstance(parts, Sequence) or not parts \
            or not all(isinstance(p, PrivacySpent) for p in parts):
        raise _invalid("parts", "parts must be a non-empty list of PrivacySpent values, one "
                                "per release")
    if isinstance(delta, bool) or not isinstance(delta, int | float) \
            or not 0 < delta < 1:
        raise _invalid("delta", f"delta must be a number strictly between 0 and 1 (the δ "
                                f"of the composed (ε, δ) claim), not {delta!r}")
    rho = math.fsum(_rho(p) for p in parts)
    named: list[tuple[str, PrivacySpent]] = []  # a repeated mechanism gets #2, #3, ...
    for p in parts:
        seen = sum(1 for n, q in named if q.mechanism == p.mechanism)
        named.append((p.mechanism if not seen else f"{p.mechanism}#{seen + 1}", p))
    return PrivacySpent(
        mechanism=mechanism or " + ".join(p.mechanism for p in parts),
        epsilon=zcdp_to_epsilon(rho, float(delta)),  # 0 for ρ = 0
        delta=float(delta) if rho > 0 else 0.0, rho=rho,
        bounds={f"{n}.{k}": v for n, p in named for k, v in p.bounds.items()},
        steps=sum(p.steps for p in parts),
        noise={f"{n}.{k}": v for n, p in named for k, v in p.noise.items()},
        accounting="zCDP composition (ρ added, OpenDP make_zCDP_to_approxDP) of: "
                   + "; ".join(f"{n}: {p.accounting}" for n, p in named),
    )
