"""Each public subpackage's ``__all__`` is the reviewed snapshot (issue 19): adding,
removing or renaming a public name is a deliberate change, made with
``python tools/public_api.py --write`` and seen in the diff."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import public_api  # noqa: E402

SNAPSHOT = json.loads(public_api.SNAPSHOT.read_text(encoding="utf-8"))


def test_the_snapshot_covers_every_public_subpackage() -> None:
    assert sorted(SNAPSHOT) == sorted(public_api.modules())


@pytest.mark.parametrize("name", sorted(SNAPSHOT))
def test_all_is_the_snapshot(name: str) -> None:
    module = importlib.import_module(name)
    assert sorted(getattr(module, "__all__", [])) == SNAPSHOT[name], (
        "the public names changed: review, then run python tools/public_api.py --write"
    )


@pytest.mark.parametrize("name", sorted(SNAPSHOT))
def test_every_name_in_all_resolves(name: str) -> None:
    module = importlib.import_module(name)
    names = getattr(module, "__all__", [])
    missing = [n for n in names if getattr(module, n, None) is None]
    assert not missing
    assert len(names) == len(set(names)), "a name is listed twice"


def test_tests_import_no_private_name_outside_the_reviewed_list() -> None:
    """Tests reach persona through public names (issue 19); the unit tests of internals
    that have no public equivalent are listed in tests/snapshots/private_in_tests.json.
    A new private import fails here, and so does a listed one no test needs any more
    (the list only shrinks unless a reviewer adds to it)."""
    allowed = json.loads(public_api.PRIVATE.read_text(encoding="utf-8"))
    now = public_api.private_in_tests()
    new = {f: sorted(set(v) - set(allowed.get(f, []))) for f, v in now.items()}
    assert not {f: v for f, v in new.items() if v}, "private names imported by tests"
    gone = {f: sorted(set(v) - set(now.get(f, []))) for f, v in allowed.items()}
    assert not {f: v for f, v in gone.items() if v}, "no longer imported: shrink the list"
