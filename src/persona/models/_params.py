"""The scikit-learn estimator contract, written once for every persona model.

A model declares its parameters once, in its constructor's signature (names and defaults,
as scikit-learn does). From that signature come:

- :func:`param_names`, :func:`get_params` and :func:`set_params` (``Recommender``'s methods
  call them), so ``sklearn.base.clone`` and ``sklearn.model_selection.ParameterGrid`` work
  without scikit-learn being a dependency;
- the defaults of the model's pydantic config (:class:`ParamsConfig`), which declares only
  what the signature cannot say: each parameter's bounds and its documentation.
"""

from __future__ import annotations

import functools
import inspect
from typing import Annotated, Any, ClassVar

import pydantic
from pydantic import BaseModel, ConfigDict, model_validator

from persona.errors import ValidationError

__all__ = [
    "ParamsConfig",
    "bind_config",
    "get_params",
    "param_names",
    "set_params",
    "validated_config",
]

#: Constructor arguments that steer how a fit runs but are not model settings, so the
#: config leaves them out (``privacy`` is checked on its own; ``show_progress`` is a bar).
NOT_IN_CONFIG = ("privacy", "show_progress")


def param_names(cls: type) -> list[str]:
    """The parameters of ``cls.__init__``, in signature order (no ``*args``/``**kwargs``:
    every parameter must be named, as scikit-learn requires)."""
    names = []
    for p in inspect.signature(cls).parameters.values():
        if p.name == "self":
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(
                f"{cls.__name__}.__init__ takes *{p.name}: a persona model must name every "
                "parameter in its constructor's signature (the scikit-learn contract)"
            )
        names.append(p.name)
    return names


def constructor_defaults(cls: type) -> dict[str, Any]:
    """``{name: default}`` of the parameters of ``cls.__init__`` that have a default."""
    return {
        p.name: p.default
        for p in inspect.signature(cls).parameters.values()
        if p.name != "self" and p.default is not inspect.Parameter.empty
    }


def _nested(value: Any) -> bool:
    """Whether ``value`` is an estimator whose own parameters ``name__sub`` reaches."""
    return hasattr(value, "get_params") and hasattr(value, "set_params") \
        and not isinstance(value, type)


def get_params(model: Any, deep: bool = True) -> dict[str, Any]:
    """The constructor arguments of ``model`` as stored; with ``deep``, also those of nested
    estimators as ``name__sub``."""
    if not isinstance(deep, bool):
        raise ValidationError(f"deep must be True or False, not {deep!r}")
    out: dict[str, Any] = {}
    for name in param_names(type(model)):
        value = getattr(model, name)
        out[name] = value
        if deep and _nested(value):
            out.update((f"{name}__{k}", v) for k, v in value.get_params(deep=True).items())
    return out


def set_params(model: Any, params: dict[str, Any]) -> None:
    """Set ``model``'s parameters (``name`` or ``name__sub`` for a nested estimator's), all
    or none: every key is checked before anything changes."""
    names = param_names(type(model))
    nested: dict[str, dict[str, Any]] = {}
    problems = []
    for key in params:
        name, sep, sub = key.partition("__")
        if name not in names:
            problems.append(
                (key, f"{type(model).__name__} has no parameter {key!r}; the valid "
                      f"parameters are {', '.join(names)}"))
        elif sep:
            value = getattr(model, name)
            if not _nested(value):
                problems.append(
                    (key, f"{key!r} sets a parameter of {name}, but {name} is a "
                          f"{type(value).__name__}, which has no parameters to set; pass a "
                          f"whole new value instead: set_params({name}=...)"))
            elif sub.partition("__")[0] not in value.get_params(deep=False):
                problems.append(
                    (key, f"{key!r}: {name} ({type(value).__name__}) has no parameter "
                          f"{sub.partition('__')[0]!r}; its parameters are "
                          f"{', '.join(value.get_params(deep=False))}"))
            else:
                nested.setdefault(name, {})[sub] = params[key]
    if problems:
        raise ValidationError(
            "; ".join(msg for _, msg in problems) + ". Nothing was changed.",
            errors=[{"row": None, "field": key, "message": msg, "input": params[key]}
                    for key, msg in problems],
        )
    for key, value in params.items():
        if "__" not in key:
            setattr(model, key, value)
    for name, sub_params in nested.items():
        getattr(model, name).set_params(**sub_params)


