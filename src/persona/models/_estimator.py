"""The scikit-learn estimator contract every persona model keeps (parameters declared once
in the constructor, ``get_params``/``set_params``, validation at ``fit``), blocked items and
the fitted check: the part of :class:`~persona.models.Recommender` that knows nothing of
scoring."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Self

import pydantic

from persona.errors import NotFittedError
from persona.models import _block, _params

__all__ = ["Estimator"]


class Estimator:
    """Base of :class:`~persona.models.Recommender`: the estimator contract."""

    #: The pydantic model that validates the constructor's parameters at ``fit``.
    _config_class: ClassVar[type[pydantic.BaseModel]]

    def block(self, items: Iterable[str]) -> Self:
        """Never serve ``items``: ``recommend``, ``recommend_batch``, ``recommend_arrays``
        and ``similar_items`` leave them out (replaces the previous block set; ``[]``
        clears it). Not saved with the model (a Personalizer keeps it in its curation)."""
        _block.set_block(self, items)
        return self

    @property
    def blocked_(self) -> frozenset[str]:
        """The items :meth:`block` keeps from every list."""
        return _block.blocked_ids(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_config_class" in cls.__dict__:  # its defaults are this constructor's
            _params.bind_config(cls, cls._config_class)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, as given (scikit-learn's ``get_params``).

        Parameters
        ----------
        deep
            Also list the parameters of nested estimators as ``name__parameter`` (persona's
            own models have none; a wrapper around a model would).

        Notes
        -----
        After :meth:`set_params` on a fitted model these are the parameters of the *next*
        fit; :attr:`params_` holds those of the fitted state.
        """
        return _params.get_params(self, deep)

    def set_params(self, **params: Any) -> Self:
        """Set constructor arguments by name and return ``self`` (scikit-learn's
        ``set_params``; ``name__parameter`` reaches a nested estimator).

        As in scikit-learn, values are stored unchanged and validated by the next
        :meth:`fit`. On a fitted model the fitted state stays as it is (it still serves,
        saves and reports the parameters in :attr:`params_` and ``config_``) until you
        call :meth:`fit` again.

        Raises
        ------
        persona.errors.ValidationError
            For a name that is not a parameter (the message lists the valid ones); nothing
            is changed then.

        Examples
        --------
        >>> from persona.models import ALS
        >>> model = ALS().set_params(factors=16, regularization=0.1)
        >>> model.factors, model.get_params()["regularization"]
        (16, 0.1)
        """
        _params.set_params(self, params)
        return self

    @classmethod
    def _param_names(cls) -> list[str]:
        return _params.param_names(cls)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({args})"

    def _validated_config(self) -> Any:
        """The parameters checked by ``_config_class`` (a persona ValidationError if not)."""
        return _params.validated_config(self, self._config_class)

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has run."""
        return hasattr(self, "items_")

    def _check_fitted(self) -> None:
        if not hasattr(self, "items_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X) first"
            )
