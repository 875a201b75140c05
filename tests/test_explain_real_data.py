"""Issue 5 on real data: for every recommendation of 200 random people of each data set in
../shared/data, the reasons' contributions sum to the served score (1e-6 relative), and the
text obeys the plain-language rules with the data sets' own item titles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explain_helpers import (
    JARGON,
    lastfm,
    movielens,
    online_retail,
    reading_ease,
    sample_people,
    sentences,
    without_labels,
)
from persona.models import ALS, ItemKNN

pytestmark = pytest.mark.slow

LOADERS = {"online-retail": online_retail, "ml-latest-small": movielens, "lastfm": lastfm}


@pytest.fixture(scope="module", params=sorted(LOADERS))
def dataset(request: pytest.FixtureRequest, shared_data: Path):
    X, labels = LOADERS[request.param](shared_data)
    return request.param, X, labels


@pytest.mark.parametrize("make", [
    lambda: ALS(factors=16, iterations=4, random_state=0),
    lambda: ItemKNN(neighbours=50),
], ids=["ALS", "ItemKNN"])
def test_reasons_sum_to_served_score(dataset, make, tmp_path_factory) -> None:
    name, X, labels = dataset
    model = make().fit(X).set_item_labels(labels)
    people = sample_people(X, 200)
    lists = model.recommend_batch(people, n=10, detail="full")
    served = model.recommend_batch(people, n=10)  # the default summary: the same totals
    for recs, short in zip(lists, served, strict=True):
        for r, s in zip(recs, short, strict=True):
            assert s.explanation.text == r.explanation.text
            assert s.explanation.total == pytest.approx(r.score, rel=1e-6, abs=1e-12)
    worst = 0.0
    checked = 0
    folder = tmp_path_factory.getbasetemp() / "nltk"
    for person, recs in zip(people, lists, strict=True):
        assert recs, person
        served = model.score(person, [r.item for r in recs])
        for r, s in zip(recs, served, strict=True):
            e = r.explanation
            assert e.score == r.score
            assert e.kind == "decomposition"
            assert e.label == labels.get(r.item, r.item)
            total = sum(x.contribution for x in e.reasons)
            if r.score == 0:  # an item no neighbour of the history reaches fills the list
                assert e.reasons == [] and total == 0
                continue
            err = abs(total - r.score) / abs(r.score)
            worst = max(worst, err)
            assert err <= 1e-6, (name, person, r.item, total, r.score)
            assert r.score == pytest.approx(float(s), rel=1e-9)
            contributions = [x.contribution for x in e.reasons]
            assert contributions == sorted(contributions, reverse=True)
            checked += 1
        # text rules, with the data set's own titles, on each person's first item
        e = recs[0].explanation
        plain = without_labels(e.text, [e.label, *(x.label for x in e.reasons)]).lower()
        assert sentences(plain) <= 3, e.text
        assert not [w for w in JARGON if w in plain], e.text
    assert checked >= 1000
    # readability: the first and last text of every person scores >= 60
    texts = [recs[k].explanation.text for recs in lists for k in (0, len(recs) - 1)]
    eases = [reading_ease(t, folder) for t in texts]
    low = [(t, s) for t, s in zip(texts, eases, strict=True) if s < 60]
    assert not low, low[:5]
    print(f"{name} {type(model).__name__}: worst relative error {worst:.2e}, "
          f"min ease {min(eases):.1f}")


def test_batch_explanations_equal_single(dataset) -> None:
    _, X, labels = dataset
    model = ALS(factors=8, iterations=2, random_state=0).fit(X).set_item_labels(labels)
    people = sample_people(X, 5, seed=1)
    assert model.recommend_batch(people, n=5) == [model.recommend(p, n=5) for p in people]
    for p in people:
        r = model.recommend(p, n=1, detail="full")[0]
        one = model.explain(p, r.item)
        assert one.score == pytest.approx(r.score, rel=1e-12)
        assert one.rank == 1
        assert np.allclose([x.contribution for x in one.reasons],
                           [x.contribution for x in r.explanation.reasons], rtol=1e-9)
