"""The scikit-learn estimator contract on every persona model (issue 22): ``get_params(deep)``,
``set_params``, ``sklearn.base.clone`` and parameters declared once."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

import persona
from persona.errors import ValidationError
from persona.models import ALS, BPR, ContentKNN, ItemKNN, Popularity, Recommender
from persona.privacy import DP
from persona.testing import block_interactions

sklearn_base = pytest.importorskip("sklearn.base")
model_selection = pytest.importorskip("sklearn.model_selection")

ROOT = Path(__file__).resolve().parents[1]
_DP = DP(epsilon=50.0, delta=1e-6, max_events_per_person=8)
_TEXT = {f"i{j}": f"group {j // 8} item {j}" for j in range(24)}
MODELS = {
    "als": lambda: ALS(factors=4, iterations=3, random_state=0, num_threads=1),
    "bpr": lambda: BPR(factors=4, iterations=5, random_state=0, num_threads=1),
    "knn": lambda: ItemKNN(neighbours=5),
    "knn-bm25": lambda: ItemKNN(measure="bm25", neighbours=5),
    "popularity": lambda: Popularity(),
    "private-als": lambda: ALS(factors=4, iterations=2, random_state=0, privacy=_DP),
    "private-knn": lambda: ItemKNN(neighbours=5, privacy=_DP),
    "private-popularity": lambda: Popularity(privacy=_DP),
    "content": lambda: ContentKNN(item_text=_TEXT, neighbours=5),
    "private-content": lambda: ContentKNN(item_text=_TEXT, neighbours=5, privacy=_DP),
}
CLASSES = [ALS, BPR, ContentKNN, ItemKNN, Popularity]


@pytest.fixture(params=sorted(MODELS))
def model(request: pytest.FixtureRequest) -> Recommender:
    return MODELS[request.param]()


def _signature(cls: type) -> list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


# ------------------------------------------------------------------ get_params
def test_get_params_takes_deep(model: Recommender) -> None:
    shallow = model.get_params(deep=False)
    assert list(shallow) == _signature(type(model))
    assert model.get_params(deep=True) == shallow == model.get_params()


def test_get_params_deep_expands_nested_estimators() -> None:
    class Wrapped(Popularity):
        def __init__(self, count: str = "people", *, privacy: object = None,
                     show_progress: bool | None = None, inner: object = None) -> None:
            super().__init__(count, privacy=privacy, show_progress=show_progress)
            self.inner = inner

    inner = ALS(factors=3)
    deep = Wrapped(inner=inner).get_params(deep=True)
    assert deep["inner"] is inner and deep["inner__factors"] == 3
    assert "inner__factors" not in Wrapped(inner=inner).get_params(deep=False)


# ------------------------------------------------------------------ clone
def test_sklearn_clone_gives_an_unfitted_model_with_equal_params(model: Recommender) -> None:
    copy = sklearn_base.clone(model)
    assert type(copy) is type(model) and copy is not model
    assert copy.get_params() == model.get_params()
    assert not copy.is_fitted


def test_sklearn_clone_of_a_fitted_model_is_unfitted(model: Recommender) -> None:
    model.fit(block_interactions())
    copy = sklearn_base.clone(model)
    assert not copy.is_fitted and model.is_fitted
    assert copy.get_params() == model.get_params()
    copy.fit(block_interactions())
    assert copy.is_fitted


def test_clone_copies_a_generator_seed() -> None:
    rng = np.random.default_rng(3)
    copy = sklearn_base.clone(ALS(random_state=rng))
    assert isinstance(copy.random_state, np.random.Generator)
    assert copy.random_state is not rng  # sklearn's rule: a deep copy, not shared state


# ------------------------------------------------------------------ set_params
def test_set_params_returns_self_and_sets(model: Recommender) -> None:
    name = _signature(type(model))[0]
    value = {"factors": 7, "measure": "bm25", "count": "confidence",
             "item_text": {"i0": "a new title"}}[name]
    assert model.set_params(**{name: value}) is model
    assert model.get_params()[name] == value
    assert model.set_params() is model


@pytest.mark.parametrize("cls", CLASSES)
def test_set_params_round_trips_every_parameter(cls: type[Recommender]) -> None:
    params = cls().get_params()
    other = cls()
    other.set_params(**params)
    assert other.get_params() == params


def test_unknown_parameter_is_refused_and_changes_nothing(model: Recommender) -> None:
    before = model.get_params()
    first = _signature(type(model))[0]
    with pytest.raises(ValidationError, match="no_such_thing") as info:
        model.set_params(**{first: before[first]}, no_such_thing=1)
    for name in _signature(type(model)):  # the message names every valid parameter
        assert name in str(info.value)
    assert info.value.code == "validation_error"
    assert model.get_params() == before


def test_nested_parameter_of_a_plain_value_is_refused() -> None:
    model = ALS(privacy=_DP)
    with pytest.raises(ValidationError, match="privacy__epsilon"):
        model.set_params(privacy__epsilon=1.0)
    assert model.privacy is _DP


def test_nested_parameter_reaches_a_nested_estimator() -> None:
    class Wrapped(Popularity):
        def __init__(self, count: str = "people", *, privacy: object = None,
                     show_progress: bool | None = None, inner: object = None) -> None:
            super().__init__(count, privacy=privacy, show_progress=show_progress)
            self.inner = inner

    w = Wrapped(inner=ALS(factors=3))
    w.set_params(inner__factors=9, count="confidence")
    assert w.inner.factors == 9 and w.count == "confidence"
    with pytest.raises(ValidationError, match="inner__nope"):
        w.set_params(inner__nope=1)


def test_set_params_on_a_fitted_model_needs_a_refit(tmp_path: Path) -> None:
    """As in scikit-learn: the parameters change at once; the fitted state (and what it
    serves, saves and reports) is the one of the last fit until the next fit."""
    X = block_interactions()
    model = ALS(factors=4, iterations=3, random_state=0, num_threads=1).fit(X)
    before = model.recommend_batch(list(X.users), n=5)
    model.set_params(factors=6, regularization=0.5)
    assert model.factors == 6 and model.get_params()["regularization"] == 0.5
    assert model.is_fitted
    assert model.config_.factors == 4 and model.config_.regularization == 0.05
    assert model.params_["factors"] == 4
    assert model.item_factors_.shape[1] == 4
    assert model.recommend_batch(list(X.users), n=5) == before
    # a save describes the arrays it holds: the fitted parameters
    again = persona.models.load(str(model.save(tmp_path / "m")))
    assert again.get_params()["factors"] == 4
    assert again.recommend_batch(list(X.users), n=5) == before
    # the next fit uses the new parameters
    model.fit(X)
    assert model.config_.factors == 6 and model.item_factors_.shape[1] == 6
    assert model.params_ == model.get_params()


def test_set_privacy_none_on_a_private_fitted_model_still_saves(tmp_path: Path) -> None:
    X = block_interactions()
    model = Popularity(privacy=_DP).fit(X)
    model.set_params(privacy=None)
    again = persona.models.load(str(model.save(tmp_path / "m")))
    assert again.privacy_spent_ == model.privacy_spent_
    assert again.get_params()["privacy"] == _DP


def test_invalid_value_is_refused_at_fit_as_in_sklearn() -> None:
    model = ALS().set_params(factors=-1)
    assert model.factors == -1
    with pytest.raises(ValidationError, match="factors"):
        model.fit(block_interactions())
    assert not model.is_fitted


# ------------------------------------------------------------------ declared once
@pytest.mark.parametrize("cls", CLASSES)
def test_config_defaults_come_from_the_constructor(cls: type[Recommender]) -> None:
    config_cls = cls._config_class
    sig = inspect.signature(cls.__init__).parameters
    assert config_cls() == cls()._validated_config()
    for name, field in config_cls.model_fields.items():
        assert name in sig, name
        # the config declares types, bounds and documentation; the default is the
        # constructor's (one source of truth)
        assert field.is_required(), f"{config_cls.__name__}.{name} repeats a default"
        assert getattr(config_cls(), name) == sig[name].default


def test_config_fields_are_validated_with_their_bounds() -> None:
    with pytest.raises(Exception, match="factors"):
        persona.models.ALSConfig(factors=0)
    assert persona.models.ALSConfig(factors=3).iterations == 15


# ------------------------------------------------------------------ grid search
def test_parameter_grid_search() -> None:
    from persona.data import leave_k_out

    X = block_interactions()
    train, test = leave_k_out(X, k=1, random_state=0)
    base = ALS(iterations=3, random_state=0, num_threads=1)
    seen = []
    for params in model_selection.ParameterGrid({"factors": [2, 4], "regularization": [0.01, 1.0]}):
        model = sklearn_base.clone(base).set_params(**params).fit(train)
        seen.append((model.config_.factors, model.config_.regularization))
        same = ALS(iterations=3, random_state=0, num_threads=1, **params).fit(train)
        assert persona.evaluate(model, train, test, k=5) == persona.evaluate(
            same, train, test, k=5)  # a clone with set_params is that model, built directly
    assert sorted(seen) == [(2, 0.01), (2, 1.0), (4, 0.01), (4, 1.0)]
    assert not base.is_fitted


# ------------------------------------------------------------------ optional dependency
def test_scikit_learn_is_a_test_extra_only() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("scikit-learn") for d in meta["dependencies"])
    assert any(d.startswith("scikit-learn") for d in meta["optional-dependencies"]["test"])


def test_persona_works_without_scikit_learn() -> None:
    """A fresh interpreter in which scikit-learn cannot be imported (as where it is not
    installed): the models and their parameter contract still work."""
    code = (
        "import sys\n"
        "class NoSklearn:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'sklearn' or name.startswith('sklearn.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoSklearn())\n"
        "import persona\n"
        "from persona.testing import block_interactions\n"
        "m = persona.ALS(factors=2, iterations=1, num_threads=1).fit(block_interactions())\n"
        "m = type(m)(**m.set_params(factors=3).get_params(deep=False))\n"
        "print(m.fit(block_interactions()).config_.factors, 'sklearn' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "False"]


@pytest.mark.parametrize("b", [-0.1, 1.5, float("nan")])
def test_itemknn_b_is_checked_against_its_documented_range(b: float) -> None:
    """``b`` is documented as in [0, 1]; fit refuses other values (it took them)."""
    import scipy.sparse as sp

    from persona.data import Interactions
    from persona.errors import ValidationError

    X = Interactions.from_csr(sp.csr_matrix(np.ones((3, 3))), ["a", "b", "c"], ["x", "y", "z"])
    with pytest.raises(ValidationError, match="b"):
        persona.ItemKNN(measure="bm25", b=b).fit(X)


@pytest.mark.parametrize(("cls", "params"), [
    ("ALS", {"factors": True}), ("ALS", {"num_threads": True}), ("BPR", {"iterations": False}),
    ("ItemKNN", {"neighbours": True}), ("ALS", {"show_progress": "yes"}),
    ("Popularity", {"show_progress": 1}),
])
def test_a_bool_is_not_a_number_and_show_progress_is_a_bool(cls: str, params: dict) -> None:
    """set_params takes values as scikit-learn does and fit checks them: True is not one
    factor (pydantic's lax mode took it as 1), and show_progress is True, False or None."""
    import scipy.sparse as sp

    from persona.data import Interactions
    from persona.errors import ValidationError

    X = Interactions.from_csr(sp.csr_matrix(np.ones((3, 3))), ["a", "b", "c"], ["x", "y", "z"])
    model = getattr(persona, cls)().set_params(**params)
    with pytest.raises(ValidationError, match=next(iter(params))):
        model.fit(X)
