"""Issue 17, point 2: serving applies retention exactly as reads do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import persona
from store_helpers import Clock, shop

# shop(): "purchases" are kept 730 days, "views" 30 days; the clock starts 2026-11-26
VIEWED = {"sku-0", "sku-1"}


def retention_shop(clock: Clock) -> persona.Store:
    """Twelve people who bought; "viewer" only viewed, "mixed" bought and viewed."""
    store = shop(clock=clock)
    events = []
    for u in range(12):
        store.grant(f"p{u}", "personalization", source="signup form")
        for i in range(4):
            events.append({"user": f"p{u}", "item": f"sku-{(u + i) % 8}",
                           "feature": "purchases", "value": 1.0, "at": "2026-11-01T10:00:00Z"})
    for user in ("viewer", "mixed"):
        store.grant(user, "personalization", source="signup form")
        for item in sorted(VIEWED):
            events.append({"user": user, "item": item, "feature": "views", "value": 1.0,
                           "at": "2026-11-20T10:00:00Z"})
    events += [{"user": "mixed", "item": item, "feature": "purchases", "value": 1.0,
                "at": "2026-11-02T10:00:00Z"} for item in ("sku-4", "sku-5")]
    store.ingest(events)
    return store


def count_folds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The people re-folded from here on, in order."""
    folds: list[str] = []
    real = persona.Personalizer._fold_in

    def counting(self: persona.Personalizer, state: object, user: str, cols: object) -> None:
        folds.append(user)
        real(self, state, user, cols)  # type: ignore[arg-type]

    monkeypatch.setattr(persona.Personalizer, "_fold_in", counting)
    return folds


def cited(recs: list[persona.Recommendation]) -> set[str]:
    return {x.item for r in recs for x in r.explanation.reasons if x.item is not None}


@pytest.mark.parametrize(
    "model", [persona.ItemKNN(), persona.ALS(factors=4, iterations=3, random_state=0)],
    ids=["itemknn", "als"],
)
def test_expired_data_gives_the_non_personalised_list_with_its_reason(
    model: persona.Recommender,
) -> None:
    clock = Clock()
    store = retention_shop(clock)
    p = persona.Personalizer(store, model=model).fit()
    recs = p.recommend("viewer", n=3)
    assert recs[0].explanation.kind != "non_personalised"  # personal while the views last

    clock.advance(days=40)  # past the 30 days of "views"
    assert len(store.scope("personalization").history("viewer")) == 0
    recs = p.recommend("viewer", n=3)
    popular = [r.item for r in p.fallback_.recommend("anyone", n=3)]
    assert [r.item for r in recs] == popular
    e = recs[0].explanation
    assert e.kind == "non_personalised"
    assert [d.reason for d in e.data_not_used if d.feature == "views"] == ["outside_retention"]
    assert not cited(recs) & VIEWED


@pytest.mark.parametrize(
    "model", [persona.ItemKNN(), persona.ALS(factors=4, iterations=3, random_state=0)],
    ids=["itemknn", "als"],
)
def test_partly_expired_data_is_no_longer_used_to_serve_or_explain(
    model: persona.Recommender,
) -> None:
    clock = Clock()
    store = retention_shop(clock)
    p = persona.Personalizer(store, model=model).fit()
    p.recommend("mixed", n=5)
    clock.advance(days=40)
    recs = p.recommend("mixed", n=5)
    e = recs[0].explanation
    assert e.kind != "non_personalised"
    assert {d.feature for d in e.data_used} == {"purchases"}
    assert not cited(recs) & VIEWED  # the expired views neither explain nor score
    row = p.model_.history_[list(p.model_.users_).index("mixed")]
    assert {str(p.model_.items_[k]) for k in row.indices} == {"sku-4", "sku-5"}


def test_a_loaded_personalizer_applies_retention_too(tmp_path: Path) -> None:
    clock = Clock()
    store = retention_shop(clock)
    folder = persona.Personalizer(store, model=persona.ItemKNN()).fit().save(tmp_path / "m")
    clock.advance(days=40)
    p = persona.Personalizer.load(folder, store)
    assert p.recommend("viewer", n=3)[0].explanation.kind == "non_personalised"
    assert not cited(p.recommend("mixed", n=5)) & VIEWED


