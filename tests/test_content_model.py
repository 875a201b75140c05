"""ContentKNN: item neighbours from public item text, and the Personalizer's model choice
from public inputs (issue 20).

The privacy claim of a text-only private fit is ε = 0: what it releases about the pool of
people must not depend on any one of them at all. Its audit is exact: the model fitted on
neighbouring data sets (one person added) serves everybody else the same list, scores and
explanation text, and releases the same similarities.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import scipy.sparse as sp

import persona
from persona.data import Interactions
from persona.errors import PersonaError, ValidationError
from persona.models import ALS, ContentKNN
from persona.models import load as load_model
from persona.personalizer import CHOICE_SHARE, COUNT_SHARE
from persona.privacy import DP
from persona.privacy.accounting import rho_budget
from persona.testing import block_interactions

TEXT = {f"i{j}": f"{('kitchen', 'garden', 'office')[j // 8]} product {j}" for j in range(24)}


def _people(rows: list[list[int]], n_items: int = 24) -> Interactions:
    X = sp.lil_matrix((len(rows), n_items))
    for u, items in enumerate(rows):
        for j in items:
            X[u, j] = 1.0
    return Interactions.from_csr(sp.csr_matrix(X), [f"u{u}" for u in range(len(rows))],
                                 [f"i{j}" for j in range(n_items)])


# ------------------------------------------------------------------------- the text part
def test_text_similarity_is_tfidf_cosine_of_shared_words() -> None:
    texts = ["red tea mug", "red tea cup", "wool scarf", ""]
    X = Interactions.from_csr(sp.csr_matrix(np.eye(4)), list("wxyz"), list("abcd"))
    model = ContentKNN(item_text=dict(zip("abcd", texts, strict=True)), neighbours=4,
                       ngrams=1, collaborative=0.0).fit(X)
    dense = model.similarity_.toarray()
    assert np.allclose(dense, dense.T)
    assert np.allclose(np.diag(dense), 1.0)  # every item its own most similar, text or not
    assert dense[0, 1] > 0.4 and dense[0, 2] == 0 and dense[3, :3].sum() == 0
    # idf: "red" and "tea" are in 2 of 4 texts, "mug"/"cup" in 1; cos = 2 w² / (2 w² + v²)
    w, v = np.log(5 / 3) + 1, np.log(5 / 2) + 1
    assert dense[0, 1] == pytest.approx(2 * w**2 / (2 * w**2 + v**2))


def test_neighbours_keep_the_best_per_item() -> None:
    text = {f"i{j}": f"shared word{j % 5}" for j in range(24)}
    model = ContentKNN(item_text=text, neighbours=3, collaborative=0.0).fit(_people([[0]]))
    assert (np.diff(model.similarity_.indptr) <= 3).all()


def test_scores_are_the_history_times_the_similarities_and_explanations_add_up() -> None:
    model = ContentKNN(item_text=TEXT, neighbours=10, collaborative=0.0).fit(
        block_interactions())
    recs = model.recommend("u0", n=5)
    h = model.history_[0].toarray()[0]
    for r in recs:
        j = int(r.item[1:])
        assert r.score == pytest.approx(float(h @ model.similarity_[:, j].toarray()[:, 0]))
        assert r.explanation is not None
        assert sum(x.contribution for x in r.explanation.reasons) + \
            r.explanation.rest.contribution == pytest.approx(r.score)
        assert all(int(x.item[1:]) // 8 == 0 for x in r.explanation.reasons)


# ---------------------------------------------------------------- privacy: the ε = 0 claim
@pytest.mark.parametrize("collaborative", ["auto", 0.0])
def test_text_only_private_fit_does_not_depend_on_anyone(collaborative: object) -> None:
    """Neighbouring data sets (one person added, with many items): the release and every
    other person's served list, scores and explanation text are identical (an exact audit of
    ε = 0; any pooling of people, even at 2× the noise, would change them)."""
    rng = np.random.default_rng(0)
    rows = [sorted(rng.choice(24, size=int(rng.integers(2, 8)), replace=False).tolist())
            for _ in range(40)]
    extra = list(range(0, 24, 2))
    cfg = DP(epsilon=1.0, delta=1e-6, max_events_per_person=16)
    d = ContentKNN(item_text=TEXT, collaborative=collaborative, privacy=cfg).fit(_people(rows))
    d_prime = ContentKNN(item_text=TEXT, collaborative=collaborative, privacy=cfg).fit(
        _people([*rows, extra]))
    assert d.privacy_spent_ is not None and d.privacy_spent_.epsilon == 0.0
    assert d.privacy_spent_.delta == 0.0 and d.privacy_spent_.mechanism == "public-features"
    assert (d.similarity_ != d_prime.similarity_).nnz == 0
    for u in d.users_:
        a, b = d.recommend(u, n=10), d_prime.recommend(u, n=10)
        assert [(r.item, r.score) for r in a] == [(r.item, r.score) for r in b]
        assert [r.explanation.text for r in a] == [r.explanation.text for r in b]  # type: ignore[union-attr]


def test_the_blend_spends_the_cooccurrence_release_and_is_its_post_processing() -> None:
    cfg = DP(epsilon=8.0, delta=1e-6, max_events_per_person=8)
    model = ContentKNN(item_text=TEXT, neighbours=10, privacy=cfg).fit(block_interactions())
    assert model.collaborative_ == 2.0  # "auto" at ε = 8: public inputs only
    spent = model.privacy_spent_
    assert spent is not None and spent.mechanism == "dp-cooccurrence"
    assert 0 < spent.epsilon <= 8.0
    # the documented recipe (ItemKNN's): S_ij = C_ij / sqrt(d_i d_j) for C_ij above 3σ,
    # d = max(diag C, 30σ, 1), S_ii = 1, the 10 largest per row; added with weight 2
    C, sigma = np.asarray(model.cooccurrence_), spent.noise["scale"]
    d = np.sqrt(np.maximum(np.diag(C), max(1.0, 30 * sigma)))
    cos = np.where(3 * sigma < C, C, 0.0) / d[:, None] / d[None, :]
    np.fill_diagonal(cos, 1.0)
    blend = (model.similarity_ - model.text_similarity_).toarray() / 2.0
    kept = blend != 0
    assert np.allclose(blend[kept], cos[kept])
    assert (kept.sum(axis=1) <= 10).all() and np.allclose(np.diag(blend), 1.0)
    for i in range(cos.shape[0]):  # the kept ones are the row's largest
        assert cos[i][~kept[i]].max(initial=0.0) <= cos[i][kept[i]].min() + 1e-12


def test_auto_weight_depends_on_epsilon_only() -> None:
    X = block_interactions()
    got = []
    for eps in (0.5, 1.0, 1.99, 2.0, 4.0, 8.0, 16.0, 64.0):
        m = ContentKNN(item_text=TEXT, privacy=DP(epsilon=eps, max_events_per_person=8)).fit(X)
        got.append(m.collaborative_)
    assert got == [0.0, 0.0, 0.0, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert ContentKNN(item_text=TEXT).fit(X).collaborative_ == 1.0


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("params", [
    {"item_text": "i0 red mug"},
    {"item_text": ["i0 red mug"]},
    {"item_text": {"i0": 3}},
    {"item_text": TEXT, "collaborative": True},
    {"item_text": TEXT, "collaborative": -1.0},
    {"item_text": TEXT, "collaborative": "some"},
    {"item_text": TEXT, "collaborative": float("nan")},
    {"item_text": TEXT, "ngrams": 0},
    {"item_text": TEXT, "ngrams": True},
    {"item_text": TEXT, "neighbours": 0},
])
def test_bad_settings_are_refused_with_the_field(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as info:
        ContentKNN(**params).fit(block_interactions())  # type: ignore[arg-type]
    assert info.value.errors
    assert info.value.errors[0]["field"].split(".")[0] in params


def test_fit_without_text_says_how_to_give_it() -> None:
    with pytest.raises(ValidationError, match=r"item_text=.*label_items"):
        ContentKNN().fit(block_interactions())


# ----------------------------------------------------------------------- model files
def test_save_and_load_serve_the_same(tmp_path: object) -> None:
    model = ContentKNN(item_text=TEXT, neighbours=10).fit(block_interactions())
    path = str(tmp_path) + "/m"  # type: ignore[operator]
    model.save(path)
    back = load_model(path)
    assert isinstance(back, ContentKNN) and back.collaborative_ == model.collaborative_
    assert (back.text_similarity_ != model.text_similarity_).nnz == 0
    for u in ("u0", "u21", "u45"):
        assert [(r.item, r.score) for r in back.recommend(u)] == \
            [(r.item, r.score) for r in model.recommend(u)]


# --------------------------------------------------------------- the Personalizer's choice
def _store(labels: bool, people: int = 30) -> persona.Store:
    store = persona.Store(":memory:")
    store.define_purpose("personalization", description="Suggest products")
    store.define_feature("purchases", purposes=["personalization"],
                         category="purchase history", retention_days=None)
    store.define_items([f"i{j}" for j in range(24)])
    if labels:
        store.label_items(TEXT)
    X = block_interactions(users_per_group=people // 3)
    at = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    events = []
    for u in range(X.shape[0]):
        user = str(X.users[u])
        store.grant(user, "personalization", source="signup form")
        row = X.matrix[u]
        events += [{"user": user, "item": str(X.items[j]), "feature": "purchases", "at": at}
                   for j in row.indices]
    store.ingest(events)
    return store


def test_without_privacy_the_default_stays_als() -> None:
    p = persona.Personalizer(_store(True)).fit()
    assert type(p.model_) is ALS and p.choice_ is None


def test_a_private_personalizer_chooses_by_charged_noisy_validation() -> None:
    """Enough people, text that matches what they buy and a large ε: a personalised model
    is chosen; every release is charged and they add up to at most the privacy."""
    store = _store(True, people=300)
    cfg = DP(epsilon=8.0, delta=1e-6, max_events_per_person=8)
    p = persona.Personalizer(store, privacy=cfg).fit()
    choice = p.choice_
    assert choice is not None and choice.candidates == ("Popularity", "ALS", "ContentKNN")
    # on the block fixture ALS and the text both find each person's group (popularity
    # cannot): either may be chosen, never popularity, always the largest noisy gain
    assert choice.chosen in ("ALS", "ContentKNN") and set(choice.gains) == {"ALS", "ContentKNN"}
    assert choice.gains[choice.chosen] == max(choice.gains.values())
    assert choice.gains[choice.chosen] > choice.margin
    assert choice.margin == pytest.approx(2 * choice.noise_scale)
    assert type(p.model_).__name__ == choice.chosen
    assert type(p.model) is type(p.model_) and p.model.privacy is None  # the template
    # every release composed in zCDP: one charge, the whole (ε, δ) and no more
    [charge] = store.privacy_charges("personalization")
    assert charge.mechanism == ("dp-item-counts + dp-people-count + dp-als + public-features"
                                " + dp-model-choice")
    assert 0.999 * cfg.epsilon <= charge.epsilon <= cfg.epsilon and charge.delta == cfg.delta
    rho = rho_budget(cfg.epsilon, cfg.delta)
    assert choice.spent.rho == pytest.approx(CHOICE_SHARE * rho, rel=1e-3)
    # the rest of ρ (less the gains and the count of people): a sixth to popularity, the
    # rest to ALS
    left = 1 - CHOICE_SHARE - COUNT_SHARE
    assert p.fallback_.privacy_spent_.rho == pytest.approx(left / 6 * rho, rel=1e-3)
    assert choice.people == pytest.approx(300, abs=50)  # noise scale about 7
    assert charge.rho == pytest.approx(rho, rel=1e-3)
    assert "private validation" in choice.describe()
    # the held-out items are back in each person's own history: nobody is served an item
    # they have, and the served model knows every item each person has
    X, model = block_interactions(users_per_group=100), p.model_
    for row in (0, 101, 250):
        user = str(X.users[row])
        own = set(X.items[X.matrix[row].indices].tolist())
        kept = model.history_[model.users_.tolist().index(user)]
        assert set(model.items_[kept.indices].tolist()) == own
        assert not own & {r.item for r in p.recommend(user, n=10)}


def test_the_served_model_is_never_below_popularity_in_its_own_measurement() -> None:
    """Few people and a small ε: the noisy gains decide, whatever they say; a model
    replaces popularity only with the largest gain, above the margin, and below
    a model share of ε = 6 private ALS is no candidate: its share goes to popularity."""
    for _ in range(3):
        store = _store(True, people=30)
        cfg = DP(epsilon=1.0, delta=1e-6, max_events_per_person=8)
        p = persona.Personalizer(store, privacy=cfg).fit()
        choice = p.choice_
        assert choice is not None and choice.candidates == ("Popularity", "ContentKNN")
        others = max(choice.gains.values())
        if choice.chosen == "Popularity":
            assert others <= choice.margin
        else:
            assert choice.gains[choice.chosen] == others
            assert others > choice.margin
        assert type(p.model_).__name__ == choice.chosen
        if choice.chosen == "Popularity":
            assert p.model_ is not p.fallback_
        [charge] = store.privacy_charges("personalization")
        assert charge.mechanism == "dp-item-counts + public-features + dp-model-choice"
        rho = rho_budget(cfg.epsilon, cfg.delta)
        assert p.fallback_.privacy_spent_.rho == pytest.approx((1 - CHOICE_SHARE) * rho,
                                                               rel=1e-3)
        assert choice.spent.rho == pytest.approx(CHOICE_SHARE * rho, rel=1e-3)
        assert charge.epsilon <= cfg.epsilon


def test_without_labels_the_candidates_are_als_and_popularity() -> None:
    p = persona.Personalizer(_store(False, people=60), privacy=DP(
        epsilon=8.0, delta=1e-6, max_events_per_person=8)).fit()
    assert p.choice_ is not None and p.choice_.candidates == ("Popularity", "ALS")


def test_the_gains_are_the_audited_count_release_with_one_per_person_and_candidate() -> None:
    """The validation gains go through private_item_counts (signed; audited in
    test_privacy_audit.py) with each person moving each sum by at most 1: its plan for that
    bound is exactly what the choice spent."""
    from persona.privacy import plan_item_counts

    store = _store(True, people=60)
    cfg = DP(epsilon=8.0, delta=1e-6, max_events_per_person=8)
    p = persona.Personalizer(store, privacy=cfg).fit()
    assert p.choice_ is not None and len(p.choice_.candidates) == 3
    choice_dp = cfg.for_rho(CHOICE_SHARE * rho_budget(cfg.epsilon, cfg.delta))
    plan = plan_item_counts(2, DP(epsilon=choice_dp.epsilon, delta=choice_dp.delta,
                                  max_events_per_person=2, max_value=1.0))
    assert p.choice_.spent.model_copy(update={"mechanism": plan.mechanism}) == plan
    assert p.choice_.noise_scale == plan.noise["scale"]


def test_personalizer_refuses_a_text_model_without_labels_before_reserving() -> None:
    store = _store(False)
    cfg = DP(epsilon=1.0, delta=1e-6, max_events_per_person=8)
    p = persona.Personalizer(store, model=ContentKNN(), privacy=cfg)
    with pytest.raises(PersonaError, match="label_items") as info:
        p.fit()
    assert str(info.value) == (
        "ContentKNN reads the items' public text, and the store has no item labels: label "
        "the items with store.label_items({item: title, ...}) or pass item_text={...} to the "
        "model")
    assert info.value.errors == [{"row": None, "field": "item_text",
                                  "message": "no item labels"}]
    assert store.privacy_charges("personalization") == []
    # nothing was reserved: the budget (by default one fit's worth) still pays for a fit
    store.label_items(TEXT)
    p.fit()
    assert type(p.model_) is ContentKNN


# --------------------------------------------------------------- the text part, exactly
def _reference(texts: list[str], k: int, ngrams: int) -> np.ndarray:
    """TF-IDF cosine written out densely: words (casefolded, split at anything but letters
    and digits) and their adjacent runs up to ``ngrams``; idf = ln((1 + n) / (1 + df)) + 1."""
    import re

    docs = []
    for t in texts:
        w = re.findall(r"[^\W_]+", t.casefold())
        docs.append(set(w) | {" ".join(w[i:i + m]) for m in range(2, ngrams + 1)
                              for i in range(len(w) - m + 1)})
    vocab = sorted(set().union(*docs)) if docs else []
    M = np.array([[f in d for f in vocab] for d in docs], dtype=float).reshape(len(docs), -1)
    idf = np.log((1 + len(docs)) / (1 + M.sum(axis=0))) + 1
    M = M * idf
    norms = np.linalg.norm(M, axis=1)
    M = M / np.where(norms > 0, norms, 1)[:, None]
    S = M @ M.T
    np.fill_diagonal(S, 1.0)
    return S


@pytest.mark.parametrize("ngrams", [1, 2, 3])
@pytest.mark.parametrize("block_cells", [1, 30, 1 << 24])
def test_text_similarity_is_the_written_out_tfidf_cosine(ngrams: int, block_cells: int) -> None:
    from persona.models import text_similarity

    rng = np.random.default_rng(ngrams)
    words = ["Red", "mug", "blue", "TEA", "cup", "wool", "scarf", "straße", "set_of"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 6)))) for _ in range(13)]
    texts[3] = "red tea mug and blue tea cup"
    texts[4] = "blue tea cup and red tea mug"  # the same words, other pairs and triples
    for k in (1, 4, 13):
        S = text_similarity(texts, k, ngrams, block_cells=block_cells)
        ref = _reference(texts, k, ngrams)
        assert S.shape == (13, 13)
        dense = S.toarray()
        for i in range(13):
            kept = np.flatnonzero(dense[i])
            # itself among them, unless a text with the very same words took its place
            assert len(kept) <= k and (i in kept or ref[i, kept].min() >= 1 - 1e-9)
            assert np.allclose(dense[i, kept], ref[i, kept])
            # the kept ones are the row's k largest (ties may go either way)
            top = np.sort(ref[i])[::-1][:k]
            assert np.allclose(np.sort(np.concatenate([dense[i, kept],
                                                       np.zeros(k - len(kept))]))[::-1],
                               np.where(top > 0, top, 0.0))
    two = text_similarity(texts, 13, ngrams).toarray()[3, 4]
    assert bool(two == pytest.approx(1.0)) is (ngrams == 1)


def test_text_similarity_of_no_items_is_empty() -> None:
    from persona.models import text_similarity

    assert text_similarity([], 5).shape == (0, 0)
    assert text_similarity(["", ""], 5).toarray().tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_defaults_are_the_documented_ones() -> None:
    params = ContentKNN().get_params()
    assert {k: params[k] for k in ("item_text", "neighbours", "ngrams", "collaborative",
                                   "num_threads", "head", "privacy", "show_progress")} == {
        "item_text": None, "neighbours": 50, "ngrams": 2, "collaborative": "auto",
        "num_threads": 0, "head": 1000, "privacy": None, "show_progress": None}


def test_the_non_private_blend_is_text_plus_the_weighted_item_cosine() -> None:
    from persona.models import ItemKNN

    X = block_interactions()
    knn = ItemKNN(neighbours=10, head=None).fit(X)
    for w in (1.0, 2.5):
        model = ContentKNN(item_text=TEXT, neighbours=10, collaborative=w).fit(X)
        expected = model.text_similarity_.toarray() + w * knn.similarity_.toarray()
        assert np.allclose(model.similarity_.toarray(), expected)
        model.forget("u0")  # recomputed without them, blend and all
        again = ItemKNN(neighbours=10, head=None).fit(X)
        again.forget("u0")
        assert np.allclose(model.similarity_.toarray(),
                           model.text_similarity_.toarray() + w * again.similarity_.toarray())
    text_only = ContentKNN(item_text=TEXT, neighbours=10, collaborative=0.0).fit(X)
    assert (text_only.similarity_ != text_only.text_similarity_).nnz == 0


def test_a_text_given_to_the_model_is_kept_over_the_store_labels() -> None:
    store = _store(True)
    own = {f"i{j}": f"own title {j % 3}" for j in range(24)}
    p = persona.Personalizer(store, model=ContentKNN(item_text=own)).fit()
    assert p.model_.item_text == own  # type: ignore[attr-defined]
    assert p.model.item_text == own  # type: ignore[attr-defined]  (the template unchanged)


def test_a_personalizer_with_the_text_model_serves_it_and_charges_nothing_for_it() -> None:
    store = _store(True)
    cfg = DP(epsilon=1.0, delta=1e-6, max_events_per_person=8)
    p = persona.Personalizer(store, model=ContentKNN(), privacy=cfg).fit()
    assert p.model_.item_text == TEXT  # type: ignore[attr-defined]  (the store's labels)
    assert p.model.item_text is None  # type: ignore[attr-defined]  (the template unchanged)
    charges = {c.mechanism: c.epsilon for c in store.privacy_charges("personalization")}
    assert charges["public-features"] == 0.0
    rec = p.recommend("u0", n=3)
    assert rec and all(int(r.item[1:]) < 8 for r in rec)  # u0's group: kitchen


def test_text_similarity_keeps_the_top_k_of_a_long_row() -> None:
    """numpy sorts short rows whole; 60 items make the partition's cut matter."""
    from persona.models import text_similarity

    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(25)]
    texts = [" ".join(rng.choice(words, size=4)) for _ in range(60)]
    for k in (2, 5, 9):
        dense = text_similarity(texts, k, 1).toarray()
        ref = _reference(texts, k, 1)
        for i in range(60):
            kept = np.flatnonzero(dense[i])
            top = np.sort(ref[i])[::-1][:k]
            got = np.sort(dense[i, kept])[::-1]
            assert np.allclose(np.pad(got, (0, k - len(got))), np.where(top > 0, top, 0))
    assert (text_similarity(texts, 5) != text_similarity(texts, 5, 2)).nnz == 0  # default 2


