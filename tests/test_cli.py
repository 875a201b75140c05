"""The command line: every command, clear errors and exit codes, no tracebacks."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

import persona
from cli_helpers import one_line_error, run
from persona.cli import main

CSV = """InvoiceNo,StockCode,Quantity,InvoiceDate,CustomerID
536365,85123A,6,2026-10-01 08:26:00,17850
536365,71053,6,2026-10-01 08:26:00,17850
536366,22633,6,2026-10-02 08:28:00,17850
536367,84879,32,2026-10-03 08:34:00,13047
536367,22745,6,2026-10-03 08:34:00,13047
536368,85123A,2,2026-10-04 08:34:00,13047
536369,71053,3,2026-10-05 08:35:00,12583
536369,22633,3,2026-10-05 08:35:00,12583
536370,84879,3,2026-10-06 08:35:00,
"""


@pytest.fixture(autouse=True)
def _inside_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Output paths must lie inside the current folder: run every command from tmp_path."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def store_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    path = str(tmp_path / "shop.db")
    s = ["--store", path]
    assert run(capsys, *s, "purpose", "add", "personalization",
               "--description", "Recommend products from what you buy")[0] == 0
    assert run(capsys, *s, "feature", "add", "purchases", "--purposes", "personalization",
               "--category", "purchase history", "--retention-days", "none")[0] == 0
    for user in ("17850", "13047", "12583"):
        assert run(capsys, *s, "consent", user, "personalization", "grant",
                   "--source", "checkout")[0] == 0
    return path


def test_ingest_train_recommend_explain_report_export_erase(
    store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = ["--store", store_path]
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text(CSV)
    mapping = ["--map", "user=CustomerID", "--map", "item=StockCode", "--map", "value=Quantity",
               "--map", "at=InvoiceDate", "--feature", "purchases",
               "--tz", "Europe/London"]
    code, _, err = run(capsys, *s, "ingest", str(csv_file), *mapping)
    assert code == 2
    assert "row 8" in err  # the guest checkout, counting from the header
    assert "Traceback" not in err
    code, out, _ = run(capsys, *s, "ingest", str(csv_file), *mapping, "--on-invalid", "skip")
    assert code == 0
    assert "ingested 8 of 9 events (0 duplicates, 1 rejected)" in out
    code, out, _ = run(capsys, *s, "train", "--out", str(tmp_path / "m"), "--model", "itemknn")
    assert code == 0
    assert "trained ItemKNN" in out
    code, out, _ = run(capsys, *s, "recommend", "17850", "--model", str(tmp_path / "m"), "-n", "2")
    assert code == 0
    assert "1. " in out
    code, recommended, _ = run(capsys, *s, "recommend", "17850", "--model", str(tmp_path / "m"),
                               "--json")
    assert json.loads(recommended)[0]["explanation"]["kind"] == "decomposition"
    code, out, _ = run(capsys, *s, "explain", "17850", "84879", "--model", str(tmp_path / "m"))
    assert code == 0
    assert out.strip()
    code, out, _ = run(capsys, *s, "report", "--model", str(tmp_path / "m"),
                       "--out", str(tmp_path / "reports"), "--user", "17850")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == sorted(
        f"{n}.{ext}" for n in ("main_parameters", "records_of_processing", "transparency-17850")
        for ext in ("json", "html", "md")
    )
    # what 'persona recommend' showed is in the Art. 15 report, as shown
    shown = json.loads((tmp_path / "reports" / "transparency-17850.json").read_text())
    texts = [x["explanation"]["text"] for x in shown["explanations"]]
    assert len(texts) == 2 + len(json.loads(recommended)) and all(texts)
    assert all(x["verified"] for x in shown["explanations"])
    assert texts[-1] == json.loads(recommended)[-1]["explanation"]["text"]
    code, out, _ = run(capsys, *s, "export", "17850")
    assert json.loads(out)["subject"]["id"] == "17850"
    code, _, err = run(capsys, *s, "erase", "17850")
    assert code == 2
    assert "--yes" in err
    code, out, _ = run(capsys, *s, "erase", "17850", "--yes")
    assert code == 0
    assert json.loads(run(capsys, *s, "export", "17850")[1])["held"] is False


def test_user_mistakes_exit_1_with_one_line(store_path: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    s = ["--store", store_path]
    cases = [
        (["ingest", str(tmp_path / "missing.csv")], "no such file"),
        (["ingest", str(tmp_path / "x.csv"), "--map", "usr=CustomerID"], "--map"),
        (["consent", "u1", "marketing", "grant", "--source", "x"], "unknown purpose"),
        (["recommend", "u1", "--model", str(tmp_path / "none")], "persona train"),
        (["feature", "add", "f", "--purposes", "personalization", "--category", "c",
          "--retention-days", "soon"], "whole number"),
        (["ingest", str(tmp_path / "x.csv"), "--tz", "Mars/Olympus"], "time zone"),
    ]
    (tmp_path / "x.csv").write_text("user,item\n")
    for argv, needle in cases:
        code, _, err = run(capsys, *s, *argv)
        assert code == 2, argv
        assert needle in err, (argv, err)
        assert re.match(r"persona: error \[[a-z_]+\]: ", err), err
        assert "Traceback" not in err


@pytest.mark.parametrize("command", ["demo", "purpose", "feature", "consent", "ingest",
                                     "catalogue", "train", "recommend", "explain", "report",
                                     "export", "erase", "budget"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: persona" in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["recommend"])
    assert info.value.code == 2
    assert persona.__version__


def test_private_train_needs_the_declared_catalogue(
    store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = ["--store", store_path]
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text(CSV)
    mapping = ["--map", "user=CustomerID", "--map", "item=StockCode", "--map", "value=Quantity",
               "--map", "at=InvoiceDate", "--feature", "purchases", "--tz", "Europe/London",
               "--on-invalid", "skip"]
    assert run(capsys, *s, "ingest", str(csv_file), *mapping)[0] == 0
    train = [*s, "train", "--out", str(tmp_path / "m"), "--model", "popularity",
             "--epsilon", "1"]
    code, _, err = run(capsys, *train)
    assert code == 2
    assert "declared catalogue" in err and "Traceback" not in err
    products = tmp_path / "products.csv"
    products.write_text("StockCode,Description\n84879,Assorted colour bird ornament\n"
                        "22745,Poppy's playhouse bedroom\n99999,Never sold\n")
    code, out, _ = run(capsys, *s, "catalogue", "import", str(products),
                       "--item-column", "StockCode", "--label-column", "Description")
    assert code == 0
    assert "declared 3 items (3 with a label)" in out
    code, out, err = run(capsys, *s, "catalogue", "show")
    assert out.splitlines()[2] == "99999\tNever sold"
    code, out, _ = run(capsys, *train)
    assert code == 0
    assert "3 items" in out
    code, _, err = run(capsys, *s, "catalogue", "import", str(products), "--item-column", "nope")
    assert code == 2 and "--item-column" in err


def test_budget_set_and_show(store_path: str, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "budget", "show", "--store", store_path)
    assert code == 0 and "no budget set" in out
    code, out, _ = run(capsys, "budget", "set", "--store", store_path, "--purpose",
                       "personalization", "--epsilon", "2", "--delta", "1e-6",
                       "--period-days", "30")
    assert code == 0
    assert "ε = 2, δ = 1e-06 per rolling 30 days" in out and "ε = 26" in out
    store = persona.Store(store_path)
    assert store.privacy_budget_policy("personalization").period_days == 30
    ledger = store.privacy_ledger("personalization")
    r = ledger.reserve("personalization", (0.5, 1e-7))
    ledger.settle(r, [persona.privacy.PrivacySpent(mechanism="dp-als", epsilon=0.5,
                                                   delta=1e-7)], snapshot="audit#4")
    ledger.reserve("personalization", (0.25, 0.0))
    store.close()
    # --store may also come before the command, as for every other command
    code, out, _ = run(capsys, "--store", store_path, "budget", "show", "--purpose",
                       "personalization")
    assert code == 0
    assert "spent:     ε = 0.75, δ = 1e-07 in the last 30 days" in out
    assert "remaining: ε = 1.25, δ = 9e-07" in out
    assert "settled   dp-als: ε = 0.5, δ = 1e-07, snapshot audit#4" in out
    assert "reserved  reserved: ε = 0.25" in out
    code, out, _ = run(capsys, "budget", "show", "--store", store_path, "--json")
    (state,) = [s for s in json.loads(out) if s["purpose"] == "personalization"]
    assert state["policy"]["period_days"] == 30
    assert [c["status"] for c in state["charges"]] == ["settled", "reserved"]
    assert state["remaining"] == {"epsilon": 1.25, "delta": 9e-07}
    # back to a lifetime total
    code, out, _ = run(capsys, "budget", "set", "--store", store_path, "--purpose",
                       "personalization", "--epsilon", "5", "--delta", "1e-5")
    assert code == 0 and "in total for the lifetime of the store" in out


@pytest.mark.parametrize(("argv", "needle"), [
    (["--epsilon", "nan", "--delta", "1e-6"], "argument --epsilon: needs a finite number > 0"),
    (["--epsilon", "inf", "--delta", "1e-6"], "argument --epsilon"),
    (["--epsilon", "-1", "--delta", "1e-6"], "argument --epsilon"),
    (["--epsilon", "one", "--delta", "1e-6"], "argument --epsilon"),
    (["--epsilon", "1", "--delta=-1e-6"], "argument --delta: needs a finite number"),
    (["--epsilon", "1", "--delta", "1"], "argument --delta"),
    (["--epsilon", "1", "--delta", "nan"], "argument --delta"),
    (["--epsilon", "1", "--delta", "0", "--period-days", "0"], "argument --period-days"),
    (["--epsilon", "1", "--delta", "0", "--period-days", "2.5"], "argument --period-days"),
    (["--delta", "0"], "--epsilon"),
])
def test_budget_set_refuses_bad_flags_on_one_line(
    store_path: str, argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["budget", "set", "--store", store_path, "--purpose", "personalization", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert needle in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert persona.Store(store_path).privacy_budget("personalization") is None


def test_budget_for_an_unknown_purpose_exits_1(store_path: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["set", "--purpose", "marketing", "--epsilon", "1", "--delta", "0"],
                 ["show", "--purpose", "marketing"]):
        code, _, err = run(capsys, "budget", *argv, "--store", store_path)
        assert code == 2, argv
        assert err.startswith("persona: error [unknown_purpose]: unknown purpose 'marketing'")
        assert err.count("\n") == 1


def test_train_refuses_a_nan_epsilon(store_path: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--store", store_path, "train", "--out", str(tmp_path / "m"), "--epsilon", "nan"])
    assert info.value.code == 2
    assert "argument --epsilon" in capsys.readouterr().err


# ------------------------------------------------------------------ issue 17, point 11
EVENTS = "user,item,feature,value,at\n" + "".join(
    f"{u},{i},purchases,1,2026-10-0{d}T10:00:00Z\n"
    for u, i, d in [("17850", "a", 1), ("17850", "b", 2), ("13047", "a", 3), ("13047", "c", 4),
                    ("12583", "b", 5)]
)


@pytest.mark.parametrize(("content", "needle"), [
    (b"user,item\n\xff\xfe,x\n", "UTF-8"),
    (b"user,item\n" + b"a" * 200_000 + b",x\n", "field"),
    (b'{"user": "\xff"}\n', "UTF-8"),
])
def test_unreadable_files_are_one_line_errors(
    store_path: str, tmp_path: Path, content: bytes, needle: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "bad.jsonl" if content.startswith(b"{") else "bad.csv"
    (tmp_path / name).write_bytes(content)
    for argv in (["ingest", name], ["catalogue", "import", name]):
        code, _, err = run(capsys, "--store", store_path, *argv)
        assert code == 2, argv
        one_line_error(err)
        assert needle in err and "bad." in err


def test_store_on_a_file_that_is_not_sqlite_is_aone_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("not a database\n" * 50)
    code, _, err = run(capsys, "--store", "notes.txt", "purpose", "add", "p",
                       "--description", "d")
    assert code == 2
    one_line_error(err)
    assert "not an SQLite database" in err


def test_a_utf8_bom_does_not_hide_the_first_column(
    store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bom.csv").write_text("\ufeff" + EVENTS, encoding="utf-8")
    code, out, err = run(capsys, "--store", store_path, "ingest", "bom.csv")
    assert code == 0, err
    assert "ingested 5 of 5 events" in out


@pytest.mark.parametrize(("flag", "value"), [
    ("--iterations", "99999999999999999999"), ("--iterations", "0"), ("--iterations", "x"),
    ("--factors", "100000000"), ("--factors", "-1"), ("-n", "99999999999999999999"),
])
def test_train_and_recommend_sizes_are_bounded(
    store_path: str, flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = (["recommend", "u1", "--model", "m"] if flag == "-n"
            else ["train", "--out", "m"])
    with pytest.raises(SystemExit) as info:
        main(["--store", store_path, *argv, flag, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and "from 1 to" in err
    assert err.count("\n") == 1


def test_recommend_with_nothing_to_show_says_so(
    store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = ["--store", store_path]
    (tmp_path / "e.csv").write_text(EVENTS)
    assert run(capsys, *s, "ingest", "e.csv")[0] == 0
    assert run(capsys, *s, "train", "--out", "m", "--model", "itemknn")[0] == 0
    code, out, err = run(capsys, *s, "recommend", "17850", "--model", "m", "-n", "5")
    assert code == 0
    if not any(line[:4].strip().rstrip(".").isdigit() for line in out.splitlines()):
        assert "nothing to recommend" in out + err
    # a person who has every item: nothing is left to show
    (tmp_path / "all.csv").write_text("user,item,feature,value,at\n" + "".join(
        f"12583,{i},purchases,1,2026-10-06T10:00:00Z\n" for i in "ac"))
    assert run(capsys, *s, "ingest", "all.csv")[0] == 0
    assert run(capsys, *s, "train", "--out", "m2", "--model", "itemknn")[0] == 0
    code, out, err = run(capsys, *s, "recommend", "12583", "--model", "m2")
    assert code == 0
    assert "nothing to recommend to '12583'" in out
    code, out, err = run(capsys, *s, "recommend", "12583", "--model", "m2", "--json")
    assert code == 0 and json.loads(out) == []
    assert "nothing to recommend" in err


def test_ingest_errors_name_the_cli_flags(
    store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "naive.csv").write_text(EVENTS.replace("T10:00:00Z", " 10:00:00"))
    code, _, err = run(capsys, "--store", store_path, "ingest", "naive.csv")
    assert code == 2
    one_line_error(err)
    assert "--on-invalid skip" in err and "on_invalid=" not in err
    assert "--tz" in err


@pytest.mark.parametrize("command", [
    ["train", "--model", "popularity"],
    ["report", "--model", "m"],
    ["export", "17850"],
])
@pytest.mark.parametrize("out", ["../escaped", "sub/../../escaped", "ABSOLUTE"])
def test_output_paths_stay_inside_the_current_folder(
    store_path: str, tmp_path: Path, command: list[str], out: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-escaped"  # absolute, outside the folder
    out = str(outside) if out == "ABSOLUTE" else out
    with pytest.raises(SystemExit) as info:
        main(["--store", store_path, *command, "--out", out])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --out" in err and "inside the current folder" in err
    assert err.count("\n") == 1
    assert not (tmp_path.parent / "escaped").exists()
    assert not outside.exists()


def test_arguments_that_are_not_utf8_are_one_line_usage_errors(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Undecodable bytes in argv arrive as lone surrogates (PEP 383)."""
    with pytest.raises(SystemExit) as info:
        main(["--store", store_path, "consent", "u\udcff", "personalization", "grant",
              "--source", "x"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "not valid UTF-8" in err and err.count("\n") == 1


def test_demo_customers_are_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", "--customers", "-5", "--folder", "d"])
    assert info.value.code == 2
    assert "argument --customers" in capsys.readouterr().err


def test_a_store_with_its_key_held_outside_opens_with_the_environment_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "ab" * 32
    path = str(tmp_path / "keyed.db")
    persona.Store(path, pseudonym_key=key).close()
    code, _, err = run(capsys, "--store", path, "budget", "show")
    assert code == 2 and "pseudonym_key" in err and "Traceback" not in err
    monkeypatch.setenv("PERSONA_PSEUDONYM_KEY", key)
    code, out, _ = run(capsys, "--store", path, "budget", "show")
    assert code == 0 and "no purposes are defined" in out


def test_report_takes_the_organisations_details(store_path: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    s = ["--store", store_path]
    mapping = ["--map", "user=CustomerID", "--map", "item=StockCode", "--map",
               "at=InvoiceDate", "--map", "value=Quantity", "--feature", "purchases",
               "--tz", "Europe/London", "--on-invalid", "skip"]
    (tmp_path / "r.csv").write_text(CSV)
    assert run(capsys, *s, "ingest", str(tmp_path / "r.csv"), *mapping)[0] == 0
    assert run(capsys, *s, "train", "--out", "m", "--model", "itemknn")[0] == 0
    code, _, err = run(capsys, *s, "report", "--model", "m", "--out", "bare")
    assert code == 0 and "not fileable" in err
    assert "MISSING" in (tmp_path / "bare" / "records_of_processing.md").read_text()
    (tmp_path / "org.toml").write_text(
        'security_measures = ["disks encrypted at rest"]\n'
        '[dpo]\nname = "A. Reviewer"\ncontact = "dpo@example.com"\n'
        '[[recipients]]\nname = "Cloud Host GmbH"\nrole = "processor: hosting"\n')
    code, _, err = run(capsys, *s, "report", "--model", "m", "--out", "filed", "--user",
                       "17850", "--org", "org.toml", "--controller",
                       "Example Shop Ltd <privacy@example.com>", "--list-length", "6")
    assert code == 0 and err == ""
    text = (tmp_path / "filed" / "records_of_processing.md").read_text()
    assert "Example Shop Ltd" in text and "dpo@example.com" in text
    assert "Cloud Host GmbH" in text and "MISSING" not in text
    page = (tmp_path / "filed" / "transparency-17850.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Cloud Host GmbH" in page
    assert "up to 6" in (tmp_path / "filed" / "main_parameters.md").read_text()
    (tmp_path / "bad.json").write_text('{"controller": "Example Shop"}')
    for bad, needle in ((["--org", "bad.json"], "controller"),
                        (["--org", "nowhere.toml"], "cannot read"),
                        (["--controller", "Example Shop"], "NAME <CONTACT>")):
        with pytest.raises(SystemExit) as info:
            run(capsys, *s, "report", "--model", "m", "--out", "x", *bad)
        err = capsys.readouterr().err
        assert info.value.code == 2, bad
        assert needle in err and len(err.strip().splitlines()) == 1, err


def test_ingest_reads_unix_times_with_at_unit_and_naive_times_with_tz(
    store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 22: numbers need a unit and naive times a zone, from the CLI as from the API
    (the store's one rule: the CLI does not read times itself)."""
    s = ["--store", store_path]
    (tmp_path / "unix.csv").write_text(
        "user,item,feature,at\n17850,sku-1,purchases,1780000000\n13047,sku-2,purchases,1780000060\n")
    code, _, err = run(capsys, *s, "ingest", "unix.csv")
    assert code == 2
    one_line_error(err)
    assert "--at-unit s" in err and "at_unit=" not in err
    code, out, err = run(capsys, *s, "ingest", "unix.csv", "--at-unit", "s")
    assert code == 0, err
    assert "ingested 2 of 2 events" in out
    store = persona.Store(store_path)
    at = store.scope("personalization").history("17850").at
    assert at.tolist()[0] == datetime(2026, 5, 28, 20, 26, 40)  # 1780000000 s, in UTC
    store.close()
    # a wall time that the clocks skip in that zone is refused, not shifted
    (tmp_path / "gap.csv").write_text(
        "user,item,feature,at\n12583,sku-3,purchases,2026-03-29 01:30:00\n")
    code, _, err = run(capsys, *s, "ingest", "gap.csv", "--tz", "Europe/London")
    assert code == 2
    one_line_error(err)
    with pytest.raises(SystemExit) as info:
        main([*s, "ingest", "gap.csv", "--at-unit", "minutes"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--at-unit" in err and err.count("\n") == 1
