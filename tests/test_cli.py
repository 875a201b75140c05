"""The command line and the demo walkthrough."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import persona
from persona.cli import main
from persona.demo import run_store_walkthrough


def test_store_walkthrough_runs_and_leaves_a_sound_store(tmp_path: Path) -> None:
    out = io.StringIO()
    path = run_store_walkthrough(tmp_path, out)
    text = out.getvalue()
    assert "hash chain intact: True" in text
    assert "still contains 'dev-42': False" in text
    assert "refused until they grant consent again" in text
    store = persona.Store(path)
    assert store.audit.verify()
    assert sorted(store.scope("personalization").events().users) == ["ana"]
    assert (tmp_path / "export-ana.json").exists()


def test_cli_demo_and_help(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--folder", str(tmp_path)]) == 0
    assert "Files are in" in capsys.readouterr().out
    assert main([]) == 2
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
