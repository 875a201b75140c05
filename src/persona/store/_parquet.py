"""Consent-scoped reads written as Parquet partitions for a cluster
(``ScopedView.to_parquet``, issue 23).

One read, the one :meth:`ScopedView.events` makes (consent, allowed features, retention and
"don't use" feedback applied now, by :func:`persona.store._reads.scoped_events`), is split
by a hash of the person into ``partitions`` files::

    folder/
        part-00000.parquet ... part-<N-1>.parquet   columns user, item, feature, value,
                                                    at, partition
        _manifest.json                              what, when, lineage, digests, audit

Readers of Parquet datasets (pyarrow, pandas, Dask) skip names that begin with ``_`` or
``.``, so ``dd.read_parquet(folder)`` reads the parts and not the manifest.

**The partition of a person** is ``int.from_bytes(blake2b(id.encode("utf-8"),
digest_size=8).digest(), "big") % partitions``: the same on every run, machine, Python and
store (it depends on nothing but the id and ``partitions``). It is a plain hash on purpose,
not the store's keyed pseudonym: the files hold the ids themselves, so a public function of
the id reveals nothing the rows do not; a function of the pseudonym would let anyone who
holds both an export and the audit log (which names people by pseudonym) narrow down whose
entries are whose. A consumer can co-partition other data by the same function.

**One snapshot, one audit entry.** The read, the writing of the files, their digests and
the audit entry (``scoped_export``: purpose, rows, people, items, features, partitions,
folder and the manifest's digest; never a person's id) happen in one transaction of the
store, so an export whose files or manifest fail to be written leaves no entry, and the
entry's numbers are those of the read. Only the final rename comes after the commit: if it
fails, the entry records an export that did not land (never the other way round). The
store's write lock is held while the files are written.

**Atomic.** Everything is written into a hidden sibling folder (``.<name>.tmp-<random>``)
and renamed into place at the end; a failure removes it, and a crash leaves at most that
hidden folder, never a folder under the asked name that looks complete. ``overwrite=True``
replaces an earlier export (a folder whose manifest says so) the same way, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from persona._columns import EventColumns
from persona._frames import Column, require_arrow, to_arrow
from persona.errors import MissingDependencyError, ValidationError
from persona.schema import Lineage
from persona.store._common import is_utf8
from persona.store._reads import scoped_events

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = [
    "ACTION", "FORMAT", "FORMAT_VERSION", "MANIFEST", "MAX_PARTITIONS", "manifest_digest",
    "partition_of", "to_parquet",
]

FORMAT = "persona.scoped_parquet"
FORMAT_VERSION = 1
MANIFEST = "_manifest.json"
ACTION = "scoped_export"  # (written out where it is appended: a test reads the actions)
#: More files than this is a mistake (a Dask partition per file: thousands of tiny ones);
#: it also keeps a partition's number in an int16.
MAX_PARTITIONS = 4096
_CHUNK = 1 << 20


def to_parquet(
    db: Db, purpose: str, folder: Any, partitions: Any, overwrite: Any
) -> tuple[Path, Lineage]:
    """Write the events usable for ``purpose`` now into ``folder`` (see the module doc);
    returns the folder and the read's lineage."""
    n = _check_partitions(partitions)
    if not isinstance(overwrite, bool):
        raise ValidationError(
            f"field 'overwrite': give True or False, not {overwrite!r}",
            errors=[{"row": None, "field": "overwrite", "message": "not a bool"}],
        )
    path = _check_folder(folder, overwrite)
    require_arrow("to_parquet()")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError(
            "to_parquet() needs pyarrow.parquet, which is not installed; install it with "
            "pip install 'persona[arrow]'",
            package="pyarrow",
        ) from None
    with db.lock:  # an unknown purpose is refused before anything is written
        db.refresh()
        db.purpose_id(purpose)
    tmp = path.parent / f".{path.name}.tmp-{secrets.token_hex(6)}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as exc:
        raise ValidationError(
            f"field 'folder': cannot make a folder in {str(path.parent)!r} ({exc}); give "
            "the path of a folder in a place this process can write to",
            errors=[{"row": None, "field": "folder", "message": "cannot be made"}],
        ) from None
    try:
        with db.lock, db.read_transaction():
            cols, fields = scoped_events(db, purpose)
            files = _write_parts(pq, tmp, cols, n)
            body = _body(db, fields, files, n)
            digest = manifest_digest(body)
            seq = db.audit.append("scoped_export", {
                "purpose": purpose,
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "rows": len(cols),
                "people": int(cols.users.size),
                "items": int(cols.items.size),
                "features": list(cols.features),
                "partitions": n,
                "folder": str(path),
                "manifest_sha256": digest,
            })
            manifest = {**body, "audit": {
                "seq": seq, "action": ACTION, "manifest_sha256": digest,
            }}
            _write_synced(tmp / MANIFEST, json.dumps(manifest, indent=2).encode())
            _sync_dir(tmp)
        _place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path, Lineage(**fields, audit_seq=seq)


