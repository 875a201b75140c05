"""Several serving workers over one store file (issue 21): the curation and the live model
are held in the store, and every Personalizer on it picks a change up within its
``refresh_every``."""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

import persona
from serving_helpers import ITEMS, FakeTime, serving_worker, shop_file
from store_helpers import file_rows, fingerprint

PURPOSE = "personalization"


def _items(p: persona.Personalizer, user: str, n: int = 6) -> list[str]:
    return [r.item for r in p.recommend(user, n=n)]


@pytest.fixture
def path(tmp_path: Path) -> str:
    name = str(tmp_path / "shop.db")
    shop_file(name).close()
    return name


@pytest.fixture
def stores(path: str) -> Any:
    a, b = persona.Store(path), persona.Store(path)
    yield a, b
    a.close()
    b.close()


def _knn(store: persona.Store, **kw: Any) -> persona.Personalizer:
    return persona.Personalizer(store, model=persona.ItemKNN(), **kw).fit()


# ---------------------------------------------------------------------- curation
def test_pins_and_blocks_reach_the_other_worker(stores: Any) -> None:
    a, b = stores
    pa, pb = _knn(a), _knn(b, refresh_every=0)
    before = _items(pb, "p0")
    top = before[0]
    pa.curate(pin={"sku-23": 2}, block=[top], reason="Winter sale", by="merchandising")
    shared = b.curation(PURPOSE)
    assert shared.pin == {"sku-23": 2} and shared.block == frozenset({top})
    assert shared.reason == "Winter sale" and shared.by == "merchandising"
    assert shared.version == 1 and shared.at is not None
    after = _items(pb, "p0")
    assert after[1] == "sku-23" and top not in after
    assert pb.curation == shared
    assert pb.recommend("p0", n=3)[1].explanation.kind == "curated"
    # a new Personalizer on the store starts with the store's curation
    assert persona.Personalizer(b).curation == shared
    assert a.audit.verify() and b.audit.verify()


def test_a_block_applies_on_the_fallback_path_of_the_other_worker(stores: Any) -> None:
    a, b = stores
    pa, pb = _knn(a), _knn(b, refresh_every=0)
    b.prefer_non_profiling("p2", source="settings page")
    stranger = _items(pb, "p39")  # no consent: the non-profiling list
    chose = _items(pb, "p2")  # their choice: the non-profiling list
    pa.curate(block=[stranger[0], chose[0]], reason="product recall")
    assert stranger[0] not in _items(pb, "p39")
    assert chose[0] not in _items(pb, "p2")
    assert pb.fallback_.blocked_ >= {stranger[0], chose[0]}
    pa.curate(block=[], reason="recall over")
    assert _items(pb, "p39")[0] == stranger[0]


def test_pick_up_waits_for_the_interval(stores: Any) -> None:
    a, b = stores
    clock = FakeTime()
    pa = _knn(a)
    pb = _knn(b, refresh_every=30, refresh_clock=clock)
    top = _items(pb, "p0")[0]
    pa.curate(block=[top], reason="recall")
    clock.now += 29.0
    assert _items(pb, "p0")[0] == top  # not checked yet
    clock.now += 1.0
    assert top not in _items(pb, "p0")
    assert pb.refresh_every == 30.0


def test_refresh_checks_now_and_says_what_changed(stores: Any) -> None:
    a, b = stores
    pa, pb = _knn(a), _knn(b, refresh_every=3600)
    assert pb.refresh() is False
    pa.curate(block=["sku-1"], reason="recall")
    assert pb.refresh() is True and pb.curation.block == frozenset({"sku-1"})
    assert pb.refresh() is False


def test_the_store_curation_is_checked_and_refused_whole(stores: Any) -> None:
    a, _ = stores
    a.set_curation(PURPOSE, pin=["sku-1"], reason="first")
    before = fingerprint(a), a.curation(PURPOSE)
    bad: list[dict[str, Any]] = [
        {"pin": "sku-1", "reason": "r"},
        {"block": "sku-1", "reason": "r"},
        {"pin": {"sku-1": True}, "reason": "r"},
        {"pin": {"sku-1": 0}, "reason": "r"},
        {"pin": ["sku-1"], "block": ["sku-1"], "reason": "r"},
        {"pin": ["sku-1"], "reason": ""},
        {"pin": ["sku-1"], "reason": "r", "by": 7},
        {"pin": [7.5], "reason": "r"},
    ]
    for kw in bad:
        with pytest.raises(persona.ValidationError) as info:
            a.set_curation(PURPOSE, **kw)
        assert info.value.code == "validation_error" and info.value.errors, kw
    with pytest.raises(persona.UnknownPurposeError, match="define_purpose"):
        a.set_curation("nope", pin=["sku-1"], reason="r")
    with pytest.raises(persona.UnknownPurposeError):
        a.curation("nope")
    assert (fingerprint(a), a.curation(PURPOSE)) == before
    assert a.serving_versions(PURPOSE) == (1, 0)


