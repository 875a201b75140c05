"""``EstimatorChecks``: the scikit-learn estimator contract, part of :class:`ModelConformance`.

The checks follow scikit-learn's own (``check_get_params_invariance``,
``check_set_params``, ``check_parameters_default_constructible``, ``clone``): parameters
named in the constructor's signature and stored unchanged, ``get_params(deep=...)``,
``set_params`` that refuses unknown names with a persona ``ValidationError`` and changes
nothing then, ``set_params`` on a fitted model that waits for the next fit, and
``sklearn.base.clone`` giving an unfitted model with equal parameters (skipped where
scikit-learn is not installed; persona itself never needs it).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from persona.data import Interactions
from persona.errors import ValidationError
from persona.models import Recommender

__all__ = ["EstimatorChecks"]

_SKIP = ("self",)


def _signature(cls: type) -> dict[str, inspect.Parameter]:
    # the class's call signature: its ``__init__``'s parameters, less ``self``
    return {n: p for n, p in inspect.signature(cls).parameters.items()
            if n not in _SKIP}


def _same(a: Any, b: Any) -> bool:
    """Equal parameter values; a ``numpy.random.Generator`` is compared by its state (a
    clone holds a copy of the seed generator, as in scikit-learn)."""
    if isinstance(a, np.random.Generator) and isinstance(b, np.random.Generator):
        return a.bit_generator.state == b.bit_generator.state
    return bool(a is b or a == b)


def _same_params(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)


class EstimatorChecks:
    """The scikit-learn contract; :class:`ModelConformance` runs these for every model."""

    def make_model(self) -> Recommender:  # pragma: no cover
        raise NotImplementedError("return an unfitted model")

    def test_parameters_are_named_in_the_signature(self) -> None:
        model = self.make_model()
        sig = _signature(type(model))
        kinds = {p.kind for p in sig.values()}
        assert inspect.Parameter.VAR_POSITIONAL not in kinds, "no *args in __init__"
        assert inspect.Parameter.VAR_KEYWORD not in kinds, "no **kwargs in __init__"
        missing = [n for n, p in sig.items() if p.default is inspect.Parameter.empty]
        assert not missing, f"every parameter needs a default (sklearn): {missing}"
        shallow = model.get_params(deep=False)
        assert list(shallow) == list(sig)
        default = type(model)()
        for name, p in sig.items():  # stored unchanged: the very object given
            assert getattr(default, name) is p.default, name

    def test_config_takes_the_constructor_defaults(self) -> None:
        """Parameters are declared once: every field of the model's config is a constructor
        parameter, and a default the config states is the constructor's."""
        cls = type(self.make_model())
        config = getattr(cls, "_config_class", None)
        if config is None:
            pytest.skip("the model has no pydantic config")
        sig = _signature(cls)
        for name, field in config.model_fields.items():
            assert name in sig, f"{config.__name__}.{name} is not a parameter of {cls.__name__}"
            if not field.is_required():
                assert _same(field.get_default(call_default_factory=True),
                             sig[name].default), (
                    f"{config.__name__}.{name} states another default than {cls.__name__}()")
        # the config's own defaults (taken from the constructor, or stated) are exactly
        # what a model built with the constructor's defaults validates to (for a config
        # that has a default for every field, or takes them from the constructor)
        params = cls().get_params(deep=False)
        validated = config.model_validate(
            {k: v for k, v in params.items() if k in config.model_fields})
        if getattr(config, "_model_class", None) is None and any(
                f.is_required() for f in config.model_fields.values()):
            return
        assert config() == validated, (
            f"{config.__name__}() differs from {cls.__name__}()'s validated parameters")

    def test_get_params_deep(self) -> None:
        model = self.make_model()
        shallow = model.get_params(deep=False)
        deep = model.get_params(deep=True)
        assert _same_params({k: deep[k] for k in shallow}, shallow)
        assert all(k in shallow or "__" in k for k in deep)
        assert _same_params(model.get_params(), deep)

    def test_set_params(self) -> None:
        model = self.make_model()
        params = model.get_params(deep=False)
        assert model.set_params() is model
        assert model.set_params(**params) is model
        after = model.get_params(deep=False)
        assert all(after[k] is params[k] for k in params)  # stored unchanged
        with pytest.raises(ValidationError, match="not_a_parameter") as info:
            model.set_params(**{next(iter(params)): object()}, not_a_parameter=1)
        for name in params:  # the message names the valid parameters
            assert name in str(info.value)
        assert all(model.get_params(deep=False)[k] is params[k] for k in params)

    def test_set_params_on_a_fitted_model_waits_for_the_next_fit(
        self, data: Interactions, tmp_path: Path
    ) -> None:
        model = self.make_model().fit(data)
        fitted = model.get_params(deep=False)
        assert _same_params(model.params_, fitted)
        users = list(data.users)[:10]
        before = model.recommend_batch(users, n=5)
        name = next(iter(fitted))
        model.set_params(**{name: object()})  # not even valid: fit alone validates
        assert model.is_fitted and _same_params(model.params_, fitted)
        assert model.recommend_batch(users, n=5) == before
        again = type(model).load(model.save(tmp_path / "m.model"))  # saves what was fitted
        assert _same_params(again.get_params(deep=False), fitted)
        assert again.recommend_batch(users, n=5) == before
        with pytest.raises(ValidationError):
            model.fit(data)  # the next fit uses (and checks) the new parameters
        model.set_params(**{name: fitted[name]}).fit(data)
        assert _same_params(model.params_, model.get_params(deep=False))

    def test_sklearn_clone(self, data: Interactions) -> None:
        base = pytest.importorskip("sklearn.base")
        model = self.make_model()
        copy = base.clone(model)
        assert type(copy) is type(model) and copy is not model and not copy.is_fitted
        assert _same_params(copy.get_params(deep=False), model.get_params(deep=False))
        model.fit(data)
        copy = base.clone(model)
        assert not copy.is_fitted and model.is_fitted
        assert copy.fit(data).is_fitted
