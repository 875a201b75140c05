"""Issue 16 point 9 and issue 17 point 4: a saved model's checksum covers every claim its
manifest makes (privacy spent, lineage, parameters, class, store), and a saved
Personalizer folder is bound to its own parts and to its store.

Each edit here is what someone with the folder could do with a text editor; before format
2 the checksum covered ``arrays.npz`` only and every one of them loaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import persona
from persona.errors import ModelFileError
from persona.models import (
    ALS,
    BPR,
    FORMAT_VERSION,
    ContentKNN,
    ItemKNN,
    Popularity,
    Recommender,
    load,
)
from persona.models._persistence import manifest_checksum
from persona.testing import block_interactions
from store_helpers import shop
from test_personalizer import shop_with_people

DP = persona.DP(epsilon=1.0, delta=1e-6, max_events_per_person=5)


def _fit(cls: type[Recommender], privacy: Any = None) -> Recommender:
    X = block_interactions(groups=3, users_per_group=8)
    params: dict[str, Any] = {"privacy": privacy}
    if cls in (ALS, BPR):
        params.update(factors=4, iterations=2, random_state=0)
    if cls is ContentKNN:
        params.update(item_text={str(i): f"group {int(i[1:]) // 8}" for i in X.items})
    return cls(**params).fit(X)


def _manifest(path: Path) -> dict[str, Any]:
    return json.loads((path / "manifest.json").read_text())


def _write(path: Path, manifest: dict[str, Any]) -> None:
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2))


EDITS = {
    "privacy_spent": lambda m: {**m, "privacy_spent": {"mechanism": "dp-item-counts",
                                                       "epsilon": 0.1, "delta": 0.0}},
    "lineage": lambda m: {**m, "lineage": {"store_id": "elsewhere", "purpose": "ads"}},
    "params": lambda m: {**m, "params": {**m["params"], "random_state": 12345}},
    "store_id": lambda m: {**m, "store_id": "another-store"},
    "arrays spec": lambda m: {**m, "arrays": {**m["arrays"], "extra": {"dtype": "<f4",
                                                                      "shape": [1]}}},
    "persona_version": lambda m: {**m, "persona_version": "0.0.1"},
    "checksum removed": lambda m: {k: v for k, v in m.items() if k != "sha256"},
}


@pytest.mark.parametrize("cls", [ALS, BPR, ContentKNN, ItemKNN, Popularity])
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_editing_any_manifest_claim_is_refused(
    cls: type[Recommender], edit: str, tmp_path: Path
) -> None:
    path = _fit(cls).save(tmp_path / "m.model")
    assert isinstance(cls.load(path), cls)  # unchanged, it loads
    _write(path, EDITS[edit](_manifest(path)))
    with pytest.raises(ModelFileError, match="checksum"):
        cls.load(path)
    with pytest.raises(ModelFileError, match="checksum"):
        load(str(path))


def test_round_trip_keeps_every_claim(tmp_path: Path) -> None:
    model = _fit(Popularity, DP)
    path = model.save(tmp_path / "p.model", store_id="store-1")
    manifest = _manifest(path)
    assert manifest["format_version"] == FORMAT_VERSION == 3
    assert manifest["sha256"] == manifest_checksum(manifest)
    same = Popularity.load(path, store_id="store-1")
    assert same.privacy_spent_ == model.privacy_spent_
    assert same.recommend("anyone") == model.recommend("anyone")
    with pytest.raises(ModelFileError, match="saved for store 'store-1'"):
        Popularity.load(path, store_id="store-2")


def test_editing_the_class_is_refused(tmp_path: Path) -> None:
    path = _fit(ALS).save(tmp_path / "m.model")
    _write(path, {**_manifest(path), "model": "BPR"})  # same arrays, another class
    with pytest.raises(ModelFileError, match="checksum"):
        load(str(path))


def test_a_private_models_privacy_claim_copied_into_a_non_private_model_is_refused(
    tmp_path: Path,
) -> None:
    private = _fit(Popularity, DP).save(tmp_path / "private.model")
    plain = _fit(Popularity).save(tmp_path / "plain.model")
    claim = _manifest(private)["privacy_spent"]
    assert claim is not None and _manifest(plain)["privacy_spent"] is None
    _write(plain, {**_manifest(plain), "privacy_spent": claim})
    with pytest.raises(ModelFileError, match="checksum"):
        Popularity.load(plain)
    # even with the checksum recomputed, a spend without privacy settings is refused
    forged = {**_manifest(plain), "privacy_spent": claim}
    forged["sha256"] = manifest_checksum(forged)
    _write(plain, forged)
    with pytest.raises(ModelFileError, match="not fitted with privacy"):
        Popularity.load(plain)


def test_a_format_1_file_is_refused_with_a_way_out(tmp_path: Path) -> None:
    path = _fit(Popularity).save(tmp_path / "old.model")
    _write(path, {**_manifest(path), "format_version": 1})
    with pytest.raises(ModelFileError, match=r"version 1.*cannot be checked.*Refit"):
        Popularity.load(path)


# ---------------------------------------------------------------- Personalizer folders
@pytest.fixture
def store() -> persona.Store:
    return shop_with_people()


def _personalizer(store: persona.Store, **kw: Any) -> persona.Personalizer:
    return persona.Personalizer(
        store, model=persona.ALS(factors=4, iterations=3, random_state=0), **kw
    ).fit()


def _reseal_personalizer(folder: Path) -> None:
    """Recompute personalizer.json's part digests and checksum, as a forger would."""
    import hashlib

    manifest = json.loads((folder / "personalizer.json").read_text())
    manifest["parts"] = {
        part: hashlib.sha256((folder / part).read_bytes()).hexdigest()
        for part in manifest["parts"]
    }
    manifest["sha256"] = manifest_checksum(manifest)
    (folder / "personalizer.json").write_text(json.dumps(manifest))


