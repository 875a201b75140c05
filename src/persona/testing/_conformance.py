"""``ModelConformance``: the behaviour every persona recommender must have.

Use it like scikit-learn's ``check_estimator`` or implicit's ``RecommenderBaseTestMixin``:
subclass it in a test module and say how to build the model::

    class TestMyALS(ModelConformance):
        def make_model(self):
            return ALS(factors=8, iterations=10, random_state=0)

pytest then runs every ``test_*`` method below against that model, and the scikit-learn
estimator contract of :class:`persona.testing._estimator.EstimatorChecks` (``get_params``,
``set_params``, ``sklearn.base.clone``, parameters declared once).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings

from persona.data import Interactions
from persona.errors import (
    ModelFileError,
    NotFittedError,
    PersonaError,
    UnknownItemError,
    UnknownUserError,
    ValidationError,
)
from persona.models import NoExactDecompositionError, Recommender
from persona.schema import Recommendation
from persona.testing._estimator import EstimatorChecks
from persona.testing._fixtures import block_interactions, interaction_matrices


def _reseal(path: Path) -> None:
    """Recompute a saved model's checksums as another tool that rewrote its arrays would:
    ``arrays_sha256`` of ``arrays.npz``, then ``sha256`` of the rest of the manifest as
    canonical JSON (the documented model file format)."""
    import hashlib

    manifest = json.loads((path / "manifest.json").read_text())
    manifest["arrays_sha256"] = hashlib.sha256((path / "arrays.npz").read_bytes()).hexdigest()
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    manifest["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))

__all__ = ["ModelConformance"]


def _items(recs: Sequence[Recommendation]) -> list[str]:
    return [r.item for r in recs]


class ModelConformance(EstimatorChecks):
    """The conformance suite; subclass and implement :meth:`make_model`.

    It includes the scikit-learn estimator contract (``get_params(deep=...)``,
    ``set_params``, ``sklearn.base.clone`` where scikit-learn is installed, and a config
    whose defaults are the constructor's)."""

    #: ``contributions`` sums exactly to the served score (else it must raise).
    exact_decomposition: ClassVar[bool] = True
    #: After ``forget``, the model equals a refit on the data without that person.
    forget_equals_refit: ClassVar[bool] = False
    #: How many of the top items a fold-in must share with a refit on the block fixture
    #: (above 0), or ``None`` where a refit is no reference (it ranks by fresh noise);
    #: ``None`` needs ``pooled_release_is_fixed``, whose exact checks replace the comparison.
    fold_in_overlap: ClassVar[float | None] = 1.0
    #: The pooled part is released once, at fit (a private model): ``fold_in`` never
    #: recomputes it, so folding a person in leaves everybody else's recommendations as they
    #: were, and a non-personalised model serves the person the released ranking less their
    #: own items.
    pooled_release_is_fixed: ClassVar[bool] = False
    #: Folding a known person in with their own history leaves their ranking unchanged
    #: (true where the served vector *is* the fold-in solve; BPR's is an SGD result).
    fold_in_is_serving_solve: ClassVar[bool] = True

    def make_model(self) -> Recommender:  # pragma: no cover
        raise NotImplementedError("return an unfitted model")

    # -------------------------------------------------------------- helpers
    @pytest.fixture
    def data(self) -> Interactions:
        return block_interactions()

    @pytest.fixture
    def fitted(self, data: Interactions) -> Recommender:
        return self.make_model().fit(data)

    # ------------------------------------------------------------ contract
    def test_not_fitted_raises(self) -> None:
        model = self.make_model()
        assert not model.is_fitted
        with pytest.raises(NotFittedError, match=r"fit\(X\)"):
            model.recommend("u0")
        with pytest.raises(NotFittedError):
            model.save("unused")

    def test_params_are_stored_unchanged(self) -> None:
        model = self.make_model()
        params = model.get_params()
        clone = type(model)(**params)
        assert clone.get_params() == params
        assert repr(model).startswith(type(model).__name__)

    def test_fit_returns_self_and_sets_learned_attributes(self, data: Interactions) -> None:
        model = self.make_model()
        assert model.fit(data) is model
        assert list(model.items_) == list(data.items)
        assert list(model.users_) == list(data.users)
        assert model.lineage_ is data.lineage
        privacy = model.get_params().get("privacy")
        if privacy is None:
            assert model.privacy_spent_ is None
        else:  # a private fit says what it spent, never more than configured
            spent = model.privacy_spent_
            assert spent is not None and spent.unit_of_privacy == "one person"
            assert spent.epsilon <= privacy.epsilon and spent.delta <= privacy.delta

    def test_privacy_argument_is_not_silently_ignored(self, data: Interactions) -> None:
        params = self.make_model().get_params()
        params["privacy"] = {"epsilon": 1.0}
        with pytest.raises(PersonaError, match="privacy"):
            type(self.make_model())(**params).fit(data)

    def test_fit_rejects_non_interactions(self) -> None:
        with pytest.raises(ValidationError, match="Interactions"):
            self.make_model().fit(sp.eye(3, format="csr"))

    # --------------------------------------------------------------- serving
    def test_known_answer(self, fitted: Recommender, data: Interactions) -> None:
        """On the block fixture, people get the unseen items of their own group."""
        if not fitted.personalised:
            pytest.skip("non-personalised model")
        per_group = 8
        hits = total = 0
        for u in data.users:
            g = int(u[1:]) // 20
            recs = fitted.recommend(u, n=2)
            for r in recs:
                total += 1
                hits += int(r.item[1:]) // per_group == g
        assert hits / total >= 0.85

    def test_recommend_types_and_order(self, fitted: Recommender) -> None:
        recs = fitted.recommend("u0", n=5)
        assert [r.rank for r in recs] == list(range(1, len(recs) + 1))
        scores = [r.score for r in recs]
        assert scores == sorted(scores, reverse=True)
        assert all(isinstance(r.item, str) and isinstance(r.score, float) for r in recs)

    def test_exclude_seen_is_default(self, fitted: Recommender, data: Interactions) -> None:
        seen = set(data.history("u0"))
        recs = fitted.recommend("u0", n=100, exclude_seen=True)
        assert not seen & set(_items(recs))
        if fitted.personalised:
            assert not seen & set(_items(fitted.recommend("u0", n=100)))
            everything = fitted.recommend("u0", n=100, exclude_seen=False)
            assert len(everything) == data.n_items

    def test_n_larger_than_catalogue(self, fitted: Recommender, data: Interactions) -> None:
        recs = fitted.recommend("u0", n=10_000, exclude_seen=True)
        assert len(recs) == data.n_items - len(data.history("u0"))
        assert len({r.item for r in recs}) == len(recs)

    def test_bad_n_rejected(self, fitted: Recommender) -> None:
        for bad in (0, -1, 2.5, True):
            with pytest.raises(ValidationError):
                fitted.recommend("u0", n=bad)  # type: ignore[arg-type]

    def test_exclude_and_include(self, fitted: Recommender) -> None:
        top = _items(fitted.recommend("u0", n=3))
        without = _items(fitted.recommend("u0", n=3, exclude=top[:1]))
        assert top[0] not in without
        allowed = ["i20", "i21", "i5", "i13"]
        only = _items(fitted.recommend("u0", n=10, include=allowed, exclude_seen=False))
        assert sorted(only) == sorted(allowed)
        with pytest.raises(UnknownItemError):
            fitted.recommend("u0", exclude=["no-such-item"])

    def test_business_rule_hook(self, fitted: Recommender) -> None:
        def odd_only(user: str, items: np.ndarray) -> np.ndarray:
            assert user == "u0"
            return np.array([int(i[1:]) % 2 == 1 for i in items])

        recs = fitted.recommend("u0", n=50, rule=odd_only, exclude_seen=False)
        assert len(recs) == 12  # the odd half of the 24-item catalogue
        assert all(int(r.item[1:]) % 2 == 1 for r in recs)

    def test_batch_equals_single(self, fitted: Recommender, data: Interactions) -> None:
        users = list(data.users)
        batch = fitted.recommend_batch(users, n=5, block_size=7)
        assert batch == [fitted.recommend(u, n=5) for u in users]

    @given(X=interaction_matrices())
    @settings(
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,  # one run per model class, by design
        ]
    )
    def test_batch_equals_single_property(self, X: Interactions) -> None:
        model = self.make_model().fit(X)
        users = list(X.users)
        for kwargs in ({}, {"exclude_seen": False}, {"exclude": [X.items[0]]}):
            batch = model.recommend_batch(users, n=4, block_size=3, **kwargs)
            single = [model.recommend(u, n=4, **kwargs) for u in users]
            assert batch == single

    def test_unknown_user(self, fitted: Recommender) -> None:
        if fitted.personalised:
            with pytest.raises(UnknownUserError, match="fold_in"):
                fitted.recommend("nobody")
            with pytest.raises(UnknownUserError):
                fitted.recommend_batch(["u0", "nobody"])
        else:  # the non-profiling model serves anyone the same list
            assert fitted.recommend("nobody") == fitted.recommend("u0")
        with pytest.raises(UnknownUserError):
            fitted.forget("nobody")

    def test_similar_items(self, fitted: Recommender) -> None:
        sims = fitted.similar_items("i0", n=3)
        assert len(sims) == 3
        assert "i0" not in _items(sims)
        with pytest.raises(UnknownItemError):
            fitted.similar_items("no-such-item")

    # --------------------------------------------------------- explanations
    def test_contributions(self, fitted: Recommender) -> None:
        if not self.exact_decomposition:
            with pytest.raises(NoExactDecompositionError):
                fitted.contributions("u0", "i1")
            return
        for u in ("u0", "u7", "u15"):
            for rec in fitted.recommend(u, n=3, exclude_seen=False):
                items, parts = fitted.contributions(u, rec.item)
                assert set(items) == set(fitted_history(fitted, u))
                total = parts.sum()
                scale = max(abs(rec.score), np.abs(parts).sum())
                assert abs(total - rec.score) <= 1e-9 * scale

    def test_every_recommendation_is_explained(self, fitted: Recommender) -> None:
        """Issue 5: ``recommend`` explains each item with the score that ranked it; exact
        models' reasons add up to it; the others say what kind of explanation it is."""
        for u in ("u0", "u21"):
            for rec in fitted.recommend(u, n=4):
                e = rec.explanation
                assert e is not None
                assert (e.item, e.score, e.rank) == (rec.item, rec.score, rec.rank)
                if not fitted.personalised:
                    assert e.kind == "non_personalised" and e.reasons == []
                elif self.exact_decomposition:
                    # served in summary: the top reasons and the rest, adding up to it
                    assert e.kind == "decomposition" and e.detail == "summary"
                    assert e.rest is not None
                    parts = [r.contribution for r in e.reasons]
                    assert all(c is not None for c in parts)
                    scale = max(abs(rec.score), sum(abs(c or 0.0) for c in parts),
                                abs(e.rest.contribution or 0.0))
                    assert abs(e.total - rec.score) <= 1e-9 * scale
                else:
                    assert e.kind == "justification"
                    assert all(r.contribution is None for r in e.reasons)
                same = fitted.explain(u, rec.item, detail="summary")
                assert e.text and e == same.model_copy(update={
                    "score": e.score, "reasons": e.reasons, "evidence": e.evidence,
                    "rest": e.rest})
            assert all(r.explanation is None for r in fitted.recommend(u, n=4, explain=False))

    # ------------------------------------------------------------ persistence
    def test_save_load_round_trip(self, fitted: Recommender, tmp_path: Path) -> None:
        path = fitted.save(tmp_path / "m.model")
        same = type(fitted).load(path)
        assert same.get_params() == fitted.get_params()
        assert same.privacy_spent_ == fitted.privacy_spent_
        users = list(fitted.users_)
        assert same.recommend_batch(users, n=5) == fitted.recommend_batch(users, n=5)
        items = list(fitted.items_)
        np.testing.assert_array_equal(same.score("u3", items), fitted.score("u3", items))

    def test_bad_checksum_refused(self, fitted: Recommender, tmp_path: Path) -> None:
        path = fitted.save(tmp_path / "m.model")
        raw = bytearray((path / "arrays.npz").read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        (path / "arrays.npz").write_bytes(bytes(raw))
        with pytest.raises(ModelFileError, match="checksum"):
            type(fitted).load(path)

    def test_pickle_refused(self, fitted: Recommender, tmp_path: Path) -> None:
        path = fitted.save(tmp_path / "m.model")
        arrays = dict(np.load(path / "arrays.npz", allow_pickle=False))
        arrays["users_utf8"] = np.array(list(arrays["users_utf8"]), dtype=object)  # pickle
        np.savez(path / "arrays.npz", **arrays)
        _reseal(path)
        with pytest.raises(ModelFileError, match="pickle"):
            type(fitted).load(path)
        # a foreign member smuggled into the archive is refused too
        with zipfile.ZipFile(path / "arrays.npz", "a") as zf:
            zf.writestr("evil.pkl", b"\x80\x04N.")
        _reseal(path)
        with pytest.raises(ModelFileError, match="unexpected member"):
            type(fitted).load(path)

    def test_unknown_version_and_wrong_class_refused(
        self, fitted: Recommender, tmp_path: Path
    ) -> None:
        path = fitted.save(tmp_path / "m.model")
        manifest = json.loads((path / "manifest.json").read_text())
        (path / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
        with pytest.raises(ModelFileError, match="version"):
            type(fitted).load(path)
        (path / "manifest.json").write_text(json.dumps({**manifest, "model": "Nope"}))
        with pytest.raises(ModelFileError, match="Nope"):
            type(fitted).load(path)
        with pytest.raises(ModelFileError, match="not a persona model"):
            type(fitted).load(tmp_path / "missing")

    # ------------------------------------------------------- forget / fold-in
    def test_forget_removes_every_trace(
        self, data: Interactions, fitted: Recommender, tmp_path: Path
    ) -> None:
        fitted.forget("u4")
        assert "u4" not in set(fitted.users_)
        assert fitted.history_.shape[0] == data.n_users - 1
        if fitted.personalised:
            with pytest.raises(UnknownUserError):
                fitted.recommend("u4")
        path = fitted.save(tmp_path / "m.model")
        arrays = np.load(path / "arrays.npz", allow_pickle=False)
        raw, ends = arrays["users_utf8"].tobytes(), arrays["users_ends"].tolist()
        saved = {raw[a:b].decode() for a, b in zip([0, *ends[:-1]], ends, strict=True)}
        assert "u4" not in saved and len(saved) == data.n_users - 1
        assert "u4" not in (path / "manifest.json").read_text()
        for name in arrays.files:
            if arrays[name].ndim == 2 and arrays[name].shape[0] == data.n_users:
                pytest.fail(f"array {name} still has a row per original person")
        # everyone else is still served
        assert fitted.recommend("u5", n=3)
        if self.forget_equals_refit:
            keep = np.array([u != "u4" for u in data.users])
            refit = self.make_model().fit(
                Interactions.from_csr(data.matrix[keep], data.users[keep], data.items)
            )
            others = [u for u in data.users if u != "u4"]
            assert fitted.recommend_batch(others, n=5) == refit.recommend_batch(others, n=5)

    def test_fold_in_ranks_like_refit(self, data: Interactions) -> None:
        """A person folded in ranks (their top items) like a refit that includes them; a
        model whose pooled part is a fixed release ranks them exactly by that release."""
        overlap = self.fold_in_overlap
        assert (overlap is None and self.pooled_release_is_fixed) or (
            overlap is not None and 0.0 < overlap <= 1.0), (
            "fold_in_overlap must be in (0, 1], or None with pooled_release_is_fixed "
            "(an overlap of 0 checks nothing)")
        target = "u3"
        keep = np.array([u != target for u in data.users])
        without = self.make_model().fit(
            Interactions.from_csr(data.matrix[keep], data.users[keep], data.items)
        )
        history = data.history(target)
        # the known answer: the unseen items of the target's group (group 0: i0..i7)
        answer = {f"i{j}" for j in range(8)} - set(history)
        m = len(answer)
        others = [u for u in data.users if u != target]
        served_before = without.recommend_batch(others, n=m)
        released = (None if without.personalised else  # the whole ranking, as anyone sees it
                    [(r.item, r.score) for r in without.recommend("someone-new", n=data.n_items)])
        without.fold_in(target, history)
        folded_recs = without.recommend(target, n=m, exclude_seen=True)
        folded = set(_items(folded_recs))
        assert len(folded) == m and not folded & set(history)
        if self.pooled_release_is_fixed:
            # fold-in released nothing new: everybody else is served exactly as before ...
            assert without.recommend_batch(others, n=m) == served_before
            if released is not None:  # ... and the person the released scores, less their own
                assert [(r.item, r.score) for r in folded_recs] == [
                    (i, score) for i, score in released if i not in history][:m]
        if overlap is not None:
            refit = self.make_model().fit(data)
            full = set(_items(refit.recommend(target, n=m, exclude_seen=True)))
            assert len(folded & full) / m >= overlap
            if without.personalised:
                assert len(folded & answer) / m >= overlap
        if not self.fold_in_is_serving_solve:
            return
        # folding in a known person with their own history is a no-op for the ranking
        again = self.make_model().fit(data)
        before = again.recommend(target, n=5)
        again.fold_in(target, history)
        assert _items(again.recommend(target, n=5)) == _items(before)

    def test_fold_in_edge_cases(self, fitted: Recommender) -> None:
        fitted.fold_in("new", ["i0", "i0", "i1"])  # duplicates are summed
        assert fitted_history(fitted, "new") == {"i0": 2.0, "i1": 1.0}
        fitted.fold_in("empty", [])
        recs = fitted.recommend("empty", n=3)
        assert len(recs) == 3
        with pytest.raises(UnknownItemError, match="unknown_items"):
            fitted.fold_in("x", {"no-such-item": 1.0})
        fitted.fold_in("x", {"no-such-item": 1.0, "i2": 1.0}, unknown_items="ignore")
        assert fitted_history(fitted, "x") == {"i2": 1.0}
        with pytest.raises(ValidationError):
            fitted.fold_in("x", {"i2": -1.0})
        for bad in (7.5, True):  # not ids (an int is: the id rule)
            with pytest.raises(ValidationError, match="id"):
                fitted.fold_in(bad, ["i1"])  # type: ignore[arg-type]


def fitted_history(model: Recommender, user: str) -> dict[str, float]:
    """The history the model holds for ``user`` (item → confidence)."""
    if not model.has_user(user):
        raise UnknownUserError(f"{user!r} has no row in the fitted model")
    h = model.history_
    r = int(np.flatnonzero(model.users_ == user)[0])
    a, b = h.indptr[r], h.indptr[r + 1]
    pairs = zip(h.indices[a:b], h.data[a:b], strict=True)
    return {str(model.items_[j]): float(c) for j, c in pairs}