def test_private_text_only_fit_states_what_it_released() -> None:
    X = block_interactions()
    model = ContentKNN(item_text=TEXT, ngrams=1, collaborative=0.0,
                       privacy=DP(epsilon=1.0)).fit(X)
    spent = model.privacy_spent_
    assert spent is not None and spent.rho == 0.0
    assert spent.accounting == ("nothing pooled across people is released: the similarities "
                                "come from the catalogue's public text")
    assert model.head_ is None and model.head_counts_ is None
    from persona.models import text_similarity

    texts = [TEXT[i] for i in model.items_.tolist()]
    assert (model.text_similarity_ != text_similarity(texts, 50, 1)).nnz == 0  # ngrams kept
    plain = ContentKNN(item_text=TEXT).fit(X)
    assert plain.head_ is None and plain.head_counts_ is None


def test_a_text_only_model_file_loads() -> None:
    import tempfile

    model = ContentKNN(item_text=TEXT, collaborative=0.0).fit(block_interactions())
    with tempfile.TemporaryDirectory() as folder:
        model.save(folder + "/m")
        back = load_model(folder + "/m")
    assert back.collaborative_ == 0.0  # type: ignore[attr-defined]
    assert (back.similarity_ != model.similarity_).nnz == 0


def test_no_text_error_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        ContentKNN(item_text={}).fit(block_interactions())
    assert info.value.errors == [{"row": None, "field": "item_text", "message": "no item text"}]
    assert str(info.value) == (
        "ContentKNN needs the items' public text: pass item_text={item: title, ...} or, "
        "through a Personalizer, label the items with store.label_items({...})")


