"""Saving and loading a Personalizer: a folder with the model's and the fallback's own
files, what each person's row was built from (``basis.npz``) and ``personalizer.json``
(the settings, the curation and a checksum binding the parts to it). npz + JSON, no
pickle."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from persona.errors import ModelFileError, ValidationError
from persona.models import Popularity, Recommender
from persona.personalizer._fit import version
from persona.personalizer._state import ServingState, prune

if TYPE_CHECKING:
    from persona.personalizer._personalizer import Personalizer
    from persona.store import Store

__all__ = ["FORMAT_VERSION", "read_manifest", "restore", "save"]

FORMAT_VERSION = 2  # 2: personalizer.json has a checksum; its parts are bound to it
_PARTS = ("model/manifest.json", "fallback/manifest.json")
_BASIS = "basis.npz"  # what each person's row was built from (older folders lack it)


def checked_folder(path: Any, field: str) -> Path:
    """``path`` as an absolute folder path that can be made, or a ValidationError naming
    ``field`` (not a path, a NUL or a lone surrogate in it, a file there, under a file)."""
    name = os.fspath(path) if isinstance(path, str | os.PathLike) else None
    if not isinstance(name, str) or not name:
        raise ValidationError(
            f"field {field!r}: give a folder's path (a str or a Path), not {path!r}",
            errors=[{"row": None, "field": field, "message": "not a path"}],
        )
    if "\0" in name or not _is_utf8(name):
        raise ValidationError(
            f"field {field!r}: {name[:80]!r} holds a NUL or a lone surrogate; give a path of "
            "valid Unicode text",
            errors=[{"row": None, "field": field, "message": "not valid text"}],
        )
    folder = Path(os.path.abspath(name))
    bad = next((f for f in (folder, *folder.parents) if f.exists() and not f.is_dir()), None)
    if bad is not None:
        raise ValidationError(
            f"field {field!r}: {str(bad)!r} is a file, so {str(folder)!r} cannot be a folder; "
            "give the path of a folder",
            errors=[{"row": None, "field": field, "message": "a file"}],
        )
    return folder


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def save(p: Personalizer, state: ServingState, path: str | Path) -> Path:
    """:meth:`Personalizer.save` of ``state``, the state now serving."""
    folder = checked_folder(path, "path")
    consented = p.store.consented(p.purpose)
    with state.lock.write():
        prune(state, consented)
        folder.mkdir(parents=True, exist_ok=True)
        state.model.save(folder / "model", store_id=p.store.store_id)
        state.fallback.save(folder / "fallback", store_id=p.store.store_id)
        _save_basis(folder / _BASIS, state.basis)
    manifest = {
        "format": "persona.personalizer",
        "format_version": FORMAT_VERSION,
        "store_id": p.store.store_id,
        "purpose": p.purpose,
        "model_class": type(state.model).__name__,
        "weights": p.weights,
        "scaling": p.scaling,
        "fallback_share": p.fallback_share,
        "privacy": None if p.privacy is None else p.privacy.model_dump(mode="json"),
        "curation": p.curation.model_dump(mode="json"),
        # how a private Personalizer chose its model (None when it was given one)
        "choice": None if p.choice_ is None else p.choice_.model_dump(mode="json"),
        "labels": state.labels,
        "fitted_at": state.fitted_at.isoformat(),
        "parts": {part: _file_sha256(folder / part) for part in (*_PARTS, _BASIS)},
    }
    manifest = json.loads(json.dumps(manifest))  # as load reads it back
    manifest["sha256"] = _checksum(manifest)
    (folder / "personalizer.json").write_text(json.dumps(manifest, indent=2))
    return folder


def read_manifest(path: str | Path, store: Store) -> tuple[Path, dict[str, Any]]:
    """The folder and its ``personalizer.json``, checked: a saved Personalizer of this
    format, its parts the ones saved with it, fitted on ``store``."""
    if not isinstance(path, str | os.PathLike):
        raise ValidationError(
            f"path must be a folder's path (a str), not a {type(path).__name__}",
            errors=[{"row": None, "field": "path", "message": "not a path"}],
        )
    folder = Path(path)
    try:
        manifest = json.loads((folder / "personalizer.json").read_text())
    except (OSError, ValueError) as exc:  # JSON, UTF-8, a NUL byte in the path
        raise ModelFileError(
            f"{folder} is not a saved Personalizer ({exc}); save one with p.save(path)"
        ) from exc
    if not isinstance(manifest, dict):
        raise ModelFileError(
            f"{folder} is not a saved Personalizer; save one with p.save(path)"
        )
    if (
        manifest.get("format") != "persona.personalizer"
        or manifest.get("format_version") != FORMAT_VERSION
    ):
        raise ModelFileError(
            f"{folder} has format {manifest.get('format')!r} version "
            f"{manifest.get('format_version')!r}; this persona reads persona.personalizer "
            f"version {FORMAT_VERSION} (version 1 folders have no checksum over their "
            "settings). Fit anew and save with this persona."
        )
    _check_parts(folder, manifest)
    if manifest["store_id"] != store.store_id:
        raise ModelFileError(
            f"{folder} was fitted on store {manifest['store_id']}, not on this store "
            f"({store.store_id}); load it with the store it was fitted on, or fit anew"
        )
    return folder, manifest


def restore(
    p: Personalizer, folder: Path, manifest: Mapping[str, Any], model: Recommender,
    fallback: Popularity,
) -> ServingState:
    """The serving state saved in ``folder`` with its loaded ``model`` and ``fallback``,
    labelled, versioned and with what each person's row was built from."""
    labels = dict(manifest["labels"])
    model.item_labels_ = labels
    fallback.item_labels_ = labels
    fitted_at = datetime.fromisoformat(manifest["fitted_at"])
    return ServingState(
        model=model,
        fallback=fallback,
        labels=labels,
        fitted_at=fitted_at,
        version=version(p, model, fitted_at),
        basis=_load_basis(folder, manifest),
    )