def test_a_curation_set_on_the_store_is_audited(stores: Any) -> None:
    a, _ = stores
    c = a.set_curation(PURPOSE, pin={"sku-2": 3}, block=["sku-4"], reason="Gift guide",
                       by="ana")
    entry = a.audit.entries(action="curation")[-1]
    assert entry.detail == {"pin": {"sku-2": 3}, "block": ["sku-4"], "reason": "Gift guide",
                            "by": "ana", "purpose": PURPOSE, "version": 1,
                            "at": c.at.isoformat()}
    assert entry.subject is None
    assert c.version == 1 and a.serving_versions(PURPOSE) == (1, 0)
    assert a.set_curation(PURPOSE, reason="cleared").version == 2
    assert a.curation(PURPOSE).pin == {} and a.audit.verify()


# ---------------------------------------------------------------------- the registry
def test_publish_live_and_the_other_worker_follows(stores: Any, tmp_path: Path) -> None:
    a, b = stores
    models = tmp_path / "models"
    pa = _knn(a)
    v1 = pa.publish(models)
    assert v1.version == pa.model_version_ and v1.live and v1.purpose == PURPOSE
    assert Path(v1.folder) == (models / v1.version).resolve()
    manifest = json.loads((Path(v1.folder) / "personalizer.json").read_text())
    assert v1.sha256 == manifest["sha256"] and v1.model_class == "ItemKNN"
    pb = persona.Personalizer.live(b, refresh_every=0)
    assert pb.model_version_ == v1.version
    assert _items(pb, "p0") == _items(pa, "p0")
    pa2 = persona.Personalizer(a, model=persona.ALS(factors=8, iterations=5, random_state=0))
    v2 = pa2.fit().publish(models)
    assert v2.version != v1.version
    assert [(v.version, v.live) for v in b.model_versions(PURPOSE)] == [
        (v1.version, False), (v2.version, True)]
    _items(pb, "p0")
    assert pb.model_version_ == v2.version and type(pb.model_).__name__ == "ALS"
    assert _items(pb, "p0") == _items(pa2, "p0")
    assert pb.refresh_error is None
    actions = [e.action for e in a.audit.entries()]
    assert actions.count("model_publish") == 2
    assert a.audit.verify()


def test_set_live_model_rolls_back_and_forward(stores: Any, tmp_path: Path) -> None:
    a, b = stores
    models = tmp_path / "models"
    v1 = _knn(a).publish(models)
    pb = persona.Personalizer.live(b, refresh_every=0)
    v2 = persona.Personalizer(a, model=persona.ALS(factors=8, iterations=5,
                                                   random_state=0)).fit().publish(models)
    _items(pb, "p0")
    assert pb.model_version_ == v2.version
    back = a.set_live_model(PURPOSE, v1.version)
    assert back.version == v1.version and back.live
    assert a.live_model(PURPOSE) == back
    _items(pb, "p0")
    assert pb.model_version_ == v1.version
    a.set_live_model(PURPOSE, v2.version)
    _items(pb, "p0")
    assert pb.model_version_ == v2.version
    entries = a.audit.entries(action="model_live")
    assert [e.detail["version"] for e in entries] == [v1.version, v2.version] * 2
    assert a.audit.verify()


