"""The serving state every worker shares, checked against the audit log (a part of
:class:`~persona.store._rows.TableCheck`).

What a worker serves is decided by three tables: ``curation`` (the items pinned and
blocked for everyone), ``model_versions`` (which folder, with which checksum, each
version is) and ``live_model``. Someone who edits them in the file could make every
worker serve another folder, or drop a recall block, so :meth:`AuditLog.verify` compares
them with the entries that recorded every change:

``curation``
    per purpose, the row is the one the purpose's last ``curation`` entry wrote (version,
    pins, blocks, reason, who, time);
``model_versions``
    one row per ``model_publish`` entry (purpose, version, folder, checksum, model class,
    time), and no other;
``live_model``
    per purpose, the version and change count of its last ``model_live`` entry.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

__all__ = ["SERVING_ACTIONS", "ServingRows"]

SERVING_ACTIONS = frozenset({"curation", "model_publish", "model_live"})
_PUBLISHED = ("purpose", "version", "folder", "sha256", "model_class", "at")


class ServingRows:
    """The ``curation``, ``model_versions`` and ``live_model`` rows the chain's entries
    call for, fed in chain order."""

    def __init__(self) -> None:
        self._curation: dict[str, tuple[int, dict[str, Any]]] = {}  # purpose -> entry
        self._published: dict[tuple[Any, ...], int] = {}  # row -> entry
        self._live: dict[str, tuple[int, dict[str, Any]]] = {}  # purpose -> entry

    def see(self, seq: int, action: str, detail: dict[str, Any]) -> None:
        purpose = str(detail.get("purpose"))
        if action == "curation":
            self._curation[purpose] = (seq, detail)
        elif action == "model_publish":
            self._published[tuple(detail.get(k) for k in _PUBLISHED)] = seq
        elif action == "model_live":
            self._live[purpose] = (seq, detail)

    def problems(self, con: sqlite3.Connection) -> list[str]:
        found: list[str] = []
        expected = dict(self._curation)
        for purpose, version, body, at in con.execute(
                "SELECT purpose, version, body, at FROM curation ORDER BY purpose"):
            entry = expected.pop(purpose, None)
            d = {} if entry is None else entry[1]
            written = {"pin": d.get("pin"), "block": d.get("block"), "reason": d.get("reason"),
                       "by": d.get("by")}
            if entry is None or (version, at) != (d.get("version"), d.get("at")) or \
                    _json(body) != written:
                found.append(f"the curation of {purpose!r} differs from what the audit log "
                             "recorded (edited in the file)")
        found += [f"the curation of {purpose!r} (audit entry {seq}) was deleted"
                  for purpose, (seq, _) in sorted(expected.items())]
        published = dict(self._published)
        for row in con.execute(
                f"SELECT {', '.join(_PUBLISHED)} FROM model_versions ORDER BY seq"):
            if published.pop(tuple(row), None) is None:
                found.append(f"model version {row[1]} of {row[0]!r} differs from what the "
                             "audit log recorded (edited or inserted in the file)")
        found += [f"model version {row[1]} of {row[0]!r} (audit entry {seq}) was deleted"
                  for row, seq in published.items()]
        live = dict(self._live)
        for purpose, version, changes in con.execute(
                "SELECT purpose, version, changes FROM live_model ORDER BY purpose"):
            entry = live.pop(purpose, None)
            if entry is None or (version, changes) != (
                    entry[1].get("version"), entry[1].get("changes")):
                found.append(f"the live model of {purpose!r} differs from what the audit "
                             "log recorded (edited in the file)")
        found += [f"the live model of {purpose!r} (audit entry {seq}) was deleted"
                  for purpose, (seq, _) in sorted(live.items())]
        return found


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
