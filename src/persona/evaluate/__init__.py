"""Ranking metrics at one or several k (precision, recall, NDCG, MAP, MRR, hit rate, AUC,
coverage), per-person results, ``evaluate`` and k-fold ``cross_validate`` by person.

The package is callable, so ``persona.evaluate(model, train, test)`` works whether or not
this subpackage was imported first.
"""

import sys
import types
from typing import Any

from persona.data import leave_k_out, time_split
from persona.evaluate._cross_validation import CrossValidationResult, cross_validate, person_folds
from persona.evaluate._evaluate import evaluate
from persona.evaluate._metrics import ranking_metrics
from persona.evaluate._result import EvaluationReport, EvaluationResult, PersonMetrics

__all__ = [
    "CrossValidationResult",
    "EvaluationReport",
    "EvaluationResult",
    "PersonMetrics",
    "cross_validate",
    "evaluate",
    "leave_k_out",
    "person_folds",
    "ranking_metrics",
    "time_split",
]


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