def test_a_person_whose_data_did_not_change_is_served_from_the_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check costs no re-fold while nothing changed: the fit's record of each person's
    data matches what their lineage reads (and a re-folded person's matches next time)."""
    clock = Clock()
    store = retention_shop(clock)
    p = persona.Personalizer(store, model=persona.ALS(factors=4, iterations=3,
                                                       random_state=0)).fit()
    folds = count_folds(monkeypatch)
    for user in ("p0", "p5", "mixed", "viewer"):
        p.recommend(user, n=3)
        p.recommend(user, n=3)
    assert folds == []
    clock.advance(days=40)
    for _ in range(2):
        p.recommend("mixed", n=3)
        p.recommend("viewer", n=3)
    assert folds == ["mixed", "viewer"]


def test_explain_applies_retention_like_recommend() -> None:
    clock = Clock()
    store = retention_shop(clock)
    p = persona.Personalizer(store, model=persona.ItemKNN()).fit()
    item = p.recommend("mixed", n=1)[0].item
    clock.advance(days=40)
    assert p.explain("viewer", "sku-3").kind == "non_personalised"
    e = p.explain("mixed", item)
    assert {x.item for x in e.reasons} <= {"sku-4", "sku-5"}


def test_a_loaded_personalizer_serves_unchanged_people_from_the_saved_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a restart (save, load) a person whose data did not change is served from the
    saved rows: no second read of their history, no re-fold (each cost a read with its
    own commit on every person's first request); one whose data changed is re-folded."""
    clock = Clock()
    store = retention_shop(clock)
    model = persona.ALS(factors=4, iterations=3, random_state=0)
    folder = persona.Personalizer(store, model=model).fit().save(tmp_path / "m")
    store.ingest([{"user": "p3", "item": "sku-7", "feature": "purchases", "value": 1.0,
                   "at": "2026-11-25T10:00:00Z"}])  # p3 bought again since the save
    p = persona.Personalizer.load(folder, store)
    folds = count_folds(monkeypatch)
    for user in ("p0", "p5", "mixed", "viewer", "p3", "p3"):
        assert p.recommend(user, n=3)[0].explanation.kind == "decomposition"
    assert folds == ["p3"]
    clock.advance(days=40)  # past the views' retention: changed for two of them
    for user in ("p0", "mixed", "viewer"):
        p.recommend(user, n=3)
    assert folds == ["p3", "mixed", "viewer"]


def test_an_older_saved_folder_without_its_fit_record_still_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder saved before the fit's record was kept: everyone is re-folded on their
    first request, as then."""
    clock = Clock()
    store = retention_shop(clock)
    model = persona.ALS(factors=4, iterations=3, random_state=0)
    folder = persona.Personalizer(store, model=model).fit().save(tmp_path / "m")
    manifest = json.loads((folder / "personalizer.json").read_text())
    (folder / "basis.npz").unlink()
    del manifest["parts"]["basis.npz"]
    del manifest["sha256"]
    manifest["sha256"] = persona.personalizer._personalizer._checksum(manifest)
    (folder / "personalizer.json").write_text(json.dumps(manifest))
    p = persona.Personalizer.load(folder, store)
    folds = count_folds(monkeypatch)
    for _ in range(2):
        assert p.recommend("p0", n=3)[0].explanation.kind == "decomposition"
    assert folds == ["p0"]


def test_a_loaded_personalizer_has_every_served_vector_solved_like_a_fit(
    tmp_path: Path,
) -> None:
    """As after a fit, no request after a restart pays for solving its person's vector,
    also when someone who withdrew since the save leaves the loaded model (which makes
    the others' vectors be solved again)."""
    store = retention_shop(Clock())
    model = persona.ALS(factors=4, iterations=3, random_state=0)
    fitted = persona.Personalizer(store, model=model).fit()
    assert fitted.model_._solved.all()
    folder = fitted.save(tmp_path / "m")
    p = persona.Personalizer.load(folder, store)
    assert p.model_._solved.all()
    store.withdraw("p2", "personalization")
    p = persona.Personalizer.load(folder, store)
    assert "p2" not in set(p.model_.users_)
    assert p.model_._solved.all()
