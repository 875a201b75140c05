"""Events already outside their feature's retention at ingest (issue 22): counted per
feature, not stored, warned about; a fit that retention leaves empty says so."""

from __future__ import annotations

import os
import re
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import persona
from persona.cli import main
from persona.data import Interactions
from persona.errors import RetentionWarning
from store_helpers import Clock, event, shop

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def test_events_past_retention_are_counted_by_feature_warned_about_and_not_stored() -> None:
    store = shop(clock=Clock(NOW))  # purchases: 730 days, views: 30, location: kept
    batch = [
        event("u1", "a", at=_at(800)),  # purchases, too old
        event("u1", "b", at=_at(731)),  # purchases, too old
        event("u1", "c", at=_at(10)),  # purchases, kept
        event("u2", "d", "views", at=_at(45)),  # views, too old
        event("u3", "e", "location", at=_at(5000)),  # kept until erasure
    ]
    with pytest.warns(RetentionWarning) as caught:
        report = store.ingest(batch)
    assert report.received == 5 and report.inserted == 2 and report.duplicates == 0
    assert report.rejected == 0
    assert report.outside_retention == {"purchases": 2, "views": 1}
    assert store.stats()["events"] == 2
    # u2's only event was refused: nothing about u2 is written (no subject row)
    assert store.stats()["people"] == 2
    text = str(caught[0].message)
    assert "3 of 5 events" in text and "not stored" in text
    assert "'purchases'" in text and "730 days" in text and "2 event" in text
    assert "'views'" in text and "30 days" in text
    assert "2024-11-26" in text  # purchases' cut-off: 730 days before the store's clock
    assert "retention_days" in text and "apply_retention" in text
    if "MUTANT_UNDER_TEST" not in os.environ:  # (mutmut's trampoline adds a frame)
        assert caught[0].filename == __file__  # points at the caller's line
    entry = store.audit.entries()[-1]
    assert entry.action == "ingest"
    assert entry.detail["outside_retention"] == {"purchases": 2, "views": 1}


def test_retention_warning_is_a_user_warning_that_can_be_filtered() -> None:
    assert issubclass(RetentionWarning, UserWarning)
    store = shop(clock=Clock(NOW))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", RetentionWarning)
        report = store.ingest([event("u1", "a", at=_at(900))])
    assert report.outside_retention == {"purchases": 1} and report.inserted == 0


def test_events_inside_retention_give_no_warning_and_an_empty_count() -> None:
    store = shop(clock=Clock(NOW))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = store.ingest([event("u1", "a", at=_at(729)), event("u1", "v", "views",
                                                                     at=_at(29))])
    assert report.outside_retention == {} and report.inserted == 2


def test_the_ingest_rule_is_the_read_rule_at_the_cut_off() -> None:
    """An event exactly at the cut-off is readable, so it is stored; a microsecond older
    is not readable, so it is refused."""
    store = shop(clock=Clock(NOW))
    store.grant("u1", "personalization", source="test")
    cut = NOW - timedelta(days=730)
    with pytest.warns(RetentionWarning):
        report = store.ingest([
            event("u1", "at-cut", at=cut.isoformat()),
            event("u1", "older", at=(cut - timedelta(microseconds=1)).isoformat()),
        ])
    assert report.inserted == 1 and report.outside_retention == {"purchases": 1}
    assert list(store.scope("personalization").events().items) == ["at-cut"]


def test_outside_retention_is_not_a_rejection_so_on_invalid_raise_stores_the_rest() -> None:
    store = shop(clock=Clock(NOW))
    with pytest.warns(RetentionWarning):
        report = store.ingest([event("u1", "old", at=_at(1000)), event("u1", "new")],
                              on_invalid="raise")
    assert (report.inserted, report.rejected, report.rejected_by_field) == (1, 0, {})


def test_a_refused_batch_warns_nothing() -> None:
    store = shop(clock=Clock(NOW))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(persona.ValidationError):
            store.ingest([event("u1", "old", at=_at(1000)), event("u1", "x", value=-1.0)])
    assert store.stats()["events"] == 0


