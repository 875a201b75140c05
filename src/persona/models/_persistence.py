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

Format 3 stores the ids of people and items as UTF-8 bytes with end offsets, exactly as
given (format 2's fixed-width ``<U`` arrays dropped trailing NUL characters, so ``"ana"``
and ``"ana\\x00"`` became one person). Format 2 files are still read: every id that
persona's id rule (:func:`persona.schema.check_id`) allows survives them exactly, and a file
whose ids break the rule or collide is refused.

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
import pydantic
import scipy.sparse as sp

import persona
from persona.errors import ModelFileError, ValidationError
from persona.models._registry import MODELS
from persona.privacy import DP
from persona.schema import Lineage, PrivacySpent, check_id, check_ids

if TYPE_CHECKING:
    from persona.models._base import Recommender

__all__ = ["FORMAT_VERSION", "load_model", "manifest_checksum", "save_model"]

FORMAT_VERSION = 3
_READS = (2, 3)
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


def _restored_lineage(saved: Any) -> Any:
    """The lineage as the fit kept it: a :class:`persona.schema.Lineage` (what a fit on a
    store's scoped view keeps, private or not) as such, so ``lineage_`` has one type after
    :meth:`fit` and after :func:`load_model`. A lineage of another shape (an
    ``Interactions`` built with the caller's own lineage object) stays as the manifest holds
    it: a dict, or the text a lineage that JSON could not hold was saved as."""
    if not isinstance(saved, dict):
        return saved
    try:
        return Lineage.model_validate(saved)
    except pydantic.ValidationError:
        return saved


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
    users_utf8, users_ends = _encode_ids(model.users_, "users")
    items_utf8, items_ends = _encode_ids(model.items_, "items")
    arrays: dict[str, np.ndarray] = {
        "users_utf8": users_utf8,
        "users_ends": users_ends,
        "items_utf8": items_utf8,
        "items_ends": items_ends,
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
        np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub: names as **kwargs
    data = tmp.read_bytes()
    tmp.replace(path / ARRAYS)
    # the parameters the arrays were learned with (set_params since the fit waits for a refit)
    fitted = getattr(model, "params_", None) or model.get_params(deep=False)
    params = {k: _jsonable(v) for k, v in fitted.items()}
    spent = getattr(model, "privacy_spent_", None)
    manifest = {
        "format_version": FORMAT_VERSION,
        "persona_version": persona.__version__,
        "model": type(model).__name__,
        "params": params,
        "random_state_was_generator": isinstance(
            fitted.get("random_state"), np.random.Generator
        ),
        "lineage": _lineage(model.lineage_),
        "privacy_spent": None if spent is None else spent.model_dump(mode="json"),
        "store_id": _store_id(model, store_id),
        "arrays": {k: {"dtype": v.dtype.str, "shape": list(v.shape)} for k, v in arrays.items()},
        "arrays_sha256": hashlib.sha256(data).hexdigest(),
    }
    manifest = json.loads(json.dumps(manifest))  # what load will read back (tuples as lists)
    manifest["sha256"] = manifest_checksum(manifest)
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return path


def _encode_ids(ids: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``ids`` as one UTF-8 byte array and the end offset of each id: exact for any str
    (a fixed-width ``<U`` array would drop trailing NUL characters)."""
    try:
        encoded = [check_id(i, name).encode() for i in ids.tolist()]
    except ValidationError as exc:
        raise ModelFileError(f"the model's {name} cannot be saved: {exc}") from None
    ends = np.cumsum([len(b) for b in encoded], dtype=np.int64)
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), ends


def _checked(ids: list[Any], name: str, mpath: Path) -> np.ndarray:
    try:
        checked = check_ids(ids, name)
    except ValidationError as exc:
        raise ModelFileError(f"{mpath}: an id in {name!r} breaks persona's id rule ({exc}); "
                             "refit the model") from None
    if len(set(checked)) != len(checked):
        raise ModelFileError(
            f"{mpath}: two {name} have one id (compared in Unicode NFC, or made equal when "
            "the file was written); the model cannot tell them apart. Refit the model."
        )
    return np.asarray(checked, dtype=object)


def _decode_ids(arrays: Mapping[str, np.ndarray], name: str, mpath: Path) -> np.ndarray:
    if f"{name}_utf8" not in arrays or f"{name}_ends" not in arrays:
        raise ModelFileError(f"{mpath} lists no {name} ids; re-save the model")
    data, ends = arrays[f"{name}_utf8"], arrays[f"{name}_ends"]
    if (data.dtype != np.uint8 or data.ndim != 1 or ends.dtype != np.int64 or ends.ndim != 1
            or (ends.size and (ends[0] < 0 or ends[-1] != data.size
                               or (np.diff(ends) < 0).any()))):
        raise ModelFileError(f"{mpath}: the {name} ids are damaged; re-save the model")
    raw = data.tobytes()
    starts = np.r_[0, ends[:-1]].tolist()
    try:
        ids = [raw[a:b].decode() for a, b in zip(starts, ends.tolist(), strict=True)]
    except UnicodeDecodeError:
        raise ModelFileError(f"{mpath}: the {name} ids are not UTF-8; re-save the model") from None
    return _checked(ids, name, mpath)


def _ids_v2(arrays: Mapping[str, np.ndarray], name: str, mpath: Path) -> np.ndarray:
    """Ids of a version-2 file (a ``<U`` array): exact for every id the rule allows (only
    trailing NUL characters were lost, and the rule refuses control characters); a file
    where two ids became one is refused."""
    if name not in arrays or arrays[name].dtype.kind not in "Uiu":  # numbers: their digits
        raise ModelFileError(f"{mpath} lists no {name} ids; re-save the model")
    return _checked(arrays[name].astype(str).tolist(), name, mpath)


def _validated(cls: Any, value: Any, mpath: Path, what: str) -> Any:
    try:
        return cls.model_validate(value)
    except ValueError as exc:
        raise ModelFileError(
            f"{mpath} has an invalid {what!r} entry ({exc}); re-save the model"
        ) from None


def load_model(
    cls: type[Recommender], path: Path, *, store_id: str | None = None
) -> Recommender:
    mpath, apath = path / MANIFEST, path / ARRAYS
    try:
        found = path.is_dir() and mpath.is_file() and apath.is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte, no permission
        found = False
    if not found:
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
    if version not in _READS:
        raise ModelFileError(
            f"{path} has model format version {version!r}; this persona reads versions "
            f"{', '.join(map(str, _READS))}. Load it with the persona version that wrote it "
            "and re-save, or refit."
        )
    name = manifest.get("model")
    target = MODELS.get(str(name))
    if target is None or (cls.__name__ in MODELS and target is not cls):
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
        params["privacy"] = _validated(DP, params["privacy"], mpath, "privacy")
    model = target(**params)
    config = model._validated_config()
    model.config_ = config
    model.params_ = model.get_params(deep=False)
    if version == 2:  # fixed-width str arrays: exact for every id persona's rule allows
        users = _ids_v2(arrays, "users", mpath)
        items = _ids_v2(arrays, "items", mpath)
    else:
        users = _decode_ids(arrays, "users", mpath)
        items = _decode_ids(arrays, "items", mpath)
    hist = sp.csr_matrix(
        (arrays["history_data"], arrays["history_indices"], arrays["history_indptr"]),
        shape=(len(users), len(items)),
    )
    model._set_catalogue(users, items, hist)
    model.lineage_ = _restored_lineage(manifest.get("lineage"))
    spent = manifest.get("privacy_spent")
    if spent is not None:
        spent = _validated(PrivacySpent, spent, mpath, "privacy_spent")
    model.privacy_spent_ = spent
    model._restore({k[6:]: v for k, v in arrays.items() if k.startswith("model_")})
    return model