def test_a_saved_personalizer_loads_and_its_parts_name_the_store(
    store: persona.Store, tmp_path: Path
) -> None:
    p = _personalizer(store)
    folder = p.save(tmp_path / "p")
    for part in ("model", "fallback"):
        assert _manifest(folder / part)["store_id"] == store.store_id
    loaded = persona.Personalizer.load(folder, store)
    assert [r.item for r in loaded.recommend("p3")] == [r.item for r in p.recommend("p3")]


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: {**m, "privacy": {"epsilon": 1.0, "delta": 1e-6}},
        lambda m: {**m, "purpose": "analytics"},
        lambda m: {**m, "curation": {**m["curation"], "block": ["sku-1"]}},
        lambda m: {**m, "parts": {**m["parts"], "model/manifest.json": "0" * 64}},
    ],
)
def test_editing_personalizer_json_is_refused(
    store: persona.Store, tmp_path: Path, edit: Any
) -> None:
    folder = _personalizer(store).save(tmp_path / "p")
    manifest = json.loads((folder / "personalizer.json").read_text())
    (folder / "personalizer.json").write_text(json.dumps(edit(manifest)))
    with pytest.raises(ModelFileError, match="checksum"):
        persona.Personalizer.load(folder, store)


def test_a_part_swapped_in_from_another_folder_is_refused(
    store: persona.Store, tmp_path: Path
) -> None:
    """Issue 17 point 4: a folder holding another store's model/ and fallback/ loaded."""
    mine = _personalizer(store).save(tmp_path / "mine")
    other_store = shop_with_people()
    theirs = _personalizer(other_store).save(tmp_path / "theirs")
    for part in ("model", "fallback"):
        shutil.rmtree(mine / part)
        shutil.copytree(theirs / part, mine / part)
    with pytest.raises(ModelFileError, match="not the one saved"):
        persona.Personalizer.load(mine, store)
    # with personalizer.json resealed around the foreign parts, their store id refuses them
    _reseal_personalizer(mine)
    with pytest.raises(ModelFileError, match="saved for store"):
        persona.Personalizer.load(mine, store)


def test_a_non_private_model_swapped_into_a_private_folder_is_refused(tmp_path: Path) -> None:
    store = shop_with_people()
    private = _personalizer(store, privacy=persona.DP(epsilon=4.0, delta=1e-6)).save(
        tmp_path / "private")
    plain = _personalizer(store).save(tmp_path / "plain")
    shutil.rmtree(private / "model")
    shutil.copytree(plain / "model", private / "model")
    with pytest.raises(ModelFileError, match="not the one saved"):
        persona.Personalizer.load(private, store)


def test_a_personalizer_folder_of_another_store_is_refused(
    store: persona.Store, tmp_path: Path
) -> None:
    folder = _personalizer(store).save(tmp_path / "p")
    with pytest.raises(ModelFileError, match="store"):
        persona.Personalizer.load(folder, shop())


def test_a_personalizer_folder_of_format_1_or_not_an_object_is_refused(
    store: persona.Store, tmp_path: Path
) -> None:
    folder = _personalizer(store).save(tmp_path / "p")
    manifest = json.loads((folder / "personalizer.json").read_text())
    (folder / "personalizer.json").write_text(json.dumps({**manifest, "format_version": 1}))
    with pytest.raises(ModelFileError, match="Fit anew"):
        persona.Personalizer.load(folder, store)
    (folder / "personalizer.json").write_text("[1, 2]")
    with pytest.raises(ModelFileError, match="not a saved Personalizer"):
        persona.Personalizer.load(folder, store)


def test_an_edited_or_unreadable_fit_record_is_refused(
    store: persona.Store, tmp_path: Path
) -> None:
    """basis.npz (what each person's row was built from) is checksummed like the other
    parts; resealed but not an array file of the right shape, it is refused too."""
    folder = _personalizer(store).save(tmp_path / "p")
    path = folder / "basis.npz"
    with np.load(path, allow_pickle=False) as data:
        users, digests = data["users"], data["digests"]
    assert len(users) == len(digests) > 0
    np.savez(path, users=users, digests=digests + np.uint64(1))  # edited
    with pytest.raises(ModelFileError, match="not the one saved"):
        persona.Personalizer.load(folder, store)
    np.savez(path, users=users, digests=digests[:-1].copy())
    _reseal_personalizer(folder)
    with pytest.raises(ModelFileError, match="cannot be read"):
        persona.Personalizer.load(folder, store)
    path.write_bytes(b"not an npz")
    _reseal_personalizer(folder)
    with pytest.raises(ModelFileError, match="cannot be read"):
        persona.Personalizer.load(folder, store)
    for bad in (b"PK\x03\x04" + b"\x00" * 40, b""):  # a broken zip, an empty file
        path.write_bytes(bad)
        _reseal_personalizer(folder)
        with pytest.raises(ModelFileError, match="cannot be read"):
            persona.Personalizer.load(folder, store)
    with path.open("wb") as f:
        np.save(f, digests)  # one bare array (.npy), not an archive
    _reseal_personalizer(folder)
    with pytest.raises(ModelFileError, match="cannot be read"):
        persona.Personalizer.load(folder, store)
    # arrays of the wrong shape or kind: ids as a table, as numbers
    for arrays in ({"users": users.reshape(-1, 1), "digests": digests.reshape(-1, 1)},
                   {"users": np.arange(len(users)), "digests": digests}):
        np.savez(path, **arrays)
        _reseal_personalizer(folder)
        with pytest.raises(ModelFileError, match="cannot be read"):
            persona.Personalizer.load(folder, store)
