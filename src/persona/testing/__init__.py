"""Public test helpers: the model conformance suite and hypothesis strategies.

Needs the test extras (``pytest``, ``hypothesis``): ``pip install 'persona[test]'``.
"""

from persona.testing._conformance import ModelConformance, fitted_history
from persona.testing._fixtures import block_interactions, interaction_matrices

__all__ = [
    "ModelConformance",
    "block_interactions",
    "fitted_history",
    "interaction_matrices",
]
