"""The operator's and data scientist's commands: audit verification, budgets, bulk consent,
the catalogue, curation, evaluation and retention (issue 22).

For each: the happy path, a bad input (one line on stderr, a non-zero exit, the store left
as it was) and ``--help``."""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import persona
from cli_helpers import one_line_error, run
from persona.cli import main

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _inside_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def shop(tmp_path: Path) -> str:
    """Eight people in two taste groups (items i0-i3 and i4-i7), each with four purchases
    a day apart, and old page views past their 30-day retention."""
    path = str(tmp_path / "shop.db")
    # the views are ingested while they were still within retention (a store whose clock
    # reads 40 days ago); they are 45 days old now
    with persona.Store(path, clock=lambda: NOW - timedelta(days=40)) as store:
        store.define_purpose("personalization", description="Recommend products")
        store.define_purpose("marketing", description="Send offers")
        store.define_feature("purchases", purposes=["personalization"],
                             category="purchase history", retention_days=None)
        store.define_feature("views", purposes=["personalization"],
                             category="browsing history", retention_days=30)
        store.define_items({f"i{j}": f"Item {j}" for j in range(8)})
        store.define_items(["i8"])
        for u in range(8):
            store.grant(f"u{u}", "personalization", source="signup form",
                        at=NOW - timedelta(days=60))
        views = [{"user": f"u{u}", "item": f"i{0 if u < 4 else 4}", "feature": "views",
                  "value": 1.0, "at": NOW - timedelta(days=45)} for u in range(8)]
        assert store.ingest(views).inserted == 8
    events = []
    for u in range(8):
        base = 0 if u < 4 else 4
        for d, j in enumerate(range(base, base + 4)):
            events.append({"user": f"u{u}", "item": f"i{(j + u) % 4 + base}",
                           "feature": "purchases", "value": 1.0,
                           "at": NOW - timedelta(days=10 - d)})
    with persona.Store(path) as store:
        assert store.ingest(events).inserted == 32
    return path


def audit_head(path: str) -> tuple[int, str]:
    with persona.Store(path) as store:
        return store.audit.head()


