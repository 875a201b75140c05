"""Explanations: faithful reasons, data lineage, counterfactuals, plain language.

Every ``recommend`` result carries an :class:`Explanation`: the model's own score
decomposition as :class:`Reason` items (they sum to the served score; served lists list
the reasons the text names and total the rest, ``detail="full"`` lists all), the data used and
not used (and why), the privacy statement of the pooled parts of the model, and
:attr:`Explanation.text` in plain language from the templates of one language file.

>>> import numpy as np, scipy.sparse as sp
>>> from persona.data import Interactions
>>> from persona.models import ALS
>>> X = Interactions.from_csr(sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 3)))),
...     [f"u{i}" for i in range(6)], [f"i{i}" for i in range(6)])
>>> model = ALS(factors=4, iterations=5, random_state=0).fit(X)
>>> r = model.recommend("u0", n=1, exclude_seen=False, detail="full")[0]
>>> e = r.explanation
>>> e.kind, e.score == r.score
('decomposition', True)
>>> bool(np.isclose(sum(x.contribution for x in e.reasons), r.score, rtol=1e-9))
True
"""

from persona.explain._build import curated_explanation, explain
from persona.explain._context import model_lineage, person_context, privacy_statement
from persona.explain._envelope import Recommendations
from persona.explain._served import attach_explanations, explained_lists, shown_items
from persona.explain._tidy import recommendations_to_pandas
from persona.schema import (
    ConsentBasis,
    Counterfactual,
    DataNotUsed,
    DataUsed,
    Detail,
    Evidence,
    Explanation,
    ExplanationKind,
    LineageRef,
    PrivacyStatement,
    Reason,
    Rest,
    available_languages,
    templates,
)
from persona.schema import explanation_json_schema as json_schema

__all__ = [
    "ConsentBasis",
    "Counterfactual",
    "DataNotUsed",
    "DataUsed",
    "Detail",
    "Evidence",
    "Explanation",
    "ExplanationKind",
    "LineageRef",
    "PrivacyStatement",
    "Reason",
    "Recommendations",
    "Rest",
    "attach_explanations",
    "available_languages",
    "curated_explanation",
    "explain",
    "explained_lists",
    "json_schema",
    "model_lineage",
    "person_context",
    "privacy_statement",
    "recommendations_to_pandas",
    "shown_items",
    "templates",
]