def test_requests_during_swaps_see_one_whole_state(stores: Any, tmp_path: Path) -> None:
    """Threads serve while the live version and the curation change under them: every list
    is whole, from one version, and never holds a blocked item."""
    a, b = stores
    models = tmp_path / "models"
    v1 = _knn(a).publish(models)
    v2 = persona.Personalizer(a, model=persona.ALS(factors=8, iterations=5,
                                                   random_state=0)).fit().publish(models)
    a.set_curation(PURPOSE, block=["sku-0", "sku-6"], reason="recall")
    pb = persona.Personalizer.live(b, refresh_every=0)
    failures: list[BaseException] = []
    stop = threading.Event()

    def serve(user: str) -> None:
        while not stop.is_set():
            try:
                recs = pb.recommend(user, n=5)
                items = [r.item for r in recs]
                assert len(items) == len(set(items)) == 5
                assert [r.rank for r in recs] == [1, 2, 3, 4, 5]
                assert not {"sku-0", "sku-6"} & set(items)
                assert pb.model_version_ in (v1.version, v2.version)
            except BaseException as exc:  # reported below
                failures.append(exc)
                return

    threads = [threading.Thread(target=serve, args=(u,)) for u in ("p0", "p1", "p39")]
    for t in threads:
        t.start()
    for k in range(6):
        a.set_live_model(PURPOSE, (v1, v2)[k % 2].version)
        a.set_curation(PURPOSE, block=["sku-0", "sku-6"], pin={"sku-23": 1 + k % 3},
                       reason=f"recall {k}")
        pb.refresh()
    stop.set()
    for t in threads:
        t.join()
    assert not failures, failures[0]
    assert pb.model_version_ == v2.version and pb.curation.reason == "recall 5"


def test_an_unknown_version_is_refused_with_a_fix(stores: Any, tmp_path: Path) -> None:
    a, _ = stores
    _knn(a).publish(tmp_path / "models")
    before = fingerprint(a), a.model_versions(PURPOSE), a.serving_versions(PURPOSE)
    for bad in ("0123456789abcdef", "", 7, None, ["x"]):
        with pytest.raises(persona.ValidationError, match="model_versions") as info:
            a.set_live_model(PURPOSE, bad)  # type: ignore[arg-type]
        assert info.value.errors
    with pytest.raises(persona.UnknownPurposeError):
        a.set_live_model("nope", "0123456789abcdef")
    assert (fingerprint(a), a.model_versions(PURPOSE), a.serving_versions(PURPOSE)) == before


def test_live_without_a_published_model_says_what_to_do(stores: Any) -> None:
    a, _ = stores
    with pytest.raises(persona.NotFittedError, match="publish"):
        persona.Personalizer.live(a)
    assert a.live_model(PURPOSE) is None and a.model_versions(PURPOSE) == []


