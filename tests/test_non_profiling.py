"""A per-person non-profiling choice (DSA Art. 38), and blocks on every path (issue 18)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import persona
from store_helpers import Clock, file_rows
from test_personalizer import shop_with_people


def _personalizer(path: str = ":memory:", model: object = None) -> persona.Personalizer:
    store = shop_with_people(clock=Clock(), path=path)
    return persona.Personalizer(
        store, model=model or persona.ALS(factors=8, iterations=10, random_state=0)
    ).fit()


def test_a_person_can_ask_for_a_list_not_based_on_them_without_withdrawing(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "shop.db")
    p = _personalizer(path)
    store = p.store
    personal = p.recommend("p0", n=4)
    assert personal[0].explanation.kind == "decomposition"
    assert store.prefer_non_profiling("p0", source="settings page") is True
    assert store.prefer_non_profiling("p0", source="settings page") is False  # no change
    recs = p.recommend("p0", n=4)
    everyone = p.fallback_.recommend("p0", n=10, explain=False)
    assert [r.item for r in recs] == [
        r.item for r in everyone if r.item not in p.store.scope("personalization")
        .not_interested("p0")][:4]
    for r in recs:
        e = r.explanation
        assert e.kind == "non_personalised" and e.reasons == []
        assert "You asked for a list that is not based on you, so we did not use your " \
               "purchase history." in e.text
        assert {d.reason for d in e.data_not_used} >= {"non_profiling_chosen"}
    assert store.has_consent("p0", "personalization")  # consent stays as it was
    assert "p0" in store.consented("personalization")
    assert p.explain("p0", recs[0].item).kind == "non_personalised"
    exported = store.export("p0")["profiling"]
    assert exported["non_profiling"] and exported["source"] == "settings page"
    actions = [e.action for e in store.audit.entries(subject=store.pseudonym("p0"))]
    assert "prefer_non_profiling" in actions
    store.close()
    again = persona.Store(path, clock=Clock())  # the choice survives reopening
    assert again.prefers_non_profiling("p0")
    q = persona.Personalizer(again, model=persona.ALS(factors=8, iterations=10,
                                                       random_state=0)).fit()
    assert q.recommend("p0", n=2)[0].explanation.kind == "non_personalised"
    assert again.allow_profiling("p0", source="settings page") is True
    assert q.recommend("p0", n=2)[0].explanation.kind == "decomposition"
    assert not again.prefers_non_profiling("p0")
    # each serving read's entry keeps its place against the choice's (group commit)
    assert [e.action for e in again.audit.entries()][-3:] == [
        "scoped_history_read", "allow_profiling", "scoped_history_read"]
    assert again.audit.verify()


def test_a_person_without_data_who_chose_it_is_told_so() -> None:
    p = _personalizer()
    p.store.grant("newcomer", "personalization", source="signup form v3")
    p.store.prefer_non_profiling("newcomer")
    e = p.recommend("newcomer", n=1)[0].explanation
    assert "You asked for a list that is not based on you" in e.text


def test_the_choice_is_erased_with_the_person_and_refused_after(tmp_path: Path) -> None:
    p = _personalizer(str(tmp_path / "shop.db"))
    store = p.store
    store.prefer_non_profiling("p1")
    p.forget("p1")
    assert file_rows(store, "SELECT count(*) FROM profiling")[0][0] == 0
    with pytest.raises(persona.SuppressedSubjectError):
        store.prefer_non_profiling("p1")
    assert store.allow_profiling("p1") is False


def test_a_bad_choice_call_changes_nothing() -> None:
    p = _personalizer()
    store = p.store
    before = len(store.audit)
    for bad in ("", None, 3, ["x"]):
        with pytest.raises(persona.ValidationError, match="source"):
            store.prefer_non_profiling("p2", source=bad)  # type: ignore[arg-type]
    with pytest.raises(persona.ValidationError):
        store.prefer_non_profiling(["p2"])  # type: ignore[arg-type]
    assert len(store.audit) == before and not store.prefers_non_profiling("p2")


@pytest.mark.parametrize("model", [
    persona.ALS(factors=8, iterations=10, random_state=0),
    persona.ItemKNN(neighbours=5),
    persona.BPR(factors=8, iterations=20, random_state=0),
])
def test_blocked_items_are_served_on_no_path(model: object, tmp_path: Path) -> None:
    p = _personalizer(model=model)
    top = p.fallback_.recommend("p0", n=1, explain=False)[0].item  # the most popular
    liked = p.recommend("p0", n=1)[0].item  # p0's own top item
    p.curate(block=[top, liked], reason="recalled")
    blocked = {top, liked}
    p.store.grant("fresh", "personalization", source="signup form v3")
    p.store.prefer_non_profiling("p2")
    people = ["p0", "p1", "p39", "p2", "fresh", "nobody"]

    def served_lists(q: persona.Personalizer) -> list[list[str]]:
        out = [[r.item for r in q.recommend(u, n=24)] for u in people]
        out += [[r.item for r in rs] for rs in q.recommend_batch(people, n=24)]
        for part in (q.model_, q.fallback_):
            known = [u for u in people if part.has_user(u)] or ["p0"]
            if not part.personalised:
                known = people
            out += [[r.item for r in part.recommend(u, n=24, explain=False)] for u in known]
            out += [[r.item for r in rs] for rs in part.recommend_batch(known, n=24)]
            arrays = part.recommend_arrays(known, n=24)
            out += [[i for i in row if i is not None] for row in arrays.items.tolist()]
            out.append([r.item for r in part.similar_items("sku-5", n=23)])
        return out

    for lists in (served_lists(p),):
        assert all(not blocked & set(items) for items in lists)
    assert p.model_.blocked_ == p.fallback_.blocked_ == frozenset(blocked)
    p.save(tmp_path / "model")
    q = persona.Personalizer.load(tmp_path / "model", p.store)
    assert all(not blocked & set(items) for items in served_lists(q))
    p.fit()  # a refit keeps the curation's block in the new models
    assert all(not blocked & set(items) for items in served_lists(p))
    p.curate(block=[], reason="recall over")
    assert top in {r.item for r in p.fallback_.recommend("p0", n=3, explain=False)}


def test_a_model_refuses_a_block_that_is_not_a_list() -> None:
    p = _personalizer()
    for bad in ("sku-1", b"x", {"sku-1": 1}, 3):
        with pytest.raises(persona.ValidationError, match="list of item ids"):
            p.model_.block(bad)  # type: ignore[arg-type]
    assert p.model_.blocked_ == frozenset()
    p.model_.block(["sku-1", "not-in-the-model"])
    assert "sku-1" not in {r.item for r in p.model_.recommend("p1", n=23, explain=False)}
    assert np.array_equal(
        p.model_.recommend_arrays(["p1"], n=2).lengths, np.array([2]))


def test_the_audit_check_catches_a_choice_edited_behind_its_back(tmp_path: Path) -> None:
    """The profiling table is compared with the audit log's choices: a choice inserted,
    deleted, or kept after its undo or an erasure, directly in the file, is reported."""
    import sqlite3

    path = tmp_path / "shop.db"
    p = _personalizer(str(path))
    store = p.store
    store.prefer_non_profiling("p0", source="settings page")
    store.prefer_non_profiling("p1", source="settings page")
    store.allow_profiling("p1", source="settings page")
    store.prefer_non_profiling("p2", source="settings page")
    store.erase("p2")
    store.flush()
    assert store.audit.verify()
    codes = dict(file_rows(store, "SELECT ext, id FROM subjects"))
    store.close()

    def edited(sql: str, *args: object) -> list[str]:
        con = sqlite3.connect(path)
        with con:
            con.execute(sql, args)
        con.close()
        with persona.Store(path) as again:
            return again.audit.problems()

    assert edited("DELETE FROM profiling WHERE subject_id = ?", codes["p0"])
    assert edited("INSERT INTO profiling(subject_id, at, source) VALUES (?, 0, 'x')",
                  codes["p0"]) == []  # (put back: the file matches its log again)
    assert edited("INSERT INTO profiling(subject_id, at, source) VALUES (?, 0, 'x')",
                  codes["p1"])  # undone, yet held
    assert edited("DELETE FROM profiling WHERE subject_id = ?", codes["p1"]) == []
    assert edited("INSERT INTO profiling(subject_id, at, source) VALUES (?, 0, 'x')",
                  codes["p3"])  # never chosen
