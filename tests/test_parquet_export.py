"""``ScopedView.to_parquet``: consent-scoped reads written as hash-partitioned Parquet files
for a cluster (issue 23, first part). The folder holds what ``view.events()`` holds, in
one snapshot, one audit entry records it, and a failure leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import persona
from store_helpers import Clock, event, shop

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
ds = pytest.importorskip("pyarrow.dataset")

PURPOSE = "personalization"
ROW = tuple[str, str, str, float, datetime]


def _filled(key: bytes | None = None) -> persona.Store:
    """A shop with 40 consenting people (purchases, views, a location each), one who
    withdrew, one who declined, one never asked, a "don't use" and an old view."""
    clock = Clock()
    store = shop(clock=clock)
    if key is not None:
        store = persona.Store(":memory:", clock=clock, pseudonym_key=key)
        store.define_purpose(PURPOSE, description="Recommend products from what you buy")
        store.define_purpose("ads", description="Show our ads on other sites")
        store.define_feature("purchases", purposes=[PURPOSE], category="purchase history",
                             retention_days=730)
        store.define_feature("views", purposes=[PURPOSE], category="browsing history",
                             retention_days=30)
        store.define_feature("location", purposes=["ads"], category="approximate location",
                             retention_days=None)
    people = [f"u{i}" for i in range(40)]
    for user in [*people, "gone", "nope"]:
        store.grant(user, PURPOSE, source="signup form")
    store.withdraw("gone", PURPOSE)
    store.withdraw("nope", PURPOSE)
    store.decline("nope", PURPOSE, source="banner")
    rows = []
    for n, user in enumerate([*people, "gone", "nope", "never"]):
        rows += [
            event(user, f"sku-{n % 7}", "purchases", value=float(n)),
            event(user, f"sku-{(n + 3) % 11}", "views", at="2026-11-20T09:00:00Z"),
            event(user, "here", "location"),
        ]
    rows.append(event("u1", "old", "views", at="2026-11-10T09:00:00Z"))  # outside 30 days...
    rows.append(event("u2", "skip-me", "purchases"))
    store.ingest(rows)
    store.feedback("u2", "skip-me", "dont_use")
    clock.advance(days=20)  # ... by the time of the reads
    return store


@pytest.fixture
def store() -> persona.Store:
    return _filled()


def _rows_of_events(view: persona.ScopedView) -> list[ROW]:
    cols = view.events()
    return sorted(
        (str(cols.users[u]), str(cols.items[i]), cols.features[f], float(v),
         datetime.fromisoformat(str(t)).replace(tzinfo=UTC))
        for u, i, f, v, t in zip(cols.user, cols.item, cols.feature, cols.value, cols.at,
                                 strict=True)
    )


def _rows_of(table: Any) -> list[ROW]:
    d = table.to_pydict()
    return sorted(zip(d["user"], d["item"], d["feature"], d["value"], d["at"], strict=True))


def _manifest(folder: Path) -> dict[str, Any]:
    manifest = json.loads((folder / "_manifest.json").read_text())
    assert isinstance(manifest, dict)
    return manifest


def _digest(manifest: dict[str, Any]) -> str:
    """The manifest's digest as documented: SHA-256 of its canonical JSON without "audit"."""
    body = {k: v for k, v in manifest.items() if k != "audit"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _partition_of(user: str, partitions: int) -> int:
    """The documented assignment: BLAKE2b (8 bytes) of the UTF-8 id, big-endian, mod N."""
    digest = hashlib.blake2b(user.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def _listing(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


# ---------------------------------------------------------------- what the folder holds
def test_the_partitions_hold_exactly_what_events_reads(
    store: persona.Store, tmp_path: Path
) -> None:
    view = store.scope(PURPOSE)
    out = view.to_parquet(tmp_path / "export", partitions=4)
    assert out == tmp_path / "export" and isinstance(out, Path)
    assert _listing(out) == ["_manifest.json", *(f"part-{p:05d}.parquet" for p in range(4))]
    dataset = ds.dataset(out)  # the manifest is not a data file
    assert sorted(Path(f).name for f in dataset.files) == [f"part-{p:05d}.parquet"
                                                          for p in range(4)]
    assert _rows_of(dataset.to_table()) == _rows_of_events(view)


@pytest.mark.parametrize("partitions", [1, 7, 200])
def test_many_items_few_events_per_file(tmp_path: Path, partitions: int) -> None:
    """Each file's dictionary of items holds its own items only, whether the file holds
    many events for the store's items or few (more files than people: some are empty)."""
    store = shop(clock=Clock())
    people = [f"p{n}" for n in range(150)]
    store.grant_many([{"user": u, "purpose": PURPOSE} for u in people], source="import")
    store.ingest([event(u, f"sku-{n}-{k}", value=float(k)) for n, u in enumerate(people)
                  for k in range(n % 3 + 1)])
    view = store.scope(PURPOSE)
    out = view.to_parquet(tmp_path / "x", partitions=partitions)
    assert _rows_of(ds.dataset(out).to_table()) == _rows_of_events(view)
    for p in range(partitions):
        items = pq.read_table(out / f"part-{p:05d}.parquet").column("item").combine_chunks()
        assert sorted(items.dictionary.to_pylist()) == sorted(set(items.to_pylist()))


def test_consent_features_retention_and_dont_use_apply(
    store: persona.Store, tmp_path: Path
) -> None:
    table = ds.dataset(store.scope(PURPOSE).to_parquet(tmp_path / "x", partitions=3)).to_table()
    users = set(table.column("user").to_pylist())
    assert users == {f"u{i}" for i in range(40)}  # not gone, nope or never
    assert set(table.column("feature").to_pylist()) == {"purchases", "views"}  # no location
    items = set(table.column("item").to_pylist())
    assert "old" not in items and "skip-me" not in items and "here" not in items


def test_every_person_is_in_exactly_one_partition_given_by_the_documented_hash(
    store: persona.Store, tmp_path: Path
) -> None:
    out = store.scope(PURPOSE).to_parquet(tmp_path / "x", partitions=5)
    seen: dict[str, int] = {}
    for p in range(5):
        table = pq.read_table(out / f"part-{p:05d}.parquet")
        assert set(table.column("partition").to_pylist()) <= {p}
        # each file's dictionary of people holds only its own people
        people = set(table.column("user").combine_chunks().dictionary.to_pylist())
        assert people == set(table.column("user").to_pylist())
        for user in people:
            assert user not in seen
            seen[user] = p
            assert _partition_of(user, 5) == p
    assert len(seen) == 40
    assert len(set(seen.values())) > 1  # 40 people spread over the files


def test_assignment_is_the_same_in_stores_with_other_pseudonym_keys(tmp_path: Path) -> None:
    folders = []
    for n, key in enumerate((secrets.token_bytes(32), secrets.token_bytes(32), None)):
        folders.append(_filled(key).scope(PURPOSE).to_parquet(tmp_path / str(n), partitions=6))
    files = [
        [_rows_of(pq.read_table(f / f"part-{p:05d}.parquet")) for p in range(6)]
        for f in folders
    ]
    assert files[0] == files[1] == files[2]


def test_columns_and_types(store: persona.Store, tmp_path: Path) -> None:
    out = store.scope(PURPOSE).to_parquet(tmp_path / "x", partitions=2)
    schema = ds.dataset(out).schema
    assert schema.names == ["user", "item", "feature", "value", "at", "partition"]
    assert schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("value").type == pa.float64()
    pd = pytest.importorskip("pandas")
    df = pd.read_parquet(out)
    assert len(df) == len(store.scope(PURPOSE).events())
    assert str(df["at"].dt.tz) == "UTC"


def test_nobody_consenting_gives_empty_files_with_the_columns(tmp_path: Path) -> None:
    store = shop(clock=Clock())
    out = store.scope(PURPOSE).to_parquet(tmp_path / "x", partitions=2)
    table = ds.dataset(out).to_table()
    assert table.num_rows == 0
    assert table.schema.names == ["user", "item", "feature", "value", "at", "partition"]
    assert [f["rows"] for f in _manifest(out)["files"]] == [0, 0]


# ---------------------------------------------------------------- manifest and audit
def test_manifest_digests_match_the_files_and_the_audit_entry(
    store: persona.Store, tmp_path: Path
) -> None:
    view = store.scope(PURPOSE)
    out = view.to_parquet(tmp_path / "x", partitions=3)
    manifest = _manifest(out)
    assert manifest["format"] == "persona.scoped_parquet" and manifest["format_version"] == 1
    assert manifest["purpose"] == PURPOSE
    assert manifest["store_id"] == store.store_id
    assert datetime.fromisoformat(manifest["read_at"]) == store.audit.entries()[-1].at
    assert [f["name"] for f in manifest["files"]] == [f"part-{p:05d}.parquet" for p in range(3)]
    for f in manifest["files"]:
        assert hashlib.sha256((out / f["name"]).read_bytes()).hexdigest() == f["sha256"]
        assert pq.read_metadata(out / f["name"]).num_rows == f["rows"]
    assert sum(f["rows"] for f in manifest["files"]) == manifest["rows"] == len(view.events())
    assert manifest["partitioning"]["partitions"] == 3
    lineage = manifest["lineage"]
    assert lineage["consent"] == {"purpose": PURPOSE, "granted": 40, "withdrawn": 1,
                                  "declined": 1}
    assert {f["feature"] for f in lineage["features"] if f["used"]} == {"purchases", "views"}
    assert lineage["outside_retention"] == {"views": 1}

    audit = manifest["audit"]
    entry = store.audit.entries(action="scoped_export")[-1]
    assert entry.seq == audit["seq"]
    assert entry.detail["manifest_sha256"] == audit["manifest_sha256"] == _digest(manifest)
    assert entry.detail["purpose"] == PURPOSE
    assert entry.detail["rows"] == manifest["rows"]
    assert entry.detail["people"] == 40
    assert entry.detail["partitions"] == 3
    assert entry.subject is None
    text = json.dumps(entry.detail)
    assert not any(f'"u{i}"' in text for i in range(40))  # no person's id in the log
    assert store.audit.verify()


def test_one_audit_entry_and_the_view_lineage(store: persona.Store, tmp_path: Path) -> None:
    view = store.scope(PURPOSE)
    before = len(store.audit.entries())
    view.to_parquet(tmp_path / "x", partitions=2)
    after = store.audit.entries()
    assert len(after) == before + 1 and after[-1].action == "scoped_export"
    assert view.lineage.audit_seq == after[-1].seq  # the export was the view's last read
    assert view.lineage.rows == after[-1].detail["rows"]


def test_overwrite_replaces_an_earlier_export(store: persona.Store, tmp_path: Path) -> None:
    view = store.scope(PURPOSE)
    out = view.to_parquet(tmp_path / "x", partitions=4)
    store.withdraw("u3", PURPOSE)
    with pytest.raises(persona.ValidationError, match="overwrite=True"):
        view.to_parquet(out, partitions=2)
    again = view.to_parquet(out, partitions=2, overwrite=True)
    assert _listing(again) == ["_manifest.json", "part-00000.parquet", "part-00001.parquet"]
    assert "u3" not in set(ds.dataset(again).to_table().column("user").to_pylist())
    assert _listing(tmp_path) == ["x"]  # no temporary or old folder left beside it


def test_an_empty_existing_folder_is_used(store: persona.Store, tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    out = store.scope(PURPOSE).to_parquet(tmp_path / "x", partitions=1)
    assert _listing(out) == ["_manifest.json", "part-00000.parquet"]
    out = store.scope(PURPOSE).to_parquet(str(tmp_path / "y"), partitions=1)  # a str path
    assert out == tmp_path / "y"


# ---------------------------------------------------------------- refused, nothing written
@pytest.mark.parametrize("partitions", [0, -1, True, False, "4", 2.0, None, 4097, 10**9])
def test_bad_partitions_are_refused(
    store: persona.Store, tmp_path: Path, partitions: Any
) -> None:
    before = len(store.audit.entries())
    with pytest.raises(persona.ValidationError, match="partitions") as exc:
        store.scope(PURPOSE).to_parquet(tmp_path / "x", partitions=partitions)
    assert "e.g." in str(exc.value) or "give" in str(exc.value)
    assert exc.value.errors[0]["field"] == "partitions"
    assert _listing(tmp_path) == [] and len(store.audit.entries()) == before


@pytest.mark.parametrize("folder", [123, None, b"/tmp/x", ["x"], "", "a\0b", "x\ud800y"])
def test_bad_folders_are_refused(store: persona.Store, tmp_path: Path, folder: Any) -> None:
    before = len(store.audit.entries())
    if isinstance(folder, str) and folder:
        folder = str(tmp_path / folder)
    with pytest.raises(persona.ValidationError, match="folder") as exc:
        store.scope(PURPOSE).to_parquet(folder, partitions=2)
    assert exc.value.errors[0]["field"] == "folder"
    assert _listing(tmp_path) == [] and len(store.audit.entries()) == before


def test_missing_parent_folders_are_made(store: persona.Store, tmp_path: Path) -> None:
    out = store.scope(PURPOSE).to_parquet(tmp_path / "a" / "b" / "c", partitions=1)
    assert _listing(out) == ["_manifest.json", "part-00000.parquet"]


def test_overwrite_never_replaces_a_folder_with_another_programs_manifest(
    store: persona.Store, tmp_path: Path,
) -> None:
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "_manifest.json").write_text('{"format": "their-tool", "v": 1}')
    with pytest.raises(persona.ValidationError, match="not an export") as exc:
        store.scope(PURPOSE).to_parquet(tmp_path / "theirs", partitions=2, overwrite=True)
    assert exc.value.errors[0]["field"] == "folder"
    assert _listing(tmp_path / "theirs") == ["_manifest.json"]


def test_a_failed_final_rename_puts_the_earlier_export_back(
    store: persona.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = store.scope(PURPOSE).to_parquet(tmp_path / "x", partitions=2)
    files = {name: (out / name).read_bytes() for name in _listing(out)}
    rename = os.rename

    def failing(src: Any, dst: Any) -> None:
        if ".tmp-" in Path(src).name:  # the finished export going into place
            raise OSError("rename failed")
        rename(src, dst)

    monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(OSError, match="rename failed"):
        store.scope(PURPOSE).to_parquet(out, partitions=3, overwrite=True)
    monkeypatch.undo()
    assert _listing(tmp_path) == ["x"]
    assert {name: (out / name).read_bytes() for name in _listing(out)} == files


def test_a_non_empty_folder_or_a_file_is_refused(store: persona.Store, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    (tmp_path / "file").write_text("a file")
    before = len(store.audit.entries())
    view = store.scope(PURPOSE)
    with pytest.raises(persona.ValidationError, match="overwrite=True"):
        view.to_parquet(tmp_path / "busy", partitions=2)
    # overwrite replaces only an earlier export, never someone's other files
    with pytest.raises(persona.ValidationError, match="not an export"):
        view.to_parquet(tmp_path / "busy", partitions=2, overwrite=True)
    with pytest.raises(persona.ValidationError, match="file"):
        view.to_parquet(tmp_path / "file", partitions=2, overwrite=True)
    with pytest.raises(persona.ValidationError, match="overwrite"):
        view.to_parquet(tmp_path / "x", partitions=2, overwrite="yes")  # type: ignore[arg-type]
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    assert _listing(tmp_path) == ["busy", "file"] and len(store.audit.entries()) == before


def test_a_folder_that_cannot_be_made_is_refused(store: persona.Store, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file")
    before = len(store.audit.entries())
    with pytest.raises(persona.ValidationError, match="cannot make a folder"):
        store.scope(PURPOSE).to_parquet(tmp_path / "file" / "x", partitions=2)
    assert _listing(tmp_path) == ["file"] and len(store.audit.entries()) == before


def test_an_unknown_purpose_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    store = shop(clock=Clock())
    with pytest.raises(persona.UnknownPurposeError):
        store.scope("nothing").to_parquet(tmp_path / "x", partitions=2)
    assert _listing(tmp_path) == []


def test_without_pyarrow_the_error_names_the_extra(
    store: persona.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = len(store.audit.entries())
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(persona.MissingDependencyError, match=r"persona\[arrow\]"):
        store.scope(PURPOSE).to_parquet(tmp_path / "x", partitions=2)
    assert _listing(tmp_path) == [] and len(store.audit.entries()) == before


# ---------------------------------------------------------------- failure mid-write
def test_a_failure_mid_write_leaves_no_folder_and_no_audit_entry(
    store: persona.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pq.write_table
    calls = []

    def failing(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        real(*args, **kwargs)

    monkeypatch.setattr(pq, "write_table", failing)
    before = len(store.audit.entries())
    with pytest.raises(OSError, match="disk full"):
        store.scope(PURPOSE).to_parquet(tmp_path / "x", partitions=4)
    assert len(calls) == 3
    assert _listing(tmp_path) == []  # neither the folder nor a temporary one
    assert len(store.audit.entries()) == before and store.audit.verify()


def test_a_failure_while_overwriting_keeps_the_earlier_export(
    store: persona.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = store.scope(PURPOSE).to_parquet(tmp_path / "x", partitions=2)
    files = {name: (out / name).read_bytes() for name in _listing(out)}

    def failing(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", failing)
    with pytest.raises(OSError, match="disk full"):
        store.scope(PURPOSE).to_parquet(out, partitions=3, overwrite=True)
    assert _listing(tmp_path) == ["x"]
    assert {name: (out / name).read_bytes() for name in _listing(out)} == files
