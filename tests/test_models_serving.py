"""Serving details: array results, cheap result objects, persistence of lineage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from pydantic import BaseModel

import persona
from persona.data import Interactions
from persona.models import ALS, ItemKNN, Popularity, load
from persona.models._persistence import manifest_checksum
from persona.models._tables import _recommendation
from persona.models._threads import _block_size
from persona.schema import Recommendation
from persona.testing import block_interactions


def test_fast_recommendation_equals_validated_one() -> None:
    fast = _recommendation("sku-1", 0.5, 3)
    slow = Recommendation(item="sku-1", score=0.5, rank=3)
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_fields_set == slow.model_fields_set
    with pytest.raises(Exception, match="frozen"):
        fast.score = 1.0  # type: ignore[misc]


def test_recommendation_validates_input() -> None:
    with pytest.raises(ValueError, match="rank"):
        Recommendation(item="a", score=1.0, rank=0)


def test_recommend_arrays_match_lists_and_pad_short_lists() -> None:
    X = block_interactions()
    model = ALS(factors=8, iterations=5, random_state=0).fit(X)
    users = list(X.users)
    res = model.recommend_arrays(users, n=30)
    lists = model.recommend_batch(users, n=30, explain=False)  # arrays are never explained
    for k, recs in enumerate(lists):
        assert res.lengths[k] == len(recs) == X.n_items - len(X.history(users[k]))
        assert res.items[k, : len(recs)].tolist() == [r.item for r in recs]
        assert res.scores[k, : len(recs)].tolist() == [r.score for r in recs]
        assert all(v is None for v in res.items[k, len(recs):])
        assert np.isnan(res.scores[k, len(recs):]).all()
    assert res.to_lists() == lists


def test_block_size_and_threads_do_not_change_results() -> None:
    X = block_interactions(groups=5, users_per_group=40)
    model = ItemKNN(neighbours=8, num_threads=2).fit(X)
    users = list(X.users)
    a = model.recommend_batch(users, n=7, block_size=5)
    b = model.recommend_batch(users, n=7, block_size=1000)
    model.config_ = model.config_.model_copy(update={"num_threads": 1})
    assert a == b == model.recommend_batch(users, n=7, block_size=3)


class Lineage(BaseModel):
    purpose: str
    features: list[str]


def test_lineage_is_kept_and_saved(tmp_path: Path) -> None:
    X = block_interactions()
    X = Interactions(X.matrix, X.users, X.items,
                     lineage=Lineage(purpose="recs", features=["purchases"]))
    model = Popularity().fit(X)
    assert model.lineage_ is X.lineage
    path = model.save(tmp_path / "pop.model")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["lineage"] == {"purpose": "recs", "features": ["purchases"]}
    assert manifest["format_version"] == 3
    assert manifest["model"] == "Popularity"
    same = load(str(path))  # the generic loader picks the class from the manifest
    assert isinstance(same, Popularity)
    assert same.lineage_ == {"purpose": "recs", "features": ["purchases"]}
    assert same.recommend("anyone") == model.recommend("anyone")


def test_load_restores_a_typed_lineage(tmp_path: Path) -> None:
    """A model fitted on a store's scoped view keeps a persona Lineage; loading its file
    gives the same Lineage back, not the manifest's dict (issue 19)."""
    from store_helpers import shop, two_groups

    store = shop()
    store.define_items([f"sku-{k}" for k in range(1, 7)])
    store.ingest(two_groups(store))
    X = Interactions.from_view(store.scope("personalization"))
    for model in (Popularity().fit(X),
                  Popularity(privacy=persona.DP(epsilon=4.0, max_events_per_person=5)).fit(X)):
        assert isinstance(model.lineage_, persona.schema.Lineage)
        folder = model.save(tmp_path / f"m{model.privacy is None}")
        same = load(str(folder))
        assert isinstance(same.lineage_, persona.schema.Lineage)
        assert same.lineage_ == model.lineage_
        again = load(str(same.save(tmp_path / "again")))  # a loaded model saves it alike
        assert again.lineage_ == model.lineage_


def test_one_registry_names_every_model() -> None:
    from persona.models import BPR, MODELS, ContentKNN, model_class

    assert dict(MODELS) == {"ALS": ALS, "BPR": BPR, "ContentKNN": ContentKNN,
                            "ItemKNN": ItemKNN, "Popularity": Popularity}
    assert model_class("ItemKNN") is ItemKNN and model_class("itemknn") is ItemKNN
    with pytest.raises(persona.ValidationError,
                       match="ALS, BPR, ContentKNN, ItemKNN, Popularity"):
        model_class("SVD")


def test_one_n_rule_for_every_list() -> None:
    """schema.check_top_n is the n rule (issue 19): a positive int, numpy's too, never a
    bool, float or str; the models cut it to the catalogue."""
    from persona.schema import check_top_n

    model = Popularity().fit(block_interactions())
    assert len(model.recommend("anyone", n=np.int64(2))) == 2
    assert check_top_n(np.int32(5)) == 5 and check_top_n(1000, most=1000) == 1000
    for bad in (0, -1, True, 2.0, "3", None):
        with pytest.raises(persona.ValidationError, match="n must be a positive integer"):
            model.recommend("anyone", n=bad)
        with pytest.raises(persona.ValidationError, match="n must be"):
            check_top_n(bad, most=10)
    with pytest.raises(persona.ValidationError, match="from 1 to 10, not 11"):
        check_top_n(11, most=10)