def partition_of(users: np.ndarray | list[str], partitions: int) -> np.ndarray:
    """The partition of each person (see the module doc), as ``int32``."""
    digests = b"".join(
        [hashlib.blake2b(u.encode("utf-8"), digest_size=8).digest() for u in users]
    )
    hashes = np.frombuffer(digests, dtype=">u8")
    return (hashes % np.uint64(partitions)).astype(np.int32)


def manifest_digest(manifest: dict[str, Any]) -> str:
    """SHA-256 of the manifest without its ``audit`` part, as canonical JSON (keys sorted,
    no spaces, ASCII): what the audit entry holds, and what a reviewer recomputes."""
    body = {k: v for k, v in manifest.items() if k != "audit"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------- the checks
def _check_partitions(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValidationError(
            f"field 'partitions': give the number of files as an int, not {value!r}; "
            "e.g. partitions=16",
            errors=[{"row": None, "field": "partitions", "message": "not an int"}],
        )
    n = int(value)
    if not 1 <= n <= MAX_PARTITIONS:
        raise ValidationError(
            f"field 'partitions': give between 1 and {MAX_PARTITIONS} files, not {n}; "
            "e.g. partitions=16 (a Dask partition per file: aim for tens of MB each)",
            errors=[{"row": None, "field": "partitions", "message": "out of range"}],
        )
    return n


def _check_folder(folder: Any, overwrite: bool) -> Path:
    name = os.fspath(folder) if isinstance(folder, str | os.PathLike) else None
    if not isinstance(name, str) or not name:
        raise ValidationError(
            f"field 'folder': give the path of a new or empty folder (a str or a Path), "
            f"not {folder!r}",
            errors=[{"row": None, "field": "folder", "message": "not a path"}],
        )
    if not is_utf8(name) or "\0" in name:
        raise ValidationError(
            f"field 'folder': {name[:80]!r} cannot be recorded in the audit log (a lone "
            "surrogate or a NUL); give a path of valid Unicode text",
            errors=[{"row": None, "field": "folder", "message": "not valid text"}],
        )
    path = Path(os.path.abspath(name))
    if path.exists() and not path.is_dir():
        raise ValidationError(
            f"field 'folder': {str(path)!r} is a file, not a folder; give the path of a new "
            "or empty folder",
            errors=[{"row": None, "field": "folder", "message": "a file"}],
        )
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise ValidationError(
                f"field 'folder': {str(path)!r} is not empty; give a new or empty folder, "
                "or pass overwrite=True to replace an earlier export there",
                errors=[{"row": None, "field": "folder", "message": "not empty"}],
            )
        if not _is_export(path):
            raise ValidationError(
                f"field 'folder': {str(path)!r} holds files but is not an export made by "
                "to_parquet(), so overwrite=True does not replace it; give a new or empty "
                "folder, or delete its files yourself",
                errors=[{"row": None, "field": "folder", "message": "not an export"}],
            )
    return path


def _is_export(path: Path) -> bool:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


# ---------------------------------------------------------------- the files
def _write_parts(pq: Any, tmp: Path, cols: EventColumns, n: int) -> list[dict[str, Any]]:
    """Write ``cols`` as ``n`` files in ``tmp``, one partition at a time (only one
    partition's arrow table is held at once); their entries for the manifest."""
    part_of_user = partition_of(cols.users, n)
    # each person's code inside their partition's dictionary (people in read order)
    order_u = np.argsort(part_of_user, kind="stable")
    count_u = np.bincount(part_of_user, minlength=n)
    start_u = np.concatenate([[0], np.cumsum(count_u)])
    local_user = np.empty(part_of_user.size, dtype=np.int32)
    local_user[order_u] = np.arange(part_of_user.size) - np.repeat(start_u[:-1], count_u)
    # events by partition, in read order inside each (a stable sort of int16 is a radix
    # sort: linear in the events)
    part_of_event = part_of_user.astype(np.int16)[cols.user]
    order = np.argsort(part_of_event, kind="stable")
    start = np.concatenate([[0], np.cumsum(np.bincount(part_of_event, minlength=n))])
    files = []
    for p in range(n):
        idx = order[start[p] : start[p + 1]]
        people = cols.users[order_u[start_u[p] : start_u[p + 1]]]
        items, item = _compact(cols.item[idx], cols.items.size)
        table = to_arrow({
            "user": Column("codes", local_user[cols.user[idx]], people),
            "item": Column("codes", item, cols.items[items]),
            "feature": Column("codes", cols.feature[idx], cols.features),
            "value": Column("float", cols.value[idx]),
            "at": Column("time", cols.at[idx]),
            "partition": Column("int", np.full(idx.size, p, dtype=np.int64)),
        })
        name = f"part-{p:05d}.parquet"
        pq.write_table(table, str(tmp / name))
        del table
        files.append({
            "name": name, "partition": p, "rows": int(idx.size), "people": int(people.size),
            "sha256": _sha256_synced(tmp / name),
        })
    return files


def _compact(codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``codes`` (of ``size`` possible ones), sorted, and each code's place
    among them: ``np.unique(codes, return_inverse=True)``, without sorting the codes when
    they are many for their range."""
    if codes.size * 16 < size:
        kept, inverse = np.unique(codes, return_inverse=True)
        return kept, inverse.reshape(-1)
    present = np.zeros(size, dtype=bool)
    present[codes] = True
    place = np.cumsum(present, dtype=np.int64) - 1
    return np.flatnonzero(present), place[codes]


def _body(
    db: Db, fields: dict[str, Any], files: list[dict[str, Any]], n: int
) -> dict[str, Any]:
    """The manifest without its ``audit`` part, as it reads back from JSON."""
    lineage = Lineage(**fields).model_dump(mode="json", exclude={"audit_seq"})
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "store_id": db.store_id,
        "purpose": fields["purpose"],
        "read_at": lineage["read_at"],
        "rows": fields["rows"],
        "people": fields["people"],
        "items": fields["items"],
        "columns": ["user", "item", "feature", "value", "at", "partition"],
        "partitioning": {
            "by": "user",
            "partitions": n,
            "rule": "int.from_bytes(hashlib.blake2b(user.encode('utf-8'), digest_size=8)"
                    ".digest(), 'big') % partitions",
        },
        "files": files,
        "lineage": lineage,
        "erasure": "a copy outside the store: erasing a person in the store does not reach "
                   "it; delete this folder and export again after an erasure",
    }
    result: dict[str, Any] = json.loads(json.dumps(body))
    return result


def _sha256_synced(path: Path) -> str:
    """The file's SHA-256, after making sure it is on disk."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        os.fsync(f.fileno())
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_dir(path: Path) -> None:
    """Make a folder's entries durable (POSIX; elsewhere the rename is all there is)."""
    if os.name != "posix":  # pragma: no cover - Windows cannot open a folder
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _place(tmp: Path, path: Path) -> None:
    """Rename the finished ``tmp`` to ``path``; an existing (empty, or an earlier export
    when overwriting) ``path`` is moved aside first and removed after."""
    old = None
    if path.is_dir():
        old = path.parent / f".{path.name}.old-{secrets.token_hex(6)}"
        os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        if old is not None:
            os.rename(old, path)
        raise
    _sync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
