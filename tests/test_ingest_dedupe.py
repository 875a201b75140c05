"""Identical events without an id (issue 22): ``dedupe="none"`` (default) keeps real
repeat purchases, ``dedupe="exact"`` collapses them; events with an id stay idempotent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import persona
from persona.cli import main
from store_helpers import Clock, event, fingerprint, shop


def test_identical_rows_without_an_id_are_kept_by_default() -> None:
    store = shop(clock=Clock())
    store.grant("u1", "personalization", source="test")
    report = store.ingest([event("u1", "a"), event("u1", "a"), event("u1", "b")])
    assert (report.inserted, report.duplicates) == (3, 0)
    cols = store.scope("personalization").events()
    assert len(cols) == 3
    assert sorted(cols.items[cols.item].tolist()) == ["a", "a", "b"]


def test_exact_collapses_identical_rows_without_an_id() -> None:
    store = shop(clock=Clock())
    report = store.ingest([event("u1", "a"), event("u1", "a"), event("u1", "b")],
                          dedupe="exact")
    assert (report.inserted, report.duplicates) == (2, 1)


@pytest.mark.parametrize("dedupe", ["none", "exact"])
def test_sending_the_same_batch_again_stores_nothing(dedupe: str) -> None:
    store = shop(clock=Clock())
    batch = [event("u1", "a"), event("u1", "a"), event("u1", "a"), event("u2", "a"),
             event("u1", "b", id="order-1/line-1"), event("u1", "b", id="order-1/line-1")]
    first = store.ingest(batch, dedupe=dedupe)
    expected = {"none": 5, "exact": 3}[dedupe]  # id'd rows: one event per id in both
    assert first.inserted == expected
    before = fingerprint(store)[:7]
    again = store.ingest(batch, dedupe=dedupe)
    assert (again.inserted, again.duplicates) == (0, len(batch))
    assert fingerprint(store)[:7] == before
    assert store.stats()["events"] == expected


def test_a_later_batch_with_more_copies_stores_only_the_extra_ones() -> None:
    store = shop(clock=Clock())
    assert store.ingest([event("u1", "a")] * 2).inserted == 2
    report = store.ingest([event("u1", "a")] * 5)
    assert (report.inserted, report.duplicates) == (3, 2)
    assert store.stats()["events"] == 5
    # one copy sent alone is the first copy: already held
    assert store.ingest([event("u1", "a")]).inserted == 0


def test_events_stored_before_with_exact_are_recognised_by_the_default() -> None:
    """The first copy's id is the content id ``exact`` always used, so re-sending data
    loaded the old way adds only the repeats that were collapsed then."""
    store = shop(clock=Clock())
    assert store.ingest([event("u1", "a")] * 3, dedupe="exact").inserted == 1
    assert store.ingest([event("u1", "a")] * 3).inserted == 2


def test_events_with_an_id_are_idempotent_by_id_under_both_settings() -> None:
    for dedupe in ("none", "exact"):
        store = shop(clock=Clock())
        report = store.ingest([event("u1", "a", id="e1"), event("u1", "a", id="e1"),
                               event("u1", "a", id="e2")], dedupe=dedupe)
        assert (report.inserted, report.duplicates) == (2, 1)
        assert store.ingest([event("u1", "zzz", id="e1")], dedupe=dedupe).inserted == 0


@pytest.mark.parametrize("bad", ["Exact", "", None, True, 1, ["exact"], b"none"])
def test_dedupe_must_be_one_of_the_two_strings(bad: Any) -> None:
    store = shop(clock=Clock())
    before = fingerprint(store)
    with pytest.raises(persona.ValidationError, match="dedupe") as raised:
        store.ingest([event("u1", "a")], dedupe=bad)
    assert "'none'" in str(raised.value) and "'exact'" in str(raised.value)
    assert raised.value.errors[0]["field"] == "dedupe"
    assert fingerprint(store) == before


def test_cli_ingest_dedupe(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rows = ["user,item,at"] + ["u1,a,2026-11-01T10:00:00Z"] * 3 + ["u1,b,2026-11-01T10:00:00Z"]
    (tmp_path / "orders.csv").write_text("\n".join(rows) + "\n")
    for dedupe, inserted in (("exact", 2), (None, 4)):
        db = ["--store", str(tmp_path / f"{dedupe}.db")]
        assert main([*db, "purpose", "add", "personalization", "--description", "x"]) == 0
        assert main([*db, "feature", "add", "purchases", "--purposes", "personalization",
                     "--category", "purchase history", "--retention-days", "none"]) == 0
        capsys.readouterr()
        flag = [] if dedupe is None else ["--dedupe", dedupe]
        assert main([*db, "ingest", "orders.csv", "--feature", "purchases", *flag]) == 0
        assert f"ingested {inserted} of 4 events" in capsys.readouterr().out
        # the same file again: nothing new under either setting
        assert main([*db, "ingest", "orders.csv", "--feature", "purchases", *flag]) == 0
        assert "ingested 0 of 4 events" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["--store", str(tmp_path / "x.db"), "ingest", "orders.csv", "--dedupe", "all"])
    assert exited.value.code == 2
    assert "--dedupe" in capsys.readouterr().err


def test_cli_never_splits_identical_rows_across_its_batches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command sends a file in batches; a run of rows of one person at one time is
    never cut, so identical rows are counted the same as in one batch."""
    import persona._cli.ingest as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_BATCH", 2)
    rows = ["user,item,at"] + ["u1,a,2026-11-01T10:00:00Z"] * 3 + ["u2,a,2026-11-01T10:00:00Z"]
    (tmp_path / "orders.csv").write_text("\n".join(rows) + "\n")
    db = ["--store", str(tmp_path / "s.db")]
    assert main([*db, "purpose", "add", "personalization", "--description", "x"]) == 0
    assert main([*db, "feature", "add", "purchases", "--purposes", "personalization",
                 "--category", "purchase history", "--retention-days", "none"]) == 0
    capsys.readouterr()
    assert main([*db, "ingest", "orders.csv", "--feature", "purchases"]) == 0
    assert "ingested 4 of 4 events" in capsys.readouterr().out