def _save_basis(path: Path, basis: dict[str, int]) -> None:
    with path.open("wb") as f:
        np.savez(f, users=np.array(list(basis), dtype=str),
                 digests=np.array(list(basis.values()), dtype=np.uint64))


def _load_basis(folder: Path, manifest: Mapping[str, Any]) -> dict[str, int]:
    """The saved :attr:`ServingState.basis` (its checksum was checked with the other
    parts), or none for a folder saved before it was kept."""
    if _BASIS not in manifest["parts"]:
        return {}
    try:
        with (folder / _BASIS).open("rb") as f:  # (np.load leaks a broken zip's handle)
            data = np.load(f, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):  # one bare array
                raise ValueError("not an .npz archive")
            with data:
                users, digests = data["users"], data["digests"]
        if (users.ndim != 1 or users.dtype.kind != "U" or users.shape != digests.shape
                or digests.dtype != np.uint64):
            raise ValueError("not one id and one 64-bit digest per person")
        return dict(zip(users.tolist(), digests.tolist(), strict=True))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelFileError(
            f"{folder / _BASIS} cannot be read ({exc}); save the Personalizer again or "
            "fit anew"
        ) from None


def _file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ModelFileError(
            f"{path} cannot be read ({exc}); a saved Personalizer needs its model/ and "
            "fallback/ folders as save() wrote them"
        ) from None


def _checksum(manifest: Mapping[str, Any]) -> str:
    """sha256 of every field but ``sha256``, as JSON with sorted keys and no spaces (the
    rule of model manifests, see ``persona.models``)."""
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_parts(folder: Path, manifest: dict[str, Any]) -> None:
    """personalizer.json is as saved, and model/ and fallback/ are the parts saved with it
    (each part's manifest checksums its own arrays and claims)."""
    if _checksum(manifest) != manifest.get("sha256"):
        raise ModelFileError(
            f"checksum mismatch for {folder / 'personalizer.json'}: its settings (store, "
            "purpose, privacy, curation) were changed or damaged after saving. Do not use "
            "this folder; save the Personalizer again or fit anew."
        )
    parts = manifest.get("parts")
    optional = (_BASIS,) if isinstance(parts, dict) and _BASIS in parts else ()
    for part in (*_PARTS, *optional):
        if not isinstance(parts, dict) or _file_sha256(folder / part) != parts.get(part):
            raise ModelFileError(
                f"{folder / part} is not the one saved with {folder / 'personalizer.json'} "
                "(it was replaced or edited, e.g. with another folder's or store's model). "
                "Do not use this folder; save the Personalizer again or fit anew."
            )
