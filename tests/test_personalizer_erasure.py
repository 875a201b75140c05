"""Issue 17, point 1: forget and erase reach every copy (model, fallback, saved folders)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

import persona
from store_helpers import Clock, shop

SECRET = "forget-me-5c1e@example.com"


def folder_bytes(folder: Path) -> bytes:
    """Every byte of every file under ``folder``, with the members of npz archives
    unpacked too (so a compressed archive could not hide an id)."""
    out = b""
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        out += path.read_bytes()
        if path.suffix == ".npz":
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    out += z.read(name)
    return out


def holds(raw: bytes, user: str) -> bool:
    """The id in any encoding numpy or JSON could write it in."""
    return any(user.encode(enc) in raw for enc in ("utf-8", "utf-16-le", "utf-32-le"))


def people_shop() -> persona.Store:
    store = shop(clock=Clock())
    people = [SECRET] + [f"p{u}" for u in range(12)]
    events = []
    for k, user in enumerate(people):
        store.grant(user, "personalization", source="signup form")
        for i in range(4):
            events.append({"user": user, "item": f"sku-{(k + i) % 9}", "feature": "purchases",
                           "value": 1.0, "at": "2026-11-01T10:00:00Z"})
    events.append({"user": SECRET, "item": "sku-0", "feature": "views", "value": 1.0,
                   "at": "2026-11-20T10:00:00Z"})
    store.ingest(events)
    return store


@pytest.mark.parametrize(
    "model", [persona.ALS(factors=4, iterations=3, random_state=0), persona.ItemKNN()],
    ids=["als", "itemknn"],
)
def test_a_folder_saved_after_forget_never_holds_the_person(
    model: persona.Recommender, tmp_path: Path
) -> None:
    store = people_shop()
    p = persona.Personalizer(store, model=model).fit()
    before = p.save(tmp_path / "before")
    assert holds(folder_bytes(before), SECRET)  # the scan sees the id while it is held
    assert p.fallback_.has_user(SECRET)

    p.forget(SECRET)
    assert not p.model_.has_user(SECRET) and not p.fallback_.has_user(SECRET)
    assert SECRET not in {str(u) for u in p.fallback_.users_}
    after = p.save(tmp_path / "after")
    assert not holds(folder_bytes(after), SECRET)

    # a folder saved before the erasure, loaded and saved again, is clean too
    old = persona.Personalizer.load(before, store)
    assert not old.model_.has_user(SECRET) and not old.fallback_.has_user(SECRET)
    again = old.save(tmp_path / "again")
    assert not holds(folder_bytes(again), SECRET)
    assert persona.Personalizer.load(again, store).recommend("p1", n=3)


def test_an_erasure_straight_on_the_store_reaches_the_fallback_too(tmp_path: Path) -> None:
    store = people_shop()
    p = persona.Personalizer(store, model=persona.ItemKNN()).fit()
    store.erase(SECRET)  # not through p.forget: the next request and the next save see it
    recs = p.recommend(SECRET, n=3)
    assert recs and recs[0].explanation.kind != "decomposition"
    assert not p.model_.has_user(SECRET) and not p.fallback_.has_user(SECRET)
    assert not holds(folder_bytes(p.save(tmp_path / "m")), SECRET)


def test_withdrawn_people_leave_the_saved_fallback(tmp_path: Path) -> None:
    store = people_shop()
    p = persona.Personalizer(store, model=persona.ItemKNN()).fit()
    store.withdraw(SECRET, "personalization")
    assert not holds(folder_bytes(p.save(tmp_path / "m")), SECRET)
    assert not p.fallback_.has_user(SECRET)


def test_a_fit_racing_a_forget_does_not_bring_the_person_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """forget lands while a fit is between its read and its swap: the swapped-in model and
    fallback must not hold the person."""
    store = people_shop()
    p = persona.Personalizer(store, model=persona.ItemKNN()).fit()
    real = persona.Popularity.fit

    def fit_then_forget(self: persona.Popularity, X: persona.Interactions) -> persona.Popularity:
        out = real(self, X)  # the data has been read with the person in it
        p.forget(SECRET)
        return out

    monkeypatch.setattr(persona.Popularity, "fit", fit_then_forget)
    p.fit()
    monkeypatch.undo()
    assert not p.model_.has_user(SECRET) and not p.fallback_.has_user(SECRET)