def test_a_damaged_version_is_refused_and_the_old_one_keeps_serving(
    stores: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = stores
    models = tmp_path / "models"
    v1 = _knn(a).publish(models)
    pb = persona.Personalizer.live(b, refresh_every=0)
    served = _items(pb, "p0")
    pa2 = persona.Personalizer(a, model=persona.ALS(factors=8, iterations=5, random_state=0))
    v2 = pa2.fit().publish(models)
    manifest = Path(v2.folder) / "model" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"ALS"', '"ALX"'))
    with caplog.at_level(logging.WARNING, logger="persona"):
        assert _items(pb, "p0") == served
    assert pb.model_version_ == v1.version
    assert isinstance(pb.refresh_error, persona.ModelFileError)
    assert v2.version in caplog.text
    # the folder of another (valid) version put in its place: its checksum is not the one
    # registered
    shutil.rmtree(v2.folder)
    shutil.copytree(v1.folder, v2.folder)
    assert pb.refresh() is False
    assert pb.model_version_ == v1.version and "checksum" in str(pb.refresh_error)
    shutil.rmtree(v2.folder)  # missing
    assert pb.refresh() is False and isinstance(pb.refresh_error, persona.ModelFileError)
    # a rollback to the good version clears the error
    a.set_live_model(PURPOSE, v1.version)
    assert _items(pb, "p0") == served and pb.refresh_error is None
    assert a.audit.verify()


def test_publishing_a_version_twice_is_refused(stores: Any, tmp_path: Path) -> None:
    a, _ = stores
    pa = _knn(a)
    pa.publish(tmp_path / "models")
    before = fingerprint(a)
    with pytest.raises(persona.ValidationError, match="set_live_model"):
        pa.publish(tmp_path / "models")
    with pytest.raises(persona.ValidationError, match="set_live_model"):
        pa.publish(tmp_path / "elsewhere")
    assert fingerprint(a) == before
    assert not (tmp_path / "elsewhere" / pa.model_version_).exists()


@pytest.mark.parametrize(("sql", "needle"), [
    ("UPDATE curation SET body = replace(body, 'sku-4', 'sku-5')", "curation"),
    ("DELETE FROM curation", "curation"),
    ("UPDATE model_versions SET folder = '/tmp/elsewhere'", "model version"),
    ("UPDATE model_versions SET sha256 = 'ab' || substr(sha256, 3)", "model version"),
    ("DELETE FROM model_versions", "model version"),
    ("UPDATE live_model SET changes = changes + 1", "live model"),
    ("UPDATE curation SET version = version + 1", "curation"),
    ("UPDATE curation SET at = '2020-01-01T00:00:00+00:00'", "curation"),
    # rows no entry ever recorded
    ("INSERT INTO curation VALUES ('ads', 1, '{}', '2026-01-01T00:00:00+00:00')", "curation"),
    ("INSERT INTO live_model VALUES ('ads', 'v9', 1, '2026-01-01T00:00:00+00:00')",
     "live model"),
])
def test_an_edit_of_the_shared_tables_in_the_file_is_found(
    stores: Any, tmp_path: Path, sql: str, needle: str,
) -> None:
    a, _ = stores
    pa = _knn(a)
    pa.curate(block=["sku-4"], reason="recall")
    pa.publish(tmp_path / "models")
    assert a.audit.verify()
    con = sqlite3.connect(a.path, isolation_level=None)
    con.execute(sql)
    con.close()
    problems = a.audit.problems()
    assert problems and any(needle in text for text in problems), problems
    assert a.audit.verify(tables=False)  # the chain itself is intact


# ---------------------------------------------------------------------- settings
@pytest.mark.parametrize("bad", [True, False, -1, -0.5, "5", math.nan, math.inf, None, [1]])
def test_a_bad_refresh_every_is_refused(stores: Any, tmp_path: Path, bad: Any) -> None:
    a, _ = stores
    pa = _knn(a)
    folder = pa.save(tmp_path / "saved")
    pa.publish(tmp_path / "models")
    before = fingerprint(a)
    for make in (
        lambda: persona.Personalizer(a, refresh_every=bad),
        lambda: persona.Personalizer.load(folder, a, refresh_every=bad),
        lambda: persona.Personalizer.live(a, refresh_every=bad),
    ):
        with pytest.raises(persona.ValidationError, match="refresh_every=") as info:
            make()
        assert info.value.errors[0]["field"] == "refresh_every"
    assert fingerprint(a) == before


def test_a_bad_refresh_clock_is_refused(stores: Any) -> None:
    a, _ = stores
    with pytest.raises(persona.ValidationError, match="refresh_clock"):
        persona.Personalizer(a, refresh_clock=3.0)  # type: ignore[arg-type]


def test_zero_and_integers_are_accepted(stores: Any) -> None:
    a, _ = stores
    assert persona.Personalizer(a, refresh_every=0).refresh_every == 0.0
    assert persona.Personalizer(a, refresh_every=2).refresh_every == 2.0
    assert persona.Personalizer(a).refresh_every == 5.0


# ---------------------------------------------------------------------- people's rights
def test_erasure_leaves_no_id_in_the_shared_tables(stores: Any, tmp_path: Path) -> None:
    a, b = stores
    pa = _knn(a)
    pa.curate(pin=["sku-3"], block=["sku-4"], reason="sale", by="team")
    pa.publish(tmp_path / "models")
    pb = persona.Personalizer.live(b, refresh_every=0)
    assert _items(pb, "p1")
    pa.forget("p1")
    _items(pb, "p1")  # now the non-profiling list
    pseudonym = a.pseudonym("p1")
    for table in ("curation", "model_versions", "live_model"):
        rows = file_rows(a, f"SELECT * FROM {table}")
        assert rows
        cells = [str(c) for row in rows for c in row]
        assert "p1" not in cells and not any('"p1"' in c or pseudonym in c for c in cells)
    assert not b.has_consent("p1", PURPOSE)
    assert a.audit.verify() and b.audit.verify()


def test_an_older_store_file_gains_the_shared_tables(tmp_path: Path) -> None:
    name = str(tmp_path / "old.db")
    shop_file(name).close()
    con = sqlite3.connect(name)
    for table in ("curation", "model_versions", "live_model"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    con.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with persona.Store(name) as store:
        assert store.curation(PURPOSE).version == 0
        assert store.serving_versions(PURPOSE) == (0, 0)
        store.set_curation(PURPOSE, block=["sku-1"], reason="r")
        assert store.audit.verify()
        assert file_rows(store, "SELECT value FROM meta WHERE key = 'schema_version'")[0][0] \
            == "5"


# ---------------------------------------------------------------------- a second process
def test_a_worker_in_another_process_picks_up_curation_and_model(
    path: str, tmp_path: Path,
) -> None:
    models = tmp_path / "models"
    with persona.Store(path) as a:
        pa = _knn(a)
        v1 = pa.publish(models)
        ctx = multiprocessing.get_context("spawn")
        changed, out = ctx.Event(), ctx.Queue()
        child = ctx.Process(target=serving_worker, args=(path, changed, out))
        child.start()
        try:
            version, p0, p39 = out.get(timeout=120)
            assert version == v1.version and p0 == _items(pa, "p0")
            pa2 = persona.Personalizer(a, model=persona.ALS(factors=8, iterations=5,
                                                            random_state=0))
            v2 = pa2.fit().publish(models)
            pa2.curate(pin={"sku-20": 1}, block=[p39[0]], reason="Winter sale")
            changed.set()
            version, p0, p39_after = out.get(timeout=120)
        finally:
            child.join(timeout=120)
        assert child.exitcode == 0
        assert version == v2.version
        assert p0[0] == "sku-20" and p39_after[0] == "sku-20"
        assert p39[0] not in p39_after and p39[0] not in p0
        assert a.audit.verify()
    assert set(ITEMS) >= set(p0)


# ---------------------------------------------------------------------- the store's API
def test_set_curation_returns_what_it_stored(stores: Any) -> None:
    a, b = stores
    c = a.set_curation("personalization", pin={"sku-1": 2}, block=["sku-4"],
                       reason="Holiday gift guide", by="merchandising")
    assert (c.pin, set(c.block), c.reason, c.by, c.version) == (
        {"sku-1": 2}, {"sku-4"}, "Holiday gift guide", "merchandising", 1)
    assert a.curation("personalization") == c == b.curation("personalization")


def test_the_store_refuses_a_version_published_twice(stores: Any, tmp_path: Path) -> None:
    a, _ = stores
    args = {"version": "v1", "folder": str(tmp_path), "sha256": "ab" * 32,
            "model_class": "ALS"}
    a.publish_model("personalization", **args)
    before = fingerprint(a), a.audit.head()
    with pytest.raises(persona.ValidationError) as info:
        a.publish_model("personalization", **{**args, "folder": str(tmp_path / "other")})
    assert info.value.errors[0]["field"] == "version"
    assert "already published" in str(info.value)
    assert (fingerprint(a), a.audit.head()) == before


@pytest.mark.parametrize(("field", "bad"), [
    ("sha256", 5), ("sha256", None), ("sha256", " "), ("sha256", "ab\ud800"),
    ("model_class", 3), ("model_class", ["ALS"]), ("model_class", "A\ud800"),
    ("version", 7), ("version", "v\ud800"), ("folder", 5), ("folder", ""),
    ("folder", "/tmp/\ud800"),
])
def test_the_store_refuses_a_registry_row_it_cannot_hold(
    stores: Any, tmp_path: Path, field: str, bad: Any,
) -> None:
    a, _ = stores
    args: dict[str, Any] = {"version": "v1", "folder": str(tmp_path), "sha256": "ab" * 32,
                            "model_class": "ALS", field: bad}
    before = fingerprint(a), a.audit.head()
    with pytest.raises(persona.ValidationError) as info:
        a.publish_model("personalization", **args)
    assert info.value.errors[0]["field"] == field
    assert f"field '{field}'" in str(info.value) or str(info.value).startswith(field)
    if field in ("sha256", "model_class") and "\ud800" not in str(bad):
        assert f"; e.g. {field}=" in str(info.value)
        assert not str(info.value).endswith("=None")
    assert (fingerprint(a), a.audit.head()) == before


def test_set_live_model_refuses_a_version_it_cannot_hold(stores: Any) -> None:
    a, _ = stores
    before = fingerprint(a), a.audit.head()
    with pytest.raises(persona.ValidationError) as info:
        a.set_live_model("personalization", "v\ud800")
    assert info.value.errors[0]["field"] == "version"
    assert (fingerprint(a), a.audit.head()) == before


def test_serving_versions_of_an_unknown_purpose_is_refused(stores: Any) -> None:
    a, _ = stores
    with pytest.raises(persona.errors.UnknownPurposeError):
        a.serving_versions("nope")
    assert a.serving_versions("personalization") == (0, 0)


def test_the_registry_refusals_name_row_field_and_reason(stores: Any, tmp_path: Path) -> None:
    """The structured errors (what an API maps to a response) are exact."""
    a, _ = stores
    args = {"version": "v1", "folder": str(tmp_path), "sha256": "ab" * 32,
            "model_class": "ALS"}
    cases: list[tuple[Any, list[dict[str, Any]]]] = [
        (lambda: a.publish_model("personalization", **{**args, "folder": 5}),
         [{"row": None, "field": "folder", "message": "not a path"}]),
        (lambda: a.publish_model("personalization", **{**args, "sha256": 5}),
         [{"row": None, "field": "sha256", "message": "not a str"}]),
        (lambda: a.set_live_model("personalization", "v0"),
         [{"row": None, "field": "version", "message": "unknown version"}]),
    ]
    for call, errors in cases:
        with pytest.raises(persona.ValidationError) as info:
            call()
        assert info.value.errors == errors
    a.publish_model("personalization", **args)
    with pytest.raises(persona.ValidationError) as info:
        a.publish_model("personalization", **args)
    assert info.value.errors == [{"row": None, "field": "version", "message": "published"}]
    with pytest.raises(persona.ValidationError) as info:
        a.set_live_model("personalization", "v0")
    assert "v1" in str(info.value)  # the published versions are named


def test_an_edited_model_version_is_named_in_the_problem(
    stores: Any, tmp_path: Path,
) -> None:
    a, _ = stores
    a.publish_model("personalization", version="v1", folder=str(tmp_path),
                    sha256="ab" * 32, model_class="ALS")
    con = sqlite3.connect(a.path, isolation_level=None)
    con.execute("UPDATE model_versions SET sha256 = 'cd' || substr(sha256, 3)")
    con.close()
    assert any("model version v1 of 'personalization' differs" in t
               for t in a.audit.problems())
    con = sqlite3.connect(a.path, isolation_level=None)
    con.execute("DELETE FROM model_versions")
    con.close()
    assert any("model version v1 of 'personalization' (audit entry" in t
               for t in a.audit.problems())


def test_the_serving_counters_count_every_change(stores: Any, tmp_path: Path) -> None:
    """store.serving_versions: (curations, changes of the live model), 0 when none yet,
    one more with each change, as its docstring says."""
    a, b = stores
    assert a.serving_versions("personalization") == (0, 0)
    for k, version in enumerate(("v1", "v2"), start=1):
        a.publish_model("personalization", version=version, folder=str(tmp_path / version),
                        sha256="ab" * 32, model_class="ALS")
        assert b.serving_versions("personalization") == (0, k)
    a.set_live_model("personalization", "v1")
    a.set_curation("personalization", block=["sku-4"], reason="recall")
    assert b.serving_versions("personalization") == (1, 3)


@pytest.mark.parametrize("where", ["under a file", "a file", "a NUL", "a lone surrogate"])
def test_a_folder_that_cannot_hold_a_model_is_refused(
    stores: Any, tmp_path: Path, where: str,
) -> None:
    """Defect (review): p.publish and p.save let OSError, ValueError and
    UnicodeEncodeError escape for a folder under a file, a file, or a name with a NUL or a
    lone surrogate. They are ValidationErrors naming the folder now, and nothing is
    registered."""
    a, _ = stores
    pa = _knn(a)
    (tmp_path / "file").write_text("x")
    folder = {"under a file": str(tmp_path / "file" / "models"),
              "a file": str(tmp_path / "file"),
              "a NUL": str(tmp_path / "a\0b"),
              "a lone surrogate": str(tmp_path / "a\ud800b")}[where]
    before = fingerprint(a), a.audit.head()
    for call in (pa.publish, pa.save):
        with pytest.raises(persona.ValidationError) as info:
            call(folder)
        assert info.value.errors[0]["field"] in ("folder", "path")
    assert (fingerprint(a), a.audit.head()) == before
    assert [f.name for f in tmp_path.iterdir() if not f.name.startswith("shop.db")] == [
        "file"]  # nothing written
