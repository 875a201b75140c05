"""Rule 7: several processes at once lose nothing; SIGKILL mid-batch leaves no partial batch."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import persona
from store_helpers import Clock, event, file_rows, shop, writer_process

ROOT = Path(__file__).resolve().parents[1]


def test_several_processes_write_and_read_without_loss(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    shop(path).close()
    ctx = multiprocessing.get_context("spawn")
    workers, batches, size = 4, 12, 40
    procs = [
        ctx.Process(target=writer_process, args=(path, w, batches, size)) for w in range(workers)
    ]
    for p in procs:
        p.start()
    # read while they write
    reader = persona.Store(path, timeout=60)
    seen = 0
    while any(p.is_alive() for p in procs):
        seen = max(seen, len(reader.scope("personalization").events()))
        time.sleep(0.02)
    for p in procs:
        p.join()
        assert p.exitcode == 0
    cols = reader.scope("personalization").events()
    assert len(cols) == workers * batches * size
    assert len(set(cols.users)) == workers * batches
    assert reader.audit.verify()
    assert file_rows(reader, "PRAGMA integrity_check")[0][0] == "ok"
    grants = reader.audit.entries(action="consent_grant")
    assert len(grants) == workers * batches


CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from store_helpers import event
    import persona
    store = persona.Store({path!r})
    b = 0
    while True:
        store.ingest([event(f"k{{b}}-{{i % 50}}", f"sku-{{i}}", value=float(b))
                      for i in range({size})])
        b += 1
        print(b, flush=True)
""")


def test_sigkill_mid_batch_leaves_whole_batches_and_a_sound_file(tmp_path: Path) -> None:
    path = str(tmp_path / "crash.db")
    shop(path).close()
    size = 20_000
    for delay in (0.05, 0.13, 0.31):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD.format(tests=str(ROOT / "tests"), path=path, size=size)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        assert child.stdout is not None
        child.stdout.readline()  # at least one batch committed
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        store = persona.Store(path)
        assert file_rows(store, "PRAGMA integrity_check")[0][0] == "ok"
        events = store.stats()["events"]
        assert events > 0 and events % size == 0, events
        assert store.audit.verify()
        ingests = store.audit.entries(action="ingest")
        assert sum(e.detail["inserted"] for e in ingests) == events
        store.close()


def test_an_erasure_by_another_connection_invalidates_cached_ids(tmp_path: Path) -> None:
    path = str(tmp_path / "two.db")
    a = shop(path)
    b = persona.Store(path)
    a.grant("u1", "personalization", source="form")
    a.ingest([{"user": "u1", "item": "x", "feature": "purchases", "at": "2026-11-01T10:00:00Z"}])
    b.erase("u1")  # a still has u1's old code cached
    a.grant("u1", "personalization", source="came back")
    a.ingest([{"user": "u1", "item": "y", "feature": "purchases", "at": "2026-11-02T10:00:00Z"}])
    for store in (a, b):
        cols = store.scope("personalization").events()
        assert list(cols.users) == ["u1"]
        assert list(cols.items) == ["y"]
    orphans = file_rows(
        a, "SELECT count(*) FROM consent_events WHERE subject_id NOT IN (SELECT id FROM subjects)"
    )[0][0]
    assert orphans == 0


def _people_codes(store: persona.Store) -> dict[str, int]:
    return dict(file_rows(store, "SELECT ext, id FROM subjects"))


def test_people_created_by_another_handle_keep_one_code(tmp_path: Path) -> None:
    """Each handle's cache of person codes is complete up to a watermark; people another
    handle creates in between are found, never created twice."""
    clock = Clock()
    a = shop(str(tmp_path / "s.db"), clock)
    b = persona.Store(tmp_path / "s.db", clock=clock)
    a.ingest([event(f"u{k}", f"sku-{k}") for k in range(3)])
    b.ingest([event(f"u{k}", "sku-x") for k in range(2, 6)])  # u2 held, u3-u5 new
    a.grant("u9", "personalization", source="test")  # a person created outside ingest
    a.ingest([event("u5", "sku-y"), event("u6", "sku-y"), event("u9", "sku-y")])
    b.ingest([event("u6", "sku-z"), event("u7", "sku-z")])
    codes = _people_codes(a)
    assert sorted(codes) == [f"u{k}" for k in (0, 1, 2, 3, 4, 5, 6, 7, 9)]
    for handle in (a, b):
        assert {u: c for u, c in handle._subjects.items() if u in codes} == {
            u: codes[u] for u in handle._subjects
        }
    assert sorted(e["item"] for e in a.export("u5")["events"]) == ["sku-x", "sku-y"]
    assert sorted(e["item"] for e in b.export("u6")["events"]) == ["sku-y", "sku-z"]
    a.close()
    b.close()


def test_a_fresh_handle_on_many_people_looks_up_only_the_batch(tmp_path: Path) -> None:
    """Past the catch-up limit a handle asks the file for just the people in the batch,
    and its cache is not treated as complete afterwards."""
    clock = Clock()
    a = shop(str(tmp_path / "s.db"), clock)
    a.ingest([event(f"p{k}", "sku-1") for k in range(70_000)])
    b = persona.Store(tmp_path / "s.db", clock=clock)
    b.ingest([event("p69999", "sku-2"), event("new", "sku-2")])
    assert len(b._subjects) == 2 and b._subjects_upto == 0
    codes = _people_codes(b)
    assert b._subjects == {"p69999": codes["p69999"], "new": codes["new"]}
    a.ingest([event("new", "sku-3"), event("p1", "sku-3")])  # a's cache: up to p69999
    assert a._subjects["new"] == codes["new"]
    assert len(a.export("new")["events"]) == 2
    a.close()
    b.close()
