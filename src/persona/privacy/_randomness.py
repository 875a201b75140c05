"""Where persona's noise comes from: a fixed vocabulary, never free text.

Reports print what :data:`RANDOMNESS` says for the key a :class:`~persona.DP` carries. A
caller cannot write a claim of their own into that field (a free-text "certified hardware
RNG" would be printed to regulators as fact): the only sources are those persona's code
actually uses.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["RANDOMNESS", "RandomnessSource", "randomness_statement"]

RandomnessSource = Literal["os-csprng"]
"""The keys of :data:`RANDOMNESS`."""

#: What each source is, in the words a report prints.
RANDOMNESS: dict[str, str] = {
    "os-csprng": "persona's exact samplers of OpenDP's discrete Laplace and Gaussian noise, "
                 "fed by the operating system's cryptographically secure random number "
                 "generator (os.urandom); the amount of noise is computed by OpenDP",
}

#: Values persona itself wrote before the vocabulary (model files keep loading).
LEGACY = {"os.urandom (the operating system's CSPRNG)": "os-csprng"}

_FIX = (
    "randomness names where persona's noise comes from and is not free text: persona draws "
    "noise only from the operating system's CSPRNG, so leave it out (or give 'os-csprng')"
)


def check_randomness(value: Any) -> Any:
    """The vocabulary key for ``value`` (a legacy value persona wrote maps to its key);
    anything else raises ``ValueError`` with the fix (pydantic turns it into persona's
    :class:`~persona.ValidationError`)."""
    if isinstance(value, str):
        value = LEGACY.get(value, value)
        if value in RANDOMNESS:
            return value
    raise ValueError(_FIX)


def randomness_statement(privacy: Any) -> str:
    """The words for the randomness of a :class:`~persona.DP` (the default source when
    ``privacy`` carries none); a value that is not in the vocabulary (forced past
    validation) raises :class:`~persona.ValidationError` rather than being printed."""
    from persona.errors import ValidationError

    key = getattr(privacy, "randomness", "os-csprng")
    if not isinstance(key, str) or key not in RANDOMNESS:
        raise ValidationError(
            f"field 'randomness': {_FIX}; the model's settings carry {str(key)[:80]!r}",
            errors=[{"row": None, "field": "randomness", "message": "not in the vocabulary"}],
        )
    return RANDOMNESS[key]