# ---------------------------------------------------------------------- help
@pytest.mark.parametrize("argv", [
    ["audit", "--help"], ["audit", "verify", "--help"], ["audit", "head", "--help"],
    ["budget", "--help"], ["consent", "import", "--help"], ["catalogue", "show", "--help"],
    ["curate", "--help"], ["curate", "set", "--help"], ["curate", "show", "--help"],
    ["curate", "clear", "--help"], ["evaluate", "--help"], ["retention", "--help"],
    ["retention", "show", "--help"], ["retention", "apply", "--help"],
])
def test_every_task_command_has_help_with_an_example(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: persona " + " ".join(argv[:-1]) in " ".join(out.split())
    if len(argv) == 3 or argv[0] in ("evaluate",):
        assert "example" in out.lower(), out


def test_the_top_level_help_lists_every_task(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("audit", "budget", "consent", "catalogue", "curate", "evaluate",
                    "retention"):
        assert f"\n    {command} " in out, command


# ---------------------------------------------------------------------- audit
def test_audit_verify_passes_on_an_intact_store(shop: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--store", shop, "audit", "verify")
    assert code == 0, err
    seq, digest = audit_head(shop)
    assert "intact" in out and f"{seq} entries" in out
    code, out, _ = run(capsys, "audit", "verify", "--store", shop, "--json")
    assert code == 0
    assert json.loads(out) == {"intact": True, "entries": seq, "head": f"{seq}:{digest}",
                               "problems": []}


def test_audit_verify_fails_on_a_forged_consent_record(
    shop: str, capsys: pytest.CaptureFixture[str]
) -> None:
    con = sqlite3.connect(shop)
    con.execute("UPDATE consent_events SET source = 'forged'")
    con.commit()
    con.close()
    code, _, err = run(capsys, "--store", shop, "audit", "verify")
    assert code == 1  # a finding: exit 1
    one_line_error(err)
    assert "failed verification" in err and "consent" in err
    code, out, _ = run(capsys, "--store", shop, "audit", "verify", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["intact"] is False and report["problems"]


def test_audit_verify_checks_a_recorded_head(shop: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, head, _ = run(capsys, "--store", shop, "audit", "head")
    assert code == 0
    seq, digest = audit_head(shop)
    assert head.strip() == f"{seq}:{digest}"
    assert run(capsys, "--store", shop, "audit", "verify", "--anchor", head.strip())[0] == 0
    wrong = f"{seq}:{'0' * 64}"
    code, _, err = run(capsys, "--store", shop, "audit", "verify", "--anchor", wrong)
    assert code == 1  # a finding: exit 1
    one_line_error(err)
    assert f"entry {seq} does not match the recorded anchor" in err


def test_audit_verify_refuses_a_bad_anchor_and_a_missing_store(
    shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--store", shop, "audit", "verify", "--anchor", "twelve"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--anchor" in err and len(err.strip().splitlines()) == 1
    missing = tmp_path / "typo.db"
    code, _, err = run(capsys, "--store", str(missing), "audit", "verify")
    assert code == 2
    one_line_error(err)
    assert "no store" in err
    assert not missing.exists()  # a typo does not create (and then vouch for) a new store


# ---------------------------------------------------------------------- budget
def test_budget_alone_shows_every_purpose(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--store", shop, "budget")
    assert code == 0, err
    assert "purpose 'marketing'" in out and "purpose 'personalization'" in out
    assert "charges:" in out


def test_budget_show_of_a_missing_store_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo.db"
    code, _, err = run(capsys, "--store", str(missing), "budget", "show")
    assert code == 2
    one_line_error(err)
    assert not missing.exists()


# ---------------------------------------------------------------------- consent import
CONSENT_CSV = """user,purpose,action,at,source
u1,marketing,grant,2026-01-05T10:00:00+00:00,newsletter form
u2,marketing,decline,2026-01-05T10:01:00+00:00,newsletter form
u1,personalization,withdraw,,
new-person,marketing,grant,2026-01-06T09:00:00Z,newsletter form
"""


def test_consent_import_records_every_row(shop: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "choices.csv"
    f.write_text(CONSENT_CSV)
    code, out, err = run(capsys, "--store", shop, "consent", "import", str(f),
                         "--source", "CMP export 2026-01")
    assert code == 0, err
    assert "recorded 4 consent choices" in out and "3 people" in out
    with persona.Store(shop) as store:
        assert store.has_consent("u1", "marketing")
        assert not store.has_consent("u1", "personalization")
        assert store.has_consent("new-person", "marketing")
        u1 = store.consent_history("u1")
        marketing = next(r for r in u1 if r.purpose == "marketing")
        assert marketing.at == datetime(2026, 1, 5, 10, tzinfo=UTC)
        assert marketing.source == "newsletter form"
        withdrawn = next(r for r in u1 if r.action == "withdraw")
        assert withdrawn.source == "CMP export 2026-01"  # the default for an empty cell
        assert [r.action for r in store.consent_history("u2") if r.purpose == "marketing"] == [
            "decline"]
        assert store.audit.verify()


def test_consent_import_reads_json_lines_and_mapped_columns(
    shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "choices.jsonl"
    f.write_text(
        json.dumps({"customer": "u3", "purpose": "marketing", "choice": "grant",
                    "when": "2026-02-01T00:00:00Z", "source": "app"}) + "\n"
        + json.dumps({"customer": "u4", "purpose": "marketing", "choice": "decline",
                      "source": "app", "notice_version": "v7"}) + "\n"
    )
    code, out, err = run(capsys, "--store", shop, "consent", "import", str(f), "--map",
                         "user=customer", "--map", "action=choice", "--map", "at=when")
    assert code == 0, err
    assert "recorded 2 consent choices" in out
    with persona.Store(shop) as store:
        assert store.has_consent("u3", "marketing")
        assert store.consent_history("u4")[-1].notice_version == "v7"


@pytest.mark.parametrize(("bad_row", "needle"), [
    ("u9,shopping,grant,,form", "unknown purpose"),
    ("u9,marketing,accept,,form", "action"),
    ("u9,marketing,grant,next tuesday,form", "at"),
    ("u9,marketing,grant,2999-01-01T00:00:00Z,form", "future"),
    (",marketing,grant,,form", "user"),
    ("u9,marketing,grant,,", "source"),
])
def test_consent_import_is_all_or_nothing(
    shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], bad_row: str, needle: str
) -> None:
    f = tmp_path / "choices.csv"
    f.write_text("user,purpose,action,at,source\n"
                 "u1,marketing,grant,,form\nu2,marketing,grant,,form\n" + bad_row + "\n")
    before = audit_head(shop)
    code, _, err = run(capsys, "--store", shop, "consent", "import", str(f))
    assert code == 2
    one_line_error(err)
    assert "row 3" in err and needle in err, err
    assert "nothing was recorded" in err.lower()
    assert audit_head(shop) == before
    with persona.Store(shop) as store:
        assert not store.has_consent("u1", "marketing")
        assert store.consent_history("u9") == []


def test_consent_import_refuses_a_file_without_the_needed_columns(
    shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "choices.csv"
    f.write_text("customer,purpose,action\nu1,marketing,grant\n")
    before = audit_head(shop)
    code, _, err = run(capsys, "--store", shop, "consent", "import", str(f), "--source", "x")
    assert code == 2
    one_line_error(err)
    assert "--map user=" in err
    assert audit_head(shop) == before
    code, _, err = run(capsys, "--store", shop, "consent", "import", str(f), "--map",
                       "person=customer")
    assert code == 2 and "--map 'person=customer'" in err
    empty = tmp_path / "empty.csv"
    empty.write_text("user,purpose,action\n")
    code, _, err = run(capsys, "--store", shop, "consent", "import", str(empty))
    assert code == 2 and "no consent choices" in err


def test_a_single_consent_choice_still_works_also_for_a_person_called_import(
    shop: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--store", shop, "consent", "import", "marketing", "grant",
                         "--source", "form")
    assert code == 0, err
    assert "grant recorded for 'marketing'" in out
    with persona.Store(shop) as store:
        assert store.has_consent("import", "marketing")


# ---------------------------------------------------------------------- catalogue
def test_catalogue_show_as_json(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--store", shop, "catalogue", "show", "--json")
    assert code == 0
    items = json.loads(out)
    assert items[0] == {"item": "i0", "label": "Item 0"}
    assert items[-1] == {"item": "i8", "label": None}
    assert len(items) == 9


# ---------------------------------------------------------------------- curation
@pytest.fixture
def model(shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code, _, err = run(capsys, "--store", shop, "train", "--out", "m", "--model", "itemknn")
    assert code == 0, err
    return "m"


def test_curate_pins_and_blocks_in_the_saved_model(
    shop: str, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--store", shop, "curate", "set", "--model", model,
                         "--pin", "i8", "--pin", "i7@3", "--block", "i5",
                         "--reason", "Winter sale", "--by", "merchandising")
    assert code == 0, err
    assert "pinned 2 items" in out and "blocked 1 item" in out
    with persona.Store(shop) as store:
        p = persona.Personalizer.load(model, store)
        assert p.curation.pin == {"i8": 1, "i7": 3}
        assert p.curation.block == frozenset({"i5"})
        assert p.curation.reason == "Winter sale" and p.curation.by == "merchandising"
        recs = p.recommend("u0", n=4)
        assert recs[0].item == "i8" and recs[2].item == "i7"
        assert "i5" not in [r.item for r in recs]
        entry = store.audit.entries(action="curation")[-1]
        assert entry.detail["reason"] == "Winter sale"
    code, out, _ = run(capsys, "--store", shop, "curate", "show", "--model", model)
    assert code == 0
    assert "i8" in out and "position 3" in out and "i5" in out and "Winter sale" in out
    code, out, _ = run(capsys, "--store", shop, "curate", "show", "--model", model, "--json")
    assert json.loads(out)["pin"] == {"i8": 1, "i7": 3}
    code, out, _ = run(capsys, "--store", shop, "curate", "clear", "--model", model,
                       "--reason", "sale over")
    assert code == 0
    with persona.Store(shop) as store:
        p = persona.Personalizer.load(model, store)
        assert p.curation.pin == {} and p.curation.block == frozenset()


@pytest.mark.parametrize(("argv", "needle"), [
    (["--pin", "no-such-item"], "cannot pin"),
    (["--pin", "i2", "--block", "i2"], "both pinned and blocked"),
    (["--pin", "i2@0"], "--pin"),
])
def test_curate_refuses_bad_choices_and_leaves_the_model(
    shop: str, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    argv: list[str], needle: str
) -> None:
    saved = (tmp_path / model / "personalizer.json").read_bytes()
    before = audit_head(shop)
    try:
        code, _, err = run(capsys, "--store", shop, "curate", "set", "--model", model, *argv,
                           "--reason", "test")
    except SystemExit as exc:  # a malformed flag value is a usage error
        code, err = int(exc.code or 0), capsys.readouterr().err
        assert code == 2
    else:
        assert code == 2
        one_line_error(err)
    assert needle in err, err
    assert (tmp_path / model / "personalizer.json").read_bytes() == saved
    assert audit_head(shop) == before


def test_curate_needs_a_reason_and_a_model(shop: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--store", shop, "curate", "set", "--model", "m", "--pin", "i1"])
    assert info.value.code == 2
    assert "--reason" in capsys.readouterr().err
    code, _, err = run(capsys, "--store", shop, "curate", "set", "--model", "nowhere",
                       "--pin", "i1", "--reason", "x")
    assert code == 2
    one_line_error(err)
    assert "persona train" in err


# ---------------------------------------------------------------------- evaluation
def test_evaluate_prints_metrics_for_each_k(shop: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--store", shop, "evaluate", "--model", "itemknn",
                         "--k", "2", "--k", "5")
    assert code == 0, err
    assert "each person's latest 1 item" in out
    lines = [line.split() for line in out.splitlines()]
    header = next(line for line in lines if line and line[0] == "k")
    assert header[:6] == ["k", "precision", "recall", "ndcg", "map", "coverage"]
    rows = [line for line in lines if line and line[0] in ("2", "5")]
    assert [r[0] for r in rows] == ["2", "5"]
    code, out, _ = run(capsys, "--store", shop, "evaluate", "--model", "itemknn",
                       "--k", "5", "--k", "2", "--json")
    results = json.loads(out)
    assert [r["k"] for r in results["results"]] == [2, 5]
    assert results["split"] == {"kind": "leave_out", "n": 1}
    assert results["differential_privacy"] is False and results["saved"] is False
    # the library's own evaluation of the same split and model, number for number
    from persona.data import Interactions, leave_k_out

    store = persona.Store(shop)
    train, test = leave_k_out(Interactions.from_view(store.scope("personalization")), k=1,
                              by="time")
    store.close()
    expected = persona.evaluate(persona.ItemKNN().fit(train), train, test, k=[2, 5])
    assert results["results"] == [expected.at[k].model_dump(mode="json") for k in (2, 5)]
    assert results["results"][0]["n_users"] == 8


def test_evaluate_on_a_time_split(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    cut = (NOW - timedelta(days=7, hours=12)).isoformat()
    code, out, err = run(capsys, "--store", shop, "evaluate", "--model", "itemknn",
                         "--test-from", cut, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["split"]["kind"] == "time"
    assert result["results"][0]["k"] == 10 and result["results"][0]["n_users"] == 8
    assert result["train"]["interactions"] + result["test"]["interactions"] == 32


@pytest.mark.parametrize(("argv", "code_", "needle"), [
    (["--k", "0"], 2, "--k"),
    (["--k", "ten"], 2, "--k"),
    (["--test-from", "soon"], 2, "--test-from"),
    (["--test-from", "2999-01-01"], 2, "leaves the test side empty"),
    (["--test-from", "2000-01-01"], 2, "leaves the training side empty"),
    (["--purpose", "shopping"], 2, "unknown purpose"),
    (["--leave-out", "1", "--test-from", "2026-01-01"], 2, "not allowed with"),
])
def test_evaluate_refuses_bad_input_on_one_line(
    shop: str, capsys: pytest.CaptureFixture[str], argv: list[str], code_: int, needle: str
) -> None:
    try:
        code, _, err = run(capsys, "--store", shop, "evaluate", "--model", "itemknn", *argv)
    except SystemExit as exc:
        code, err = int(exc.code or 0), capsys.readouterr().err
    assert code == code_, err
    assert needle in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# ---------------------------------------------------------------------- retention
def test_retention_show_and_apply(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--store", shop, "retention", "show")
    assert code == 0, err
    assert "purchases" in out and "kept until erasure" in out
    assert "views" in out and "30 days" in out
    code, out, _ = run(capsys, "--store", shop, "retention", "show", "--json")
    features = {f["feature"]: f for f in json.loads(out)["features"]}
    assert features["views"]["retention_days"] == 30 and features["views"]["cutoff"]
    assert features["purchases"]["retention_days"] is None
    with persona.Store(shop) as store:
        assert store.stats()["events"] == 40
    code, out, err = run(capsys, "--store", shop, "retention", "apply")
    assert code == 0, err
    assert "removed 8 events" in out
    with persona.Store(shop) as store:
        assert store.stats()["events"] == 32
        assert store.audit.entries(action="apply_retention")[-1].detail["events_deleted"] == 8
    code, out, _ = run(capsys, "--store", shop, "retention", "apply", "--json")
    assert json.loads(out) == {"events_deleted": 0, "shown_deleted": 0}


def test_retention_on_a_missing_store(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("show", "apply"):
        code, _, err = run(capsys, "--store", str(tmp_path / "typo.db"), "retention", action)
        assert code == 2
        one_line_error(err)
        assert "no store" in err
    assert not (tmp_path / "typo.db").exists()


# ---------------------------------------------------------------------- the guide
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guides" / "cli.md"


def test_the_command_line_guide_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every command of docs/guides/cli.md, in order, on the files the page shows."""
    text = GUIDE.read_text()
    files = re.findall(r"<!-- file: (\S+) -->\n```text\n(.*?)```", text, re.S)
    assert [name for name, _ in files] == ["consent.csv", "orders.csv", "products.csv"]
    for name, body in files:
        (tmp_path / name).write_text(body)
    ran = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.strip().splitlines():
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                monkeypatch.setenv(name, value)
                continue
            line = re.sub(r'"\$\(cat (\S+)\)"', lambda m: (tmp_path / m[1]).read_text().strip(),
                          line)
            line, _, redirect = line.partition(" > ")
            argv = shlex.split(line)
            assert argv[0] == "persona", line
            code, out, err = run(capsys, *argv[1:])
            assert code == 0, (line, err)
            assert "error" not in err, (line, err)
            if redirect:
                (tmp_path / redirect.strip()).write_text(out)
            ran.append((argv[1], out))
    commands = {c for c, _ in ran}
    assert {"audit", "budget", "consent", "catalogue", "curate", "evaluate",
            "retention"} <= commands
    outputs = dict(ran)
    assert "recorded 5 consent choices of 4 people" in outputs["consent"]
    recommended = next(out for c, out in ran if c == "recommend")
    assert recommended.lstrip().startswith("1. Winter gloves  [sku-5]")
    assert "[sku-3]" not in recommended  # blocked, though u2 shares tastes with its buyers
    assert json.loads(outputs["audit"])["intact"] is True


def test_consent_import_applies_the_id_rule_to_json_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An int id is its decimal string; a float (1.5, or 170.0 from a column with gaps) is
    refused, as ingest refuses it: not recorded as the person "1.5"."""
    store = str(tmp_path / "ids.db")
    assert run(capsys, "--store", store, "purpose", "add", "marketing",
               "--description", "Send offers")[0] == 0
    good = tmp_path / "good.jsonl"
    good.write_text('{"user": 170, "purpose": "marketing", "action": "grant", "source": "CMP"}\n')
    assert run(capsys, "--store", store, "consent", "import", str(good))[0] == 0
    s = persona.Store(store)
    assert s.has_consent("170", "marketing")
    s.close()
    for bad in ("1.5", "170.0"):
        path = tmp_path / "bad.jsonl"
        path.write_text('{"user": ' + bad + ', "purpose": "marketing", "action": "grant", '
                        '"source": "CMP"}\n')
        code, _, err = run(capsys, "--store", store, "consent", "import", str(path))
        assert code == 2, err
        one_line_error(err)
        assert "float" in err
    s = persona.Store(store)
    assert s.consent_history("1.5") == [] and s.consent_history("170.0") == []
    s.close()
