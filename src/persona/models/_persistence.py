"""Model files: a directory with ``arrays.npz`` (no pickle) and ``manifest.json``.

The manifest records the format version, the model class, its parameters, the lineage and
privacy claims, the store the model was fitted for (``store_id``, ``None`` when unknown),
the arrays' specs and the sha256 of ``arrays.npz`` (``arrays_sha256``). Its ``sha256``
field covers every other field of the manifest, so the arrays *and* every claim: it is the
sha256 of the manifest without that field written as canonical JSON (see
:func:`manifest_checksum`). :func:`load_model` refuses files whose checksum, version or
class do not match, a privacy claim without privacy settings, and any array that would
need pickle to load.

A checksum is not a signature: it shows that a file is as persona wrote it, not who wrote
it. Someone who edits a claim on purpose can recompute it; keep model files where only the
service that fits them can write.

Format 1 (persona before this version) checksummed ``arrays.npz`` only, so the privacy and
lineage its manifest claims cannot be checked: such files are refused, with a message to
refit.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

import persona
from persona.errors import ModelFileError

if TYPE_CHECKING:
    from persona.models._base import Recommender

__all__ = ["FORMAT_VERSION", "load_model", "manifest_checksum", "save_model"]

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.random.Generator):
        return None  # a generator's state is not a seed; recorded in the manifest
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # persona.DP: its settings, read back by load_model
        return dump(mode="json")
    if isinstance(value, np.integer | np.floating):
        return value.item()
    return value


def _lineage(lineage: Any) -> Any:
    if lineage is None:
        return None
    dump = getattr(lineage, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    try:
        json.dumps(lineage)
    except TypeError:
        return repr(lineage)
    return lineage


def manifest_checksum(manifest: Mapping[str, Any]) -> str:
    """The sha256 that a manifest's ``sha256`` field holds: of every other field, as JSON
    with sorted keys, no spaces and ASCII escapes.

    Examples
    --------
    >>> manifest = {"format_version": 2, "model": "Popularity", "privacy_spent": None}
    >>> digest = manifest_checksum(manifest)
    >>> manifest_checksum({**manifest, "sha256": digest}) == digest  # the field is left out
    True
    >>> manifest_checksum({**manifest, "privacy_spent": {"epsilon": 1.0}}) == digest
    False
    """
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _store_id(model: Recommender, store_id: str | None) -> str | None:
    if store_id is not None:
        if not isinstance(store_id, str) or not store_id:
            raise ModelFileError(f"store_id must be a non-empty str, not {store_id!r}")
        return store_id
    lineage = model.lineage_  # a Lineage of Interactions.from_view, or as a loaded file has it
    found = lineage.get("store_id") if isinstance(lineage, dict) else getattr(
        lineage, "store_id", None
    )
    return found if isinstance(found, str) else None


def save_model(model: Recommender, path: Path, *, store_id: str | None = None) -> Path:
    if path.exists() and not path.is_dir():
        raise ModelFileError(
            f"{path} exists and is a file; a persona model is saved as a directory. "
            "Choose another path or remove the file."
        )
    path.mkdir(parents=True, exist_ok=True)
    h = model.history_
    arrays: dict[str, np.ndarray] = {
        "users": np.array([str(u) for u in model.users_], dtype=str),
        "items": np.array([str(i) for i in model.items_], dtype=str),
        "history_indptr": h.indptr,
        "history_indices": h.indices,
        "history_data": h.data,
    }
    for name, arr in model._arrays().items():
        arrays[f"model_{name}"] = np.asarray(arr)
    for name, arr in arrays.items():
        if arr.dtype == object:  # pragma: no cover - guarded by construction
            raise ModelFileError(f"array {name!r} has dtype object and cannot be saved safely")
    tmp = path / (ARRAYS + ".tmp")
    with tmp.open("wb") as f:
        np.savez(f, **arrays)
    data = tmp.read_bytes()
    tmp.replace(path / ARRAYS)
    params = {k: _jsonable(v) for k, v in model.get_params().items()}
    manifest = {
        "format_version": FORMAT_VERSION,
        "persona_version": persona.__version__,
        "model": type(model).__name__,
        "params": params,
        "random_state_was_generator": isinstance(
            model.get_params().get("random_state"), np.random.Generator
        ),
        "lineage": _lineage(model.lineage_),
        "privacy_spent": (None if getattr(model, "privacy_spent_", None) is None
                          else model.privacy_spent_.model_dump(mode="json")),
        "store_id": _store_id(model, store_id),
        "arrays": {k: {"dtype": v.dtype.str, "shape": list(v.shape)} for k, v in arrays.items()},
        "arrays_sha256": hashlib.sha256(data).hexdigest(),
    }
    manifest = json.loads(json.dumps(manifest))  # what load will read back (tuples as lists)
    manifest["sha256"] = manifest_checksum(manifest)
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return path


def _validated(cls: Any, value: Any, mpath: Path, what: str) -> Any:
    try:
        return cls.model_validate(value)
    except ValueError as exc:
        raise ModelFileError(
            f"{mpath} has an invalid {what!r} entry ({exc}); re-save the model"
        ) from None


def _model_classes() -> dict[str, type[Recommender]]:
    from persona.models import ALS, BPR, ItemKNN, Popularity

    return {c.__name__: c for c in (ALS, BPR, ItemKNN, Popularity)}


def load_model(
    cls: type[Recommender], path: Path, *, store_id: str | None = None
) -> Recommender:
    mpath, apath = path / MANIFEST, path / ARRAYS
    if not path.is_dir() or not mpath.is_file() or not apath.is_file():
        raise ModelFileError(
            f"{path} is not a persona model directory (expected {MANIFEST} and {ARRAYS}); "
            "pass the path given to model.save()"
        )
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{mpath} is not valid JSON ({exc}); re-save the model") from None
    if not isinstance(manifest, dict):
        raise ModelFileError(f"{mpath} is not a persona manifest; re-save the model")
    version = manifest.get("format_version")
    if version == 1:
        raise ModelFileError(
            f"{path} has model format version 1, whose checksum covers the arrays only: the "
            "privacy and lineage its manifest claims cannot be checked, so this persona does "
            f"not load it (it reads version {FORMAT_VERSION}). Refit the model and save it "
            "again."
        )
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has model format version {version!r}; this persona reads version "
            f"{FORMAT_VERSION}. Load it with the persona version that wrote it and re-save, "
            "or refit."
        )
    name = manifest.get("model")
    classes = _model_classes()
    target = classes.get(str(name))
    if target is None or (cls.__name__ in classes and target is not cls):
        raise ModelFileError(
            f"{path} holds a {name!r} model, not {cls.__name__}; load it with {name}.load()"
        )
    if manifest_checksum(manifest) != manifest.get("sha256"):
        raise ModelFileError(
            f"checksum mismatch for {mpath}: the manifest (its parameters, lineage, privacy "
            "or store claims) was changed or damaged after saving. Do not use this model; "
            "re-save it from its source or refit."
        )
    data = apath.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.get("arrays_sha256"):
        raise ModelFileError(
            f"checksum mismatch for {apath}: the arrays were changed or damaged after saving. "
            "Do not use this file; re-save the model from its source or refit."
        )
    saved_for = manifest.get("store_id")
    if store_id is not None and saved_for != store_id:
        raise ModelFileError(
            f"{path} was saved for store {saved_for!r}, not for store {store_id!r}; load it "
            "with the store it was fitted on, or fit anew"
        )
    try:
        with zipfile.ZipFile(apath) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile:
        raise ModelFileError(f"{apath} is not an npz archive; re-save the model") from None
    expected = set(manifest.get("arrays", {}))
    for member in names:
        if not member.endswith(".npy") or member[:-4] not in expected:
            raise ModelFileError(
                f"{apath} contains an unexpected member {member!r}; persona only loads the "
                "arrays its manifest lists. Re-save the model."
            )
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(apath, allow_pickle=False) as npz:
            for key in expected:
                arrays[key] = npz[key]
    except ValueError as exc:
        raise ModelFileError(
            f"{apath} contains a pickled (object) array, which persona never loads because "
            f"unpickling can run code ({exc}). Re-save the model with persona."
        ) from None
    except KeyError as exc:
        raise ModelFileError(f"{apath} lacks array {exc}; re-save the model") from None
    params = dict(manifest.get("params", {}))
    if manifest.get("privacy_spent") is not None and params.get("privacy") is None:
        raise ModelFileError(
            f"{mpath} claims a privacy spend but the model was not fitted with privacy; "
            "the file is inconsistent. Do not use it; refit."
        )
    if isinstance(params.get("privacy"), dict):
        from persona.privacy import DP

        params["privacy"] = _validated(DP, params["privacy"], mpath, "privacy")
    model = target(**params)
    config = model._validated_config()
    model.config_ = config
    users, items = arrays["users"], arrays["items"]
    hist = sp.csr_matrix(
        (arrays["history_data"], arrays["history_indices"], arrays["history_indptr"]),
        shape=(len(users), len(items)),
    )
    ids = [a.astype(str).astype(object) for a in (users, items)]  # str keys, whatever the file
    model._set_catalogue(*ids, hist)
    model.lineage_ = manifest.get("lineage")
    spent = manifest.get("privacy_spent")
    if spent is not None:
        from persona.schema._privacy import PrivacySpent

        spent = _validated(PrivacySpent, spent, mpath, "privacy_spent")
    model.privacy_spent_ = spent
    model._restore({k[6:]: v for k, v in arrays.items() if k.startswith("model_")})
    return model
