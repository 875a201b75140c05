"""Helpers shared by the command-line tests: run a command, check a one-line error."""

from __future__ import annotations

import re

import pytest

from persona.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``persona ARGV``; its exit code, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> None:
    """A caller's mistake: one line, ``persona: error [code]: ...``, no traceback."""
    assert re.match(r"persona: error \[[a-z_]+\]: ", err), err
    assert err.count("\n") == 1 and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
