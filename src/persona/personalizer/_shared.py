"""Serving state shared by every worker on one store (issue 21): publishing a fitted state
to the store's model registry, loading the live version, and picking up, within
``refresh_every`` seconds, a curation or a live model set by another worker.

The pick-up costs a request nothing until the interval has passed: ``recommend`` compares
the monotonic clock with the time the next check is due. The request that finds it due
runs the check: one small read of two counters (``store.serving_versions``: no write, no
audit entry). Only when a counter moved does it read the new curation, or load the new
live version (checked as :meth:`Personalizer.load` checks a folder, and against the
checksum the registry holds) and swap it in under the swap lock, whole, as a fit does.
Other requests meanwhile do not wait: they serve what is in place. A version that cannot
be loaded is not served: the old one keeps serving, the failure is logged (logger
``persona``) and kept in ``p.refresh_error``, and the next check tries again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from typing import TYPE_CHECKING, Any

from persona.errors import ModelFileError, PersonaError, ValidationError
from persona.personalizer import _persist
from persona.personalizer._curation import apply
from persona.personalizer._state import block, prune

if TYPE_CHECKING:
    from persona.personalizer._personalizer import Personalizer
    from persona.schema import ModelVersion

__all__ = ["check", "load_version", "publish", "refresh"]

log = logging.getLogger("persona")


def check(p: Personalizer, now: float) -> None:
    """A request found the check due at ``now``: run it, unless another request is."""
    if not p._refresh_lock.acquire(blocking=False):
        return
    try:
        p._refresh_due = now + p.refresh_every
        _refresh(p)
    finally:
        p._refresh_lock.release()


def refresh(p: Personalizer) -> bool:
    """:meth:`Personalizer.refresh`: check now (waiting for a check under way)."""
    with p._refresh_lock:
        p._refresh_due = p._refresh_clock() + p.refresh_every
        return _refresh(p)


def _refresh(p: Personalizer) -> bool:
    curation_v, live_v = p.store.serving_versions(p.purpose)
    changed = False
    if curation_v != p._seen_curation:
        curation = p.store.curation(p.purpose)
        changed = curation != p._curation
        apply(p, curation)
        p._seen_curation = max(p._seen_curation, curation_v)
    if live_v != p._seen_live:
        changed = _follow_live(p, live_v) or changed
    return changed


def _follow_live(p: Personalizer, live_v: int) -> bool:
    """Serve the store's live version, if it is not the one serving; ``True`` if swapped."""
    live = p.store.live_model(p.purpose)
    state = p._state
    if live is None or (state is not None and state.version == live.version):
        p._seen_live, p.refresh_error = live_v, None
        return False
    try:
        q = load_version(type(p), p.store, live, p.refresh_every, p._refresh_clock)
    except Exception as exc:  # whatever it is, the old version keeps serving
        error = exc if isinstance(exc, PersonaError) else ModelFileError(
            f"{live.folder} cannot be loaded ({type(exc).__name__}: {exc}); publish the "
            "version again, or roll back with store.set_live_model(purpose, version)")
        p.refresh_error = error
        log.warning("persona: version %s of %r is live but was not loaded, the version "
                    "serving keeps serving: %s", live.version, p.purpose, error)
        return False  # (its counter is not marked seen: the next check tries again)
    _swap(p, q)
    p._seen_live, p.refresh_error = live_v, None
    return True


def load_version(
    cls: type[Personalizer], store: Any, live: ModelVersion, refresh_every: float,
    refresh_clock: Any,
) -> Personalizer:
    """A Personalizer of the published version ``live``: its folder checked as
    :meth:`Personalizer.load` checks one, and against the checksum registered with it."""
    folder, manifest = _persist.read_manifest(live.folder, store)
    if manifest.get("sha256") != live.sha256 or manifest.get("purpose") != live.purpose:
        raise ModelFileError(
            f"the checksum of {folder / 'personalizer.json'} is not the one registered for "
            f"version {live.version} of {live.purpose!r}: the folder was replaced after it "
            "was published. Do not use it; publish again, or roll back with "
            "store.set_live_model(purpose, version)"
        )
    q = cls._from_folder(folder, manifest, store, refresh_every, refresh_clock)
    if q.model_version_ != live.version:
        raise ModelFileError(
            f"{folder} holds version {q.model_version_}, not version {live.version} it "
            "was published as; publish again, or roll back with store.set_live_model"
        )
    return q


def _swap(p: Personalizer, q: Personalizer) -> None:
    """Serve ``q``'s state and settings in ``p``, whole, keeping ``p``'s curation."""
    state = q._require()
    with p._swap_lock:
        # whoever this worker erased while the version loaded leaves before the swap
        consented = p.store.consented(p.purpose)
        if any(str(u) not in consented
               for part in (state.model, state.fallback) for u in part.users_):
            prune(state, consented)
            precompute = getattr(state.model, "precompute", None)
            if callable(precompute):
                precompute()
        block(state, p._curation.block)
        p.model, p.privacy, p.choice_ = q.model, q.privacy, q.choice_
        p.chooses_model = q.chooses_model
        p.weights, p.scaling, p.fallback_share = q.weights, q.scaling, q.fallback_share
        p._state = state


def publish(p: Personalizer, folder: Any) -> ModelVersion:
    """:meth:`Personalizer.publish`."""
    state = p._require()
    root = _persist.checked_folder(folder, "folder").resolve()
    version = state.version
    for known in p.store.model_versions(p.purpose):
        if known.version == version:
            raise ValidationError(
                f"version {version} of {p.purpose!r} is already published (in "
                f"{known.folder}); make it live again with store.set_live_model("
                f"{p.purpose!r}, {version!r}), or fit anew to publish a new version",
                errors=[{"row": None, "field": "version", "message": "published"}],
            )
    target = root / version
    if target.exists():
        raise ValidationError(
            f"{target} already exists but is not a published version of {p.purpose!r}; "
            "remove it, or publish to another folder",
            errors=[{"row": None, "field": "folder", "message": "exists"}],
        )
    root.mkdir(parents=True, exist_ok=True)
    # written whole beside it, then renamed: no worker sees a half-written folder
    temporary = root / f".{version}.{uuid.uuid4().hex}.tmp"
    try:
        _persist.save(p, state, temporary)
        os.rename(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    manifest = json.loads((target / "personalizer.json").read_text())
    try:
        return p.store.publish_model(
            p.purpose, version=version, folder=target, sha256=manifest["sha256"],
            model_class=manifest["model_class"],
        )
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # not registered: not left behind
        raise
