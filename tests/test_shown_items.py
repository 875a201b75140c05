"""What a shown record keeps of a served list is what its explanations say when read."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from persona.data import Interactions
from persona.explain import shown_items
from persona.models import ALS, BPR, ItemKNN, Popularity
from persona.store import Store

KEY = b"k" * 32
#: A store under ``KEY``: its ``reasons_digest`` is the keyed digest a shown record keeps.
STORE = Store(":memory:", pseudonym_key=KEY)
TITLES = ["Wooden Picture Frame White Finish", "Set/2 Red Retrospot Tea Towels",
          "東京タワー ペーパーウェイト", "Doormat", "🍵 Tea", "مصباح", "Lamp", "Lamp"]


def _data(seed: int = 3) -> Interactions:
    rng = np.random.default_rng(seed)
    dense = (rng.random((60, 40)) < 0.15).astype(float)
    dense[np.arange(60), np.arange(60) % 40] = 1.0
    return Interactions.from_csr(sp.csr_matrix(dense), [f"u{u}" for u in range(60)],
                                 [f"i{i}" for i in range(40)])


MODELS = {
    "ALS": lambda: ALS(factors=6, iterations=8, random_state=0),
    "ItemKNN": lambda: ItemKNN(neighbours=10),
    "BPR": lambda: BPR(factors=6, iterations=30, random_state=0, num_threads=1),
    "Popularity": lambda: Popularity(),
}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("detail", ["summary", "full"])
def test_rows_are_the_read_explanations(name: str, detail: str) -> None:
    X = _data()
    model = MODELS[name]().fit(X)
    model.set_item_labels({f"i{i}": TITLES[i % len(TITLES)] for i in range(40)})
    for u in X.users[:30]:
        for exclude_seen in (True, False):  # seen items have their own sentence
            recs = model.recommend(u, n=8, detail=detail, exclude_seen=exclude_seen)
            rows = shown_items(recs)  # before anything is read
            full = model.recommend(u, n=8, detail="full", exclude_seen=exclude_seen)
            for row, r, f in zip(rows, recs, full, strict=True):
                e = r.explanation
                assert (row["item"], row["rank"], row["score"]) == (r.item, r.rank, r.score)
                assert row["text"] == e.text == f.explanation.text
                assert row["label"] == e.label and row["kind"] == e.kind
                assert STORE.reasons_digest(row["reasons"]) == STORE.reasons_digest(
                    list(f.explanation.reasons))
            # once read, the rows come from the read explanations: the same
            after = shown_items(recs)
            for a, b in zip(after, rows, strict=True):
                assert {k: v for k, v in a.items() if k != "reasons"} == {
                    k: v for k, v in b.items() if k != "reasons"}
                assert STORE.reasons_digest(a["reasons"]) == STORE.reasons_digest(b["reasons"])


def test_items_without_explanations_are_kept_without_text() -> None:
    model = ALS(factors=4, iterations=5, random_state=0).fit(_data())
    recs = model.recommend("u1", n=3, explain=False)
    rows = shown_items(recs)
    assert [x["text"] for x in rows] == [None] * 3
    assert [x["item"] for x in rows] == [r.item for r in recs]


@pytest.mark.parametrize("detail", ["summary", "full"])
def test_a_served_list_is_freed_when_dropped_read_or_not(detail: str) -> None:
    """No reference cycle: a service drops each response, and it must go then, not wait
    for the cyclic garbage collector (whose full passes are the serving tail)."""
    import gc
    import weakref

    model = ALS(factors=4, iterations=5, random_state=0).fit(_data())
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for read in (False, True):
            recs = model.recommend("u2", n=5, detail=detail)
            if read:
                _ = [r.explanation.text for r in recs] + [recs.model_dump_json()]
            shown_items(recs)
            refs = [weakref.ref(r.explanation) for r in recs]
            del recs
            assert [r() for r in refs] == [None] * 5, (detail, read)
    finally:
        if enabled:
            gc.enable()