def test_raising_retention_and_ingesting_again_stores_them() -> None:
    store = shop(clock=Clock(NOW))
    old = [event("u1", "a", at=_at(900)), event("u1", "b", at=_at(1200))]
    with pytest.warns(RetentionWarning):
        assert store.ingest(old).inserted == 0
    store.define_feature("purchases", purposes=["personalization", "analytics"],
                         category="purchase history", retention_days=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = store.ingest(old)
    assert report.inserted == 2 and report.outside_retention == {}


def _quickstart_store(clock: Clock | None = None) -> persona.Store:
    store = persona.Store(":memory:", clock=clock)
    store.define_purpose("personalization", description="Suggest products")
    store.define_feature("purchases", purposes=["personalization"],
                         category="purchase history", retention_days=730)
    return store


def _demo_events(n: int = 40) -> list[dict[str, object]]:
    from persona.datasets import load_demo_shop

    shop_ = load_demo_shop()
    people = set(shop_.customers[:n])
    return [e for e in shop_.events if e["user"] in people]


def test_the_demo_shop_under_the_quickstarts_retention_is_refused_and_fit_says_why() -> None:
    """The issue's case: the bundled shop (2010-2011) with retention_days=730 today."""
    store = _quickstart_store(Clock(NOW))
    events = _demo_events()
    for user in {str(e["user"]) for e in events}:
        store.grant(user, "personalization", source="signup form")
    with pytest.warns(RetentionWarning, match=f"{len(events):,} of {len(events):,} events"):
        report = store.ingest(events)
    assert report.inserted == 0 and report.outside_retention == {"purchases": len(events)}
    with pytest.raises(persona.ValidationError) as raised:
        persona.Personalizer(store, model=persona.ItemKNN()).fit()
    message = str(raised.value)
    assert "retention" in message and "'purchases'" in message and "730 days" in message
    assert "2024-11-26" in message  # the cut-off
    assert "IngestReport.outside_retention" in message and "retention_days" in message
    # the same through a model fitted on a scoped view
    X = Interactions.from_view(store.scope("personalization"))
    with pytest.raises(persona.ValidationError, match="retention") as raised_als:
        persona.ALS(factors=4, iterations=1, random_state=0).fit(X)
    assert "2024-11-26" in str(raised_als.value)


def test_a_fit_emptied_by_events_ageing_out_counts_the_held_ones() -> None:
    clock = Clock(NOW)
    store = _quickstart_store(clock)
    store.grant("u1", "personalization", source="test")
    store.grant("u2", "personalization", source="test")
    store.ingest([event("u1", "a"), event("u1", "b"), event("u2", "a")])
    clock.advance(days=800)  # all three are now past 730 days, not yet deleted
    view = store.scope("personalization")
    X = Interactions.from_view(view)
    assert X.nnz == 0
    assert view.lineage.outside_retention == {"purchases": 3}
    with pytest.raises(persona.ValidationError) as raised:
        persona.Personalizer(store, model=persona.ItemKNN()).fit()
    message = str(raised.value)
    assert "retention" in message and "'purchases'" in message and "730 days" in message
    assert re.search(r"\b3\b", message) and "apply_retention" in message
    # raising the retention makes the held events readable again (until a retention pass)
    store.define_feature("purchases", purposes=["personalization"],
                         category="purchase history", retention_days=2000)
    persona.Personalizer(store, model=persona.ItemKNN()).fit()


def test_an_empty_fit_for_another_reason_does_not_blame_retention() -> None:
    store = _quickstart_store(Clock(NOW))
    store.ingest([event("u1", "a")])  # nobody consented
    with pytest.raises(persona.ValidationError) as raised:
        persona.Personalizer(store, model=persona.ItemKNN()).fit()
    assert "retention" not in str(raised.value)
    assert store.scope("personalization").lineage.outside_retention == {}


def test_cli_ingest_reports_events_outside_retention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = ["--store", str(tmp_path / "shop.db")]
    assert main([*s, "purpose", "add", "personalization", "--description", "Suggest"]) == 0
    assert main([*s, "feature", "add", "purchases", "--purposes", "personalization",
                 "--category", "purchase history", "--retention-days", "30"]) == 0
    rows = ["user,item,at", "u1,a,2001-01-01T10:00:00Z",
            f"u1,b,{datetime.now(UTC).isoformat()}"]
    (tmp_path / "e.csv").write_text("\n".join(rows) + "\n")
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the command prints its own note, not a warning
        assert main([*s, "ingest", "e.csv", "--feature", "purchases"]) == 0
    out, err = capsys.readouterr()
    assert "ingested 1 of 2 events" in out and "1 outside retention" in out
    assert "'purchases'" in err and "30 days" in err and "--retention-days" in err


def test_a_purposes_read_reports_no_count_of_people_outside_its_scope() -> None:
    """What ingest refused is counted in its own report and audit entry only: a purpose's
    read (its lineage, a fit's error) gives no count that includes people without consent
    or erased people (a store-wide tally did, and never went down)."""
    store = _quickstart_store(Clock(NOW))
    store.grant("u1", "personalization", source="test")
    old = _at(800)
    with pytest.warns(RetentionWarning):
        store.ingest([event("u1", "a", at=old)] +
                     [event("nc", f"x{k}", at=old) for k in range(7)])  # nc: no consent
    store.grant("gone", "personalization", source="test")
    with pytest.warns(RetentionWarning):
        store.ingest([event("gone", f"y{k}", at=old) for k in range(5)])
    store.erase("gone")
    view = store.scope("personalization")
    lineage = view.lineage
    assert "refused_outside_retention" not in type(lineage).model_fields
    assert lineage.outside_retention == {}
    with pytest.raises(persona.ValidationError) as raised:
        persona.Personalizer(store, model=persona.ItemKNN()).fit()
    message = str(raised.value)
    assert "retention" in message and "2024-11-26" in message
    # past the dates, times and the 730 days, the retention part holds no number at all
    note = re.sub(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?|\b730 days", "",
                  message.split("retention", 1)[1])
    assert not re.search(r"\d", note), note


def test_held_events_are_counted_past_the_cut_off_not_at_it() -> None:
    """Events that aged past retention after ingest: one exactly at the cut-off is still
    readable (not counted as outside), one a microsecond older is counted."""
    clock = Clock(NOW)
    store = _quickstart_store(clock)
    store.grant("u1", "personalization", source="test")
    store.ingest([event("u1", "a", at=NOW.isoformat()),
                  event("u1", "b", at=(NOW - timedelta(microseconds=1)).isoformat())])
    clock.advance(days=730)  # "a" is exactly at the cut-off now
    view = store.scope("personalization")
    assert list(view.events().items) == ["a"]
    assert view.lineage.outside_retention == {"purchases": 1}


@pytest.mark.parametrize("rows", [[], [event("u1", "a", feature="no-such-feature")]])
def test_an_empty_or_wholly_rejected_batch_counts_nothing_outside(rows: list) -> None:
    store = _quickstart_store(Clock(NOW))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RetentionWarning)
        report = store.ingest(rows, on_invalid="skip")
    assert report.inserted == 0 and report.outside_retention == {}
    assert report.rejected == len(rows)
