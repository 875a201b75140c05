"""The command line: every command, clear errors and exit codes, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import persona
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


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


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
    assert code == 1
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
    code, out, _ = run(capsys, *s, "recommend", "17850", "--model", str(tmp_path / "m"), "--json")
    assert json.loads(out)[0]["explanation"]["kind"] == "decomposition"
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
    code, out, _ = run(capsys, *s, "export", "17850")
    assert json.loads(out)["subject"]["id"] == "17850"
    code, _, err = run(capsys, *s, "erase", "17850")
    assert code == 1
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
        assert code == 1, argv
        assert needle in err, (argv, err)
        assert err.startswith("persona: error:")
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
    assert code == 1
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
    assert code == 1 and "--item-column" in err


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
        assert code == 1, argv
        assert err.startswith("persona: error: unknown purpose 'marketing'")
        assert err.count("\n") == 1


def test_train_refuses_a_nan_epsilon(store_path: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--store", store_path, "train", "--out", str(tmp_path / "m"), "--epsilon", "nan"])
    assert info.value.code == 2
    assert "argument --epsilon" in capsys.readouterr().err