def validated_config(model: Any, config_class: type[BaseModel]) -> BaseModel:
    """``model``'s parameters (less :data:`NOT_IN_CONFIG`) validated by ``config_class``;
    a :class:`~persona.errors.ValidationError` listing every problem if they are not valid."""
    params = get_params(model, deep=False)
    for name in NOT_IN_CONFIG:
        params.pop(name, None)
    bools = [name for name, value in params.items()
             if type(value).__name__ in ("bool", "bool_")]
    if bools:  # named here: the config's own check can only say it of the whole model
        raise ValidationError(
            f"invalid {type(model).__name__} parameters: "
            + "; ".join(f"{n}: {params[n]!r} is a bool, not a number (no parameter of a "
                        "persona model is a bool); give a number" for n in bools),
            errors=[{"row": None, "field": n, "message": "a bool is not a number",
                     "input": params[n]} for n in bools],
        )
    strs = [name for name, value in params.items()
            if isinstance(value, str) and not _takes_str(config_class, name, value)]
    if strs:  # pydantic's lax mode would read "8" as 8
        raise ValidationError(
            f"invalid {type(model).__name__} parameters: "
            + "; ".join(f"{n}: {params[n]!r} is a str, not a number; give a number"
                        for n in strs),
            errors=[{"row": None, "field": n, "message": "a str is not a number",
                     "input": params[n]} for n in strs],
        )
    try:
        return config_class.model_validate(params)
    except pydantic.ValidationError as exc:
        errors = [
            {"row": None, "field": ".".join(map(str, e["loc"])), "message": e["msg"],
             "input": e.get("input")}
            for e in exc.errors()
        ]
        problems = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise ValidationError(
            f"invalid {type(model).__name__} parameters: {problems}", errors=errors
        ) from None


def _takes_str(config_class: type[BaseModel], name: str, value: str) -> bool:
    """Whether the field ``name`` of ``config_class`` takes ``value`` as a str as it is (a
    literal, a name), not by converting it to a number."""
    if name not in config_class.model_fields:
        return True  # an unknown name: the config's own check names it
    try:
        _strict_adapter(config_class, name).validate_python(value, strict=True)
    except pydantic.ValidationError:
        return False
    return True


@functools.cache
def _strict_adapter(config_class: type[BaseModel], name: str) -> pydantic.TypeAdapter[Any]:
    """The field's type with its constraints, built once per config class and field."""
    field = config_class.model_fields[name]
    kind: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata \
        else field.annotation
    return pydantic.TypeAdapter(kind)


class ParamsConfig(BaseModel):
    """Base of the models' validated parameters (``ALSConfig``, ``ItemKNNConfig``, ...).

    A subclass declares each parameter's type, bounds and documentation, **without a
    default**: the defaults are the model constructor's (:func:`bind_config` links the two
    when the model class is created), so they are written once. ``ALSConfig()`` still gives
    the defaults."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", frozen=True)

    #: The model class whose constructor gives the defaults (set by :func:`bind_config`).
    _model_class: ClassVar[type | None] = None

    @model_validator(mode="before")
    @classmethod
    def _constructor_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, value in data.items():  # pydantic's lax mode takes True as 1
            if type(value).__name__ in ("bool", "bool_"):
                raise ValueError(
                    f"{name} is {value!r}: a bool is not a number (no parameter of a "
                    "persona model is a bool); give a number")
        if cls._model_class is None:
            return data
        defaults = constructor_defaults(cls._model_class)
        missing = {n: defaults[n] for n in cls.model_fields if n not in data and n in defaults}
        return {**missing, **data} if missing else data


def bind_config(model_class: type, config_class: type[BaseModel]) -> None:
    """Let ``config_class`` take its defaults from ``model_class``'s constructor (a
    :class:`ParamsConfig` not bound to another model yet; other configs keep their own)."""
    if not (isinstance(config_class, type) and issubclass(config_class, ParamsConfig)):
        return
    if config_class.__dict__.get("_model_class") is None:
        config_class._model_class = model_class
