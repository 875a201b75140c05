"""tools/mutation.py itself (``make mutation``): which mutants a target selects, its rows in
the summary table, and which justifications it calls stale. Pure: mutmut is not run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("persona_mutation_tool",
                                                  ROOT / "tools" / "mutation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


mt = _load()
STORE = "src/persona/store/_store.py"
SEP = "\u01c1"  # mutmut's class separator in mutant names


def _mutant(name: str, status: str = "survived", key: str = "k") -> object:
    return mt.Mutant(name, STORE, status, "", False, False, key)


def test_method_patterns_select_exactly_those_methods() -> None:
    target = mt.Target("t", (STORE,), ("tests/x.py",),
                       mt.methods(STORE, "Store", "grant", "_consent"))
    assert target.selects(f"persona.store._store.x{SEP}Store{SEP}grant__mutmut_1")
    assert target.selects(f"persona.store._store.x{SEP}Store{SEP}_consent__mutmut_12")
    # a longer name that starts the same, another method, another class: not selected
    assert not target.selects(f"persona.store._store.x{SEP}Store{SEP}_consent_many__mutmut_1")
    assert not target.selects(f"persona.store._store.x{SEP}Store{SEP}withdraw__mutmut_1")
    assert not target.selects(f"persona.store._store.x{SEP}Other{SEP}grant__mutmut_1")
    assert not target.selects("persona.store._view.x" + SEP + "Store" + SEP + "grant__mutmut_1")


def test_function_patterns_select_module_level_functions() -> None:
    target = mt.Target("t", (STORE,), ("tests/x.py",), mt.functions(STORE, "_check_id"))
    assert target.selects("persona.store._store.x__check_id__mutmut_4")
    assert not target.selects("persona.store._store.x__check_id_more__mutmut_4")
    assert not target.selects(f"persona.store._store.x{SEP}Store{SEP}_check_id__mutmut_4")


def test_a_target_without_functions_selects_every_mutant() -> None:
    target = mt.Target("t", (STORE,), ("tests/x.py",))
    assert target.selects("persona.store._store.x_anything__mutmut_1")
    assert target.label(STORE) == "`persona/store/_store.py`"


def test_patterns_need_a_wildcard() -> None:
    # mutmut looks a name with no "*" up as one mutant and fails on a function name
    with pytest.raises(ValueError, match="need a"):
        mt.Target("t", (STORE,), ("tests/x.py",), ("persona.store._store.x__check_id",))


def test_the_configured_targets_are_well_formed() -> None:
    names = [t.name for t in mt.TARGETS]
    assert len(names) == len(set(names))
    labels = [t.label(m) for t in mt.TARGETS for m in t.modules]
    assert len(labels) == len(set(labels)), "two targets would write the same row"
    for target in mt.TARGETS:
        for path in (*target.modules, *target.tests):
            assert (ROOT / path).is_file(), path
        for pattern in target.functions:
            module = pattern.split(".x", 1)[0]
            assert any(mt._dotted(m) == module for m in target.modules), pattern
            if not pattern.endswith("__mutmut_*"):
                continue  # a whole module's functions
            # every pattern that names a function names one that exists in the source
            function = pattern.split(".x", 1)[1].removesuffix("__mutmut_*")
            name = function.split(SEP)[-1] if SEP in function else function[1:]
            source = "\n".join((ROOT / m).read_text() for m in target.modules)
            assert f"def {name}(" in source, pattern


def test_targets_sharing_a_module_get_their_own_rows(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(mt, "_mutmut_version", lambda: "3.x")
    doc = tmp_path / "testing.md"
    doc.write_text(f"# Testing\n\n{mt.BEGIN}\n"
                   "| module | mutants | string-only | non-string killed | timeouts | survivors "
                   "explained | unexplained | score | date |\n|---|---|---|---|---|---|---|---|---|\n"
                   "| `persona/privacy/_bounding.py` | 1 | 0 | 1/1 | 0 | 0 | 0 | 100% | old |\n"
                   f"{mt.END}\ntail\n")
    a = mt.Target("store_a", (STORE,), ("tests/x.py",), mt.methods(STORE, "Store", "grant"))
    b = mt.Target("store_b", (STORE,), ("tests/x.py",), mt.methods(STORE, "Store", "erase"))
    results = [
        mt.ModuleResult(STORE, a.tests, [_mutant("m1", "killed"), _mutant("m2")],
                        label=a.label(STORE), target=a.name, partial=True),
        mt.ModuleResult(STORE, b.tests, [_mutant("m3", "killed")],
                        label=b.label(STORE), target=b.name, partial=True),
    ]
    table = mt.write_summary(results, {}, doc)
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [r.split(" | ")[0] for r in rows] == [
        "| `persona/privacy/_bounding.py`",
        "| `persona/store/_store.py` (store_a)",
        "| `persona/store/_store.py` (store_b)",
    ]
    assert "| 1/2 |" in rows[1] and "| 50% |" in rows[1]
    assert "| 1/1 |" in rows[2] and "| 100% |" in rows[2]
    assert doc.read_text().endswith(f"{mt.END}\ntail\n")
    # a second run of one target replaces its row only
    results[0].mutants[1] = _mutant("m2", "killed")
    table = mt.write_summary(results[:1], {}, doc)
    assert "| `persona/store/_store.py` (store_a) | 2 | 0 | 2/2 |" in table
    assert "| `persona/store/_store.py` (store_b) | 1 | 0 | 1/1 |" in table


def test_stale_justifications_are_scoped_to_what_ran() -> None:
    justified = {
        "gone-a": {"module": STORE, "target": "store_a", "why": "x"},
        "gone-b": {"module": STORE, "target": "store_b", "why": "x"},
        "kept-a": {"module": STORE, "target": "store_a", "why": "x"},
        "module-wide": {"module": STORE, "why": "x"},
        "other": {"module": "src/persona/privacy/_bounding.py", "why": "x"},
    }
    ran = [mt.ModuleResult(STORE, (), [_mutant("m", key="kept-a")], target="store_a",
                           partial=True)]
    # store_b did not run, and a partial run cannot tell a module-wide entry is stale
    assert mt.stale_justifications(ran, justified) == ["gone-a"]
    whole = [mt.ModuleResult(STORE, (), [_mutant("m", key="kept-a")], target="all")]
    assert mt.stale_justifications(whole, justified) == ["module-wide"]


def test_sql_letter_case_is_explained_but_not_its_literals_or_other_text() -> None:
    fn = 'def f(c):\n    return c.execute("SELECT action FROM consent_state WHERE a = {}")'
    assert mt.sql_case_only(fn.format("'grant'"), fn.lower().format("'grant'"))
    assert not mt.sql_case_only(fn.format("'grant'"), fn.format("'GRANT'"))
    assert not mt.sql_case_only(fn.format("1"), fn.format("1").replace("a = 1", "a = 2"))
    m = mt.Mutant("x__f__mutmut_1", STORE, "survived", "", True, False, "k", True)
    assert "SQLite" in mt._explanation(m, {})
    m = mt.Mutant("x__f__mutmut_1", STORE, "survived", "", True, False, "k")
    assert mt._explanation(m, {}) is None


def test_a_split_module_is_gated_on_the_sum_of_its_targets(tmp_path: Path,
                                                           monkeypatch) -> None:
    """Issue 24 sets the gate per module: a module split into targets passes or fails on
    its targets' rows together (this run's, and the table's from their last runs), and
    fails while one of its targets has never run or keeps an unexplained survivor."""
    a = mt.Target("store_a", (STORE,), ("tests/x.py",), mt.methods(STORE, "Store", "grant"))
    b = mt.Target("store_b", (STORE,), ("tests/x.py",), mt.methods(STORE, "Store", "erase"))
    c = mt.Target("store_c", (STORE,), ("tests/x.py",), mt.methods(STORE, "Store", "scope"))
    monkeypatch.setattr(mt, "TARGETS", (a, b, c))
    doc = tmp_path / "testing.md"
    doc.write_text(f"{mt.BEGIN}\n| {' | '.join(mt.HEADER)} |\n"
                   f"| {b.label(STORE)} | 20 | 0 | 19/20 | 0 | 1 | 0 | 95% | old |\n"
                   f"| {c.label(STORE)} | 10 | 0 | 10/10 | 0 | 0 | 0 | 100% | old |\n"
                   f"{mt.END}\n")
    # store_a alone: 8 of 10 (80%), but 37 of 40 over the module (92.5%)
    ran = [mt.ModuleResult(STORE, a.tests,
                           [_mutant(f"k{i}", "killed") for i in range(8)]
                           + [_mutant("s1", key="j1"), _mutant("s2", key="j2")],
                           label=a.label(STORE), target=a.name, partial=True)]
    justified = {"j1": {"module": STORE, "why": "x"}, "j2": {"module": STORE, "why": "x"}}
    rows = mt.merged_rows(ran, justified, doc)
    assert mt.module_scores(ran, rows) == {STORE: (37, 40, 0, [])}
    # an unexplained survivor counts, whatever the score
    rows = mt.merged_rows(ran, {"j1": justified["j1"]}, doc)
    assert mt.module_scores(ran, rows) == {STORE: (37, 40, 1, [])}
    # a target with no row yet is named (the module cannot pass without it)
    doc.write_text(f"{mt.BEGIN}\n| {' | '.join(mt.HEADER)} |\n"
                   f"| {b.label(STORE)} | 20 | 0 | 19/20 | 0 | 1 | 0 | 95% | old |\n{mt.END}\n")
    rows = mt.merged_rows(ran, justified, doc)
    assert mt.module_scores(ran, rows) == {STORE: (27, 30, 0, ["store_c"])}
