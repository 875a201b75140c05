"""ItemKNN(head=h) under privacy (issue 20): noisy counts choose the head, the
co-occurrences are released among the head items only (h² noisy cells, not items²)."""

from __future__ import annotations

import numpy as np
import pytest

from persona.errors import ValidationError
from persona.models import ItemKNN
from persona.privacy import DP, plan_cooccurrence, plan_item_counts
from persona.testing import block_interactions

CFG = DP(epsilon=8.0, delta=1e-6, max_events_per_person=8)


def test_the_head_is_the_top_of_the_noisy_counts_and_the_rest_is_alone() -> None:
    X = block_interactions()
    # a large ε, so that pairs pass the noise floors and the recipe has something to keep
    big = DP(epsilon=300.0, delta=1e-6, max_events_per_person=8)
    model = ItemKNN(neighbours=5, head=10, privacy=big).fit(X)
    counts = np.asarray(model.head_counts_)
    order = np.argsort(-counts, kind="stable")[:10]
    assert sorted(model.head_.tolist()) == sorted(model.items_[order].tolist())
    inside = np.isin(model.items_, model.head_)
    S = model.similarity_.toarray()
    assert np.allclose(S[~inside][:, ~inside], np.eye(int((~inside).sum())))
    assert not S[~inside][:, inside].any() and not S[inside][:, ~inside].any()
    # within the head: the documented cosine recipe of the released co-occurrences
    C, sigma = np.asarray(model.cooccurrence_), model.privacy_spent_.noise[
        "dp-cooccurrence.scale"]
    assert C.shape == (10, 10)
    d = np.sqrt(np.maximum(np.diag(C), max(1.0, 30 * sigma)))
    cos = np.where(3 * sigma < C, C, 0.0) / d[:, None] / d[None, :]
    np.fill_diagonal(cos, 1.0)
    H = S[np.ix_(inside, inside)]
    kept = H != 0
    assert np.allclose(H[kept], cos[kept])
    for i in range(10):  # exactly the row's 5 largest positive ones (ties either way)
        top = np.sort(cos[i][cos[i] > 0])[::-1][:5]
        assert np.allclose(np.sort(H[i][kept[i]])[::-1], top)
    assert (cos > 0).sum() > 10  # the floors leave pairs, not just the diagonal


def test_the_spend_is_the_counts_plan_plus_the_head_cooccurrence_plan() -> None:
    X = block_interactions()
    model = ItemKNN(neighbours=5, head=10, privacy=CFG).fit(X)
    head_dp, rest_dp = CFG.split(0.1)
    counts, cooc = plan_item_counts(24, head_dp), plan_cooccurrence(10, rest_dp)
    spent = model.privacy_spent_
    assert spent.mechanism == "dp-head-counts + dp-cooccurrence"
    assert spent.epsilon == pytest.approx(counts.epsilon + cooc.epsilon)
    assert spent.delta == pytest.approx(counts.delta + cooc.delta)
    assert spent.epsilon <= CFG.epsilon and spent.delta <= CFG.delta
    assert spent.noise["dp-cooccurrence.scale"] == cooc.noise["scale"]


def test_a_head_as_large_as_the_catalogue_is_no_head() -> None:
    model = ItemKNN(neighbours=5, head=24, privacy=CFG).fit(block_interactions())
    assert model.head_ is None and model.privacy_spent_.mechanism == "dp-cooccurrence"


def test_without_privacy_the_head_changes_nothing() -> None:
    X = block_interactions()
    a = ItemKNN(neighbours=5, head=3).fit(X)  # privacy only
    b = ItemKNN(neighbours=5, head=None).fit(X)
    assert a.head_ is None and (a.similarity_ != b.similarity_).nnz == 0


@pytest.mark.parametrize("head", [0, -3, True, "10", 2.5])
def test_bad_heads_are_refused(head: object) -> None:
    with pytest.raises(ValidationError) as info:
        ItemKNN(head=head, privacy=CFG).fit(block_interactions())  # type: ignore[arg-type]
    assert info.value.errors[0]["field"] == "head"


def test_the_head_is_a_thousand_items_by_default_and_content_knn_uses_it() -> None:
    from persona.models import ContentKNN

    assert ItemKNN().head == 1000 and ContentKNN().head == 1000
    text = {f"i{j}": f"group {j // 8}" for j in range(24)}
    model = ContentKNN(item_text=text, neighbours=5, collaborative=1.0, head=10,
                       privacy=CFG).fit(block_interactions())
    assert model.privacy_spent_.mechanism == "dp-head-counts + dp-cooccurrence"
    assert len(model.head_) == 10 and np.asarray(model.cooccurrence_).shape == (10, 10)
    outside = ~np.isin(model.items_, model.head_)
    blend = (model.similarity_ - model.text_similarity_).toarray()
    assert np.allclose(blend[np.ix_(outside, outside)], np.eye(int(outside.sum())))


def test_bm25_is_refused_under_privacy_with_the_reason() -> None:
    with pytest.raises(ValidationError) as info:
        ItemKNN(measure="bm25", privacy=CFG).fit(block_interactions())
    assert str(info.value) == (
        "ItemKNN(privacy=...) supports measure='cosine' only (BM25 weights depend on every "
        "person's history length); use measure='cosine'")
