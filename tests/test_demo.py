"""The end-to-end demo (what `make demo` runs) on the bundled shop."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import persona
from persona.demo import run_demo, run_store_walkthrough


@pytest.mark.slow
def test_demo_runs_end_to_end_and_leaves_checkable_files(tmp_path: Path) -> None:
    out = io.StringIO()
    made = run_demo(tmp_path, out, customers=150)
    text = out.getvalue()
    assert "CC BY 4.0" in text
    assert text.count("Top 5 for customer") == 3
    assert "withdrew consent" in text
    assert "turned off personalization" in text
    assert "Held about them now: nothing" in text
    assert "Privacy budget ledger" in text
    assert "hash chain intact" in text
    assert f"Files are in {tmp_path}" in text
    for name in made["reports"]:
        assert json.loads((tmp_path / f"{name}.json").read_text())
        assert (tmp_path / f"{name}.html").read_text().startswith("<")
    assert made["plot"] is not None
    assert made["plot"].stat().st_size > 10_000
    store = persona.Store(made["store"])
    assert store.audit.verify()
    assert store.export(made["erased"])["held"] is False
    assert not store.has_consent(made["withdrawn"], "personalization")
    charges = store.charge_storage().load_charges()
    assert sum(c.epsilon for c in charges) <= 8.0 + 1e-9
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("shop.db*"))
    assert f'"{made["erased"]}"'.encode() not in raw
    assert made["erased"].encode() not in raw


def test_store_walkthrough(tmp_path: Path) -> None:
    out = io.StringIO()
    run_store_walkthrough(tmp_path, out)
    assert "still contains 'dev-42': False" in out.getvalue()
    assert "hash chain intact: True" in out.getvalue()