def test_items_without_text_are_like_nothing_but_themselves() -> None:
    model = ContentKNN(item_text={"i0": "red mug", "i1": "red mug"}, neighbours=24,
                       collaborative=0.0).fit(block_interactions())
    S = model.similarity_.toarray()
    assert S[0, 1] == pytest.approx(1.0)
    assert np.allclose(S[2:, 2:], np.eye(22))  # no shared "text" among the untitled


def test_a_saved_text_matrix_keeps_its_shape_when_the_last_item_is_a_duplicate() -> None:
    import tempfile

    X = Interactions.from_csr(sp.csr_matrix(np.eye(3)), ["u0", "u1", "u2"], ["a", "b", "c"])
    text = {"a": "red mug", "b": "blue scarf", "c": "blue scarf"}
    model = ContentKNN(item_text=text, neighbours=1, collaborative=0.0).fit(X)
    with tempfile.TemporaryDirectory() as folder:
        model.save(folder + "/m")
        back = load_model(folder + "/m")
    assert back.text_similarity_.shape == (3, 3)  # type: ignore[attr-defined]


def test_a_saved_personalizer_keeps_how_it_chose(tmp_path: object) -> None:
    """The choice is part of what a reviewer reads (p.choice_.describe()): it is saved with
    the Personalizer, covered by the folder's checksum, and None only for a Personalizer
    that chose nothing."""
    import json
    from pathlib import Path

    store = _store(True, people=60)
    p = persona.Personalizer(store, privacy=DP(epsilon=8.0, delta=1e-6,
                                               max_events_per_person=8)).fit()
    assert p.choice_ is not None and p.choice_.people is not None  # the count is kept too
    folder = Path(str(tmp_path)) / "p"
    p.save(folder)
    loaded = persona.Personalizer.load(folder, store)
    assert loaded.choice_ == p.choice_
    assert loaded.choice_ is not None and loaded.choice_.describe() == p.choice_.describe()
    manifest = json.loads((folder / "personalizer.json").read_text())
    manifest["choice"]["margin"] += 1.0  # a reviewer must not read a forged choice
    (folder / "personalizer.json").write_text(json.dumps(manifest))
    with pytest.raises(PersonaError, match="checksum"):
        persona.Personalizer.load(folder, store)
    plain = persona.Personalizer(store).fit()
    plain.save(Path(str(tmp_path)) / "plain")
    assert persona.Personalizer.load(Path(str(tmp_path)) / "plain", store).choice_ is None