def test_top_level_exports() -> None:
    assert persona.ALS is ALS
    assert persona.Recommendation is Recommendation
    assert persona.Interactions is Interactions
    assert callable(persona.evaluate)


def test_save_refuses_to_overwrite_a_file(tmp_path: Path) -> None:
    from persona.errors import ModelFileError

    target = tmp_path / "model"
    target.write_text("not a model")
    with pytest.raises(ModelFileError, match="directory"):
        Popularity().fit(block_interactions()).save(target)


@pytest.mark.parametrize("make", [lambda: ALS(factors=2, iterations=2, random_state=0),
                                  ItemKNN, Popularity])
def test_empty_history_and_empty_data(make) -> None:  # type: ignore[no-untyped-def]
    import scipy.sparse as sp

    from persona.errors import ValidationError

    m = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0], [1, 1, 0]], dtype=float))
    X = Interactions.from_csr(m, ["a", "b", "c"], ["x", "y", "z"])
    model = make().fit(X)
    recs = model.recommend("b", n=3)  # 'b' has no events: documented fallback
    if model.personalised:
        assert [(r.item, r.score) for r in recs] == [("x", 0.0), ("y", 0.0), ("z", 0.0)]
    assert model.recommend_batch([], n=2) == []
    empty = Interactions.from_csr(sp.csr_matrix((2, 2)), ["a", "b"], ["x", "y"])
    with pytest.raises(ValidationError, match="nothing to learn"):
        make().fit(empty)


def test_block_size_changes_speed_never_results() -> None:
    """The automatic block size (here 2 blocks of 150 people: a 4,000-item catalogue, 2
    threads) and any given one give the same lists; a bad one is refused."""
    rng = np.random.default_rng(0)
    people, items = 300, 4000
    rows = rng.integers(0, people, 6000)
    cols = rng.integers(0, items, 6000)
    X = Interactions.from_csr(
        sp.csr_matrix((np.ones(6000), (rows, cols)), shape=(people, items)),
        [f"u{i}" for i in range(people)],
        [f"i{j}" for j in range(items)],
    )
    model = ALS(factors=8, iterations=3, random_state=0, num_threads=2).fit(X)
    users = [f"u{i}" for i in range(people)]
    assert _block_size(None, items, people, 2) == 150  # 2 blocks of 150, one per thread
    auto = model.recommend_arrays(users, n=10)
    for size in (1, 7, 64, 299, 1000):
        other = model.recommend_arrays(users, n=10, block_size=size)
        assert other.items.tolist() == auto.items.tolist()
        assert other.scores.tolist() == auto.scores.tolist()
    assert model.recommend_batch(users[:5], n=10, explain=False) == [
        model.recommend(u, n=10, explain=False) for u in users[:5]
    ]
    with pytest.raises(persona.ValidationError, match="block_size"):
        model.recommend_arrays(users, block_size=0)


def test_scoring_threads_are_shared_and_bounded_by_num_threads() -> None:
    """Batches reuse one pool of scoring threads; a model asking for 2 threads never scores
    more than 2 blocks at once, even after another model grew the pool to 4; a batch
    started from inside a scoring thread runs in that thread instead of waiting on the
    pool (which could otherwise wait on itself)."""
    import threading
    import time

    from persona.models import _threads as _base

    X = block_interactions(groups=4, users_per_group=30)
    users = list(X.users)
    wide = ItemKNN(neighbours=8, num_threads=4).fit(X)
    narrow = ItemKNN(neighbours=8, num_threads=2).fit(X)
    expected = narrow.recommend_arrays(users, n=5, block_size=1000).items.tolist()
    wide.recommend_arrays(users, n=5, block_size=7)
    pool = _base._scoring_pool(4)
    assert pool is not None and _base._scoring_pool(2) is pool  # grown once, then reused
    # a batch in another thread may still hold a smaller pool when it is replaced: it
    # must stay usable (it is dropped, never shut down)
    _base._forget_pool()
    small = _base._scoring_pool(2)
    assert small is not None and _base._scoring_pool(3) is not small
    assert small.submit(sum, [1, 2]).result() == 3

    running, peak, nested = 0, 0, []
    lock = threading.Lock()
    select = narrow._select

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)  # long enough for other blocks to start if they were allowed to
        nested.append(_base._scoring_pool(2))
        with lock:
            running -= 1
        return select(*args, **kwargs)

    narrow._select = counting  # type: ignore[method-assign]
    got = narrow.recommend_arrays(users, n=5, block_size=7)
    assert got.items.tolist() == expected
    assert peak == 2
    assert nested and all(p is None for p in nested)