@pytest.mark.slow
def test_online_retail_without_ids_keeps_every_order_line(shared_data: Path) -> None:
    """The real shop without an id column: every cleaned line is kept by default (pandas'
    own count), ``exact`` keeps pandas' count of distinct lines, and sending the same
    frame again stores nothing under either setting."""
    pd = pytest.importorskip("pandas")
    raw = pd.read_csv(
        shared_data / "online-retail" / "online_retail.csv.gz",
        dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "Float64"},
    )
    kept = raw[raw["CustomerID"].notna() & (raw["Quantity"] > 0)
               & ~raw["InvoiceNo"].str.startswith("C")]
    df = pd.DataFrame({
        "user": kept["CustomerID"].astype("Int64").astype("string").astype(object),
        "item": kept["StockCode"],
        "feature": "purchases",
        "value": kept["Quantity"].astype(float),
        "at": pd.to_datetime(kept["InvoiceDate"]).dt.tz_localize("Europe/London"),
    })
    lines = len(df)
    distinct = len(df.drop_duplicates(["user", "item", "value", "at"]))
    assert lines == 397_924 and lines - distinct > 0  # the data has identical lines
    for dedupe, expected in (("none", lines), ("exact", distinct)):
        store = persona.Store(":memory:")
        store.define_purpose("personalization", description="Recommend products")
        store.define_feature("purchases", purposes=["personalization"],
                             category="purchase history", retention_days=None)
        report = store.ingest(df, dedupe=dedupe)
        assert report.inserted == expected, dedupe
        assert report.duplicates == lines - expected
        assert store.stats()["events"] == expected
        again = store.ingest(df, dedupe=dedupe)
        assert (again.inserted, again.duplicates) == (0, lines)
        # the stored quantities add up to pandas' own sum over the lines kept
        store.grant("12347", "personalization", source="test")
        cols = store.scope("personalization").events()
        mine = df[df["user"] == "12347"]
        if dedupe == "exact":
            mine = mine.drop_duplicates(["user", "item", "value", "at"])
        assert np.isclose(cols.value.sum(), mine["value"].sum())
