"""Ranking metrics (precision, recall, NDCG, MAP at k, coverage) and ``evaluate``.

The package is callable, so ``persona.evaluate(model, train, test)`` works whether or not
this subpackage was imported first.
"""

import sys
import types
from typing import Any

from persona.data import leave_k_out, time_split
from persona.evaluate._metrics import EvaluationResult, evaluate, ranking_metrics

__all__ = [
    "EvaluationResult",
    "evaluate",
    "leave_k_out",
    "ranking_metrics",
    "time_split",
]


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> EvaluationResult:
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