def test_a_forked_child_scores_with_threads_of_its_own() -> None:
    """After fork the parent's scoring threads do not exist in the child: the child makes
    its own instead of queueing work that nothing would run."""
    import multiprocessing as mp
    import warnings

    X = block_interactions(groups=4, users_per_group=30)
    model = ItemKNN(neighbours=8, num_threads=2).fit(X)
    users = list(X.users)
    expected = model.recommend_arrays(users, n=5, block_size=7).items.tolist()  # pool made
    ctx = mp.get_context("fork")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork of a threaded process
        with ctx.Pool(1) as procs:
            got = procs.apply_async(_recommend_items, (model, users)).get(timeout=60)
    assert got == expected


def _recommend_items(model: ItemKNN, users: list[str]) -> list[list[str | None]]:
    return model.recommend_arrays(users, n=5, block_size=7).items.tolist()


def test_fit_holds_blas_at_one_thread_and_gives_the_setting_back(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every fit runs its kernels with BLAS at one thread, through the one controller made
    on first use, and leaves the process's BLAS settings as it found them."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from persona.models import _threads as _base

    def blas_threads() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    seen: list[list[int]] = []
    fit = ALS._fit

    def recording(self, matrix, config):  # type: ignore[no-untyped-def]
        seen.append(blas_threads())
        return fit(self, matrix, config)

    monkeypatch.setattr(ALS, "_fit", recording)
    X = block_interactions(groups=2, users_per_group=10)
    with threadpool_limits(2, "blas"):  # a setting other than one, to see it come back
        before = blas_threads()
        ALS(factors=4, iterations=1, random_state=0).fit(X)
        controller = _base._BLAS
        ALS(factors=4, iterations=1, random_state=0).fit(X)
        after = blas_threads()
    assert before and all(t == 2 for t in before)
    assert len(seen) == 2 and all(t == [1] * len(before) for t in seen)
    assert after == before
    assert controller is not None and _base._BLAS is controller  # libraries found once


@pytest.mark.parametrize("shape", [(0, 3), (1, 1), (63, 5), (64, 64), (65, 7), (1000, 130)])
def test_blockwise_transpose_equals_numpy_transpose(shape: tuple[int, int]) -> None:
    from persona.models._factor import _transposed

    Y = np.random.default_rng(0).random(shape, dtype=np.float32)
    T = _transposed(Y)
    assert T.flags.c_contiguous and T.dtype == Y.dtype
    np.testing.assert_array_equal(T, Y.T)
    np.testing.assert_array_equal(_transposed(np.asfortranarray(Y)), Y.T)


def test_a_model_file_with_numeric_id_arrays_loads_with_str_ids(tmp_path: Path) -> None:
    """Ids are str everywhere in persona; a version-2 model file whose id arrays were written as
    numbers (by another tool, checksum updated) still loads with str ids, so the people
    and items are found by their usual names."""
    import hashlib

    rng = np.random.default_rng(3)
    csr = sp.random(30, 40, density=0.2, format="csr", random_state=rng) * 5
    X = Interactions.from_csr(csr, [str(100 + u) for u in range(30)],
                              [str(7000 + i) for i in range(40)])
    model = ALS(factors=4, iterations=2, random_state=0).fit(X)
    path = model.save(tmp_path / "m.model")
    arrays = dict(np.load(path / "arrays.npz", allow_pickle=False))
    manifest = json.loads((path / "manifest.json").read_text())
    for name, ids in (("users", X.users), ("items", X.items)):  # as a version-2 file
        del arrays[f"{name}_utf8"], arrays[f"{name}_ends"]
        del manifest["arrays"][f"{name}_utf8"], manifest["arrays"][f"{name}_ends"]
        arrays[name] = np.array(ids.tolist()).astype(np.int64)
        manifest["arrays"][name] = {"dtype": "<i8", "shape": [len(ids)]}
    manifest["format_version"] = 2
    np.savez(path / "arrays.npz", **arrays)
    manifest["arrays_sha256"] = hashlib.sha256((path / "arrays.npz").read_bytes()).hexdigest()
    manifest["sha256"] = manifest_checksum(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))
    same = ALS.load(path)
    assert all(type(u) is str for u in same.users_)
    assert all(type(i) is str for i in same.items_)
    assert same.recommend("105", n=5) == model.recommend("105", n=5)
    assert same.similar_items("7003", n=3) == model.similar_items("7003", n=3)


def test_similar_items_with_an_all_zero_item_vector_scores_it_zero(tmp_path: Path) -> None:
    """An item whose factors are all zero has no direction: it scores 0 against every
    item, never NaN, and asking for its own neighbours gives finite scores too."""
    X = block_interactions(groups=2, users_per_group=10)
    model = ALS(factors=4, iterations=2, random_state=0).fit(X)
    items = list(model.items_)
    model.item_factors_[0] = 0.0
    model = ALS.load(model.save(tmp_path / "zero.model"))  # served from the saved factors
    everyone = model.similar_items(items[1], n=len(items))
    assert {r.item: r.score for r in everyone}.get(items[0], 0.0) == 0.0
    assert all(np.isfinite(r.score) for r in everyone)
    assert all(np.isfinite(r.score) for r in model.similar_items(items[0], n=3))
