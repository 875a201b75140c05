"""Mutation testing of persona's trust-critical modules (``make mutation``).

For each target (a module, or a few that share tests) this copies the sources and tests into
``build/mutation/<target>/``, runs mutmut 3 there on that module only, against the test files
that cover it, and reads back every mutant's verdict and diff. A mutant counts as *killed* when
a test failed or it ran past mutmut's time limit. A mutant that only changes string literals is
*string-only*, counted apart; the score is the share of the other mutants that are killed.

Every survivor must be explained:

* a string-only mutant whose changed strings all sit in the message of a ``raise`` is the
  wording of an error (its type and code are what callers rely on, and those are not strings
  of the raising code), explained automatically;
* any other survivor needs an entry in ``tools/mutation_justifications.toml`` saying why it is
  equivalent or harmless, keyed by a hash of the function and the changed lines (stable when
  unrelated code moves).

The full report (every survivor with its diff) goes to ``build/mutation/report.md``; the summary
table replaces its block in ``docs/testing.md``. The exit status is 1 when a module kills less
than 90% of its non-string mutants or keeps a survivor nobody explained, so the run can gate.

Usage::

    python tools/mutation.py                 # every target, from scratch
    python tools/mutation.py bounding sampler
    python tools/mutation.py --keep bounding # reuse build/mutation/bounding, rerun survivors
    python tools/mutation.py --report-only   # report the last run again (justifications edited)
"""

from __future__ import annotations

import argparse
import ast
import copy
import datetime as dt
import fnmatch
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "mutation"
JUSTIFICATIONS = ROOT / "tools" / "mutation_justifications.toml"
DOC = ROOT / "docs" / "testing.md"
BEGIN, END = "<!-- mutation-summary:begin -->", "<!-- mutation-summary:end -->"
THRESHOLD = 0.90
MAX_CHILDREN = 2  # CI and the developers' machines have 2 cores

KILLED = {"killed", "timeout", "segfault", "caught by type check"}


@dataclass(frozen=True)
class Target:
    name: str
    modules: tuple[str, ...]  # source files to mutate, relative to the repository root
    tests: tuple[str, ...]  # test files that cover them
    functions: tuple[str, ...] = ()  # fnmatch patterns on mutant names; empty: every function


TARGETS = (
    Target("bounding", ("src/persona/privacy/_bounding.py",),
           ("tests/test_privacy_bounding_mechanisms.py",)),
    Target("mechanisms", ("src/persona/privacy/_mechanisms.py",),
           ("tests/test_privacy_bounding_mechanisms.py", "tests/test_privacy_mechanisms_recipe.py",
            "tests/test_privacy_sampler.py")),
    Target("sampler", ("src/persona/privacy/_sampler.py",),
           ("tests/test_privacy_sampler.py", "tests/test_privacy_sampler_brackets.py")),
    Target("accountant", ("src/persona/privacy/_accountant.py",),
           ("tests/test_privacy_accounting.py", "tests/test_privacy_accounting_edges.py")),
    Target("ledger", ("src/persona/privacy/_ledger.py", "src/persona/schema/_ledger.py"),
           ("tests/test_privacy_ledger.py", "tests/test_store_ledger.py",
            "tests/test_privacy_ledger_rules.py")),
    Target("explain_text", ("src/persona/explain/_text.py",), ("tests/test_explain_core.py",)),
)


@dataclass
class Mutant:
    name: str
    module: str
    status: str
    diff: str
    string_only: bool
    wording: bool
    key: str

    @property
    def killed(self) -> bool:
        return self.status in KILLED


@dataclass
class ModuleResult:
    module: str
    tests: tuple[str, ...]
    mutants: list[Mutant] = field(default_factory=list)

    def count(self, predicate) -> int:
        return sum(1 for m in self.mutants if predicate(m))

    @property
    def non_string(self) -> list[Mutant]:
        return [m for m in self.mutants if not m.string_only]

    @property
    def score(self) -> float:
        rest = self.non_string
        return sum(m.killed for m in rest) / len(rest) if rest else 1.0


# ---------------------------------------------------------------------------------------------
# classifying a mutant


class _Blank(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        return ast.Constant("") if isinstance(node.value, str) else node


def _blank_strings(tree: ast.AST) -> str:
    return ast.dump(_Blank().visit(copy.deepcopy(tree)))


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _in_raise_message(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """True when ``node`` is part of the message of a ``raise``: under a Raise, and not in a
    keyword argument other than ``message`` (``field="x"``, ``errors=[...]`` are data)."""
    while id(node) in parents:
        parent = parents[id(node)]
        if isinstance(parent, ast.keyword) and parent.arg != "message":
            return False
        if isinstance(parent, ast.Raise):
            return node is parent.exc
        if isinstance(parent, ast.stmt):
            return False
        node = parent
    return False


def classify(original: str, mutant: str) -> tuple[bool, bool]:
    """(string-only, wording) of a mutant given both versions of its function's source.

    >>> raising = 'def f():\\n    raise ValueError({!r})'
    >>> classify(raising.format("bad"), raising.format("XXbadXX"))
    (True, True)
    >>> classify('def f():\\n    return "a"', 'def f():\\n    return "A"')
    (True, False)
    >>> classify('def f(x):\\n    return x < 1', 'def f(x):\\n    return x <= 1')
    (False, False)
    """
    a, b = ast.parse(original), ast.parse(mutant)
    if _blank_strings(a) != _blank_strings(b):
        return False, False
    parents = _parents(a)
    changed = [
        x for x, y in zip(ast.walk(a), ast.walk(b), strict=True)
        if isinstance(x, ast.Constant) and isinstance(x.value, str) and x.value != y.value
    ]
    return True, bool(changed) and all(_in_raise_message(x, parents) for x in changed)


def survivor_key(mutant_name: str, diff: str) -> str:
    """A hash of the function and the changed lines: stable when other code moves."""
    function = mutant_name.partition("__mutmut_")[0]
    changed = [line[1:].strip() for line in diff.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return hashlib.sha256("\n".join([function, *changed]).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# running mutmut


def _mutmut_config(target: Target) -> str:
    def toml_list(items) -> str:
        return "[" + ", ".join(json.dumps(str(x)) for x in items) + "]"

    return "\n".join([
        "", "[tool.mutmut]",
        'source_paths = ["src"]',
        f"only_mutate = {toml_list(target.modules)}",
        f"pytest_add_cli_args_test_selection = {toml_list(target.tests)}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]',
        "use_git_change_detection = false",
        "",
    ])


# mutmut forks every mutant's run from a process that already ran the tests on the original
# code: a function behind functools.lru_cache would answer from that cache and its mutants
# would never run. The copied tests clear every persona cache before each test.
_CLEAR_CACHES = """

# added by tools/mutation.py (only in its copy of the tests)
@pytest.fixture(autouse=True)
def _mutation_clears_caches():
    import sys as _sys

    for _name, _module in list(_sys.modules.items()):
        if _name.startswith("persona"):
            for _value in list(vars(_module).values()):
                _clear = getattr(_value, "cache_clear", None)
                if callable(_clear):
                    _clear()
"""


def _prepare(target: Target, keep: bool) -> Path:
    work = WORK / target.name
    if not keep and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    # copy2 keeps modification times: mutmut regenerates a module's mutants only when its
    # source is newer than them
    for folder in ("src", "tests"):
        shutil.copytree(ROOT / folder, work / folder, copy_function=shutil.copy2,
                        dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".hypothesis"))
    conftest = work / "tests" / "conftest.py"
    conftest.write_text((ROOT / "tests" / "conftest.py").read_text() + _CLEAR_CACHES)
    pyproject = (ROOT / "pyproject.toml").read_text()
    (work / "pyproject.toml").write_text(pyproject + _mutmut_config(target))
    return work


def _mutmut(work: Path, names: list[str]) -> int:
    exe = Path(sys.executable).with_name("mutmut")
    env = dict(os.environ, HYPOTHESIS_PROFILE="ci", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    command = [str(exe), "run", "--max-children", str(MAX_CHILDREN), *names]
    print("  $", " ".join(command[:6]), "..." if len(command) > 6 else "", flush=True)
    result = subprocess.run(command, cwd=work, env=env, check=False,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = work / "mutmut.log"
    with log.open("a") as f:
        f.write(result.stdout)
    if result.returncode != 0:
        print(result.stdout[-4000:], file=sys.stderr)
    return result.returncode


def _status_names() -> dict[int | None, str]:
    from mutmut.stats import status_by_exit_code
    return status_by_exit_code


def _read(target: Target, work: Path) -> list[ModuleResult]:
    import libcst as cst
    from mutmut.mutation.diff_apply import get_diff_for_mutant, read_functions_from_index

    statuses = _status_names()
    results = []
    cwd = Path.cwd()
    os.chdir(work)
    try:
        for module in target.modules:
            meta = json.loads((work / "mutants" / f"{module}.meta").read_text())
            result = ModuleResult(module, target.tests)
            for name, code in sorted(meta["exit_code_by_key"].items(), key=_natural):
                if target.functions and not any(fnmatch.fnmatch(name, p)
                                                 for p in target.functions):
                    continue
                diff = get_diff_for_mutant(name, path=module)
                functions = read_functions_from_index(name, module)
                if functions is None:
                    raise RuntimeError(f"mutmut left no line index for {module}")
                original, mutated = (cst.Module([f]).code for f in functions)
                string_only, wording = classify(original, mutated)
                result.mutants.append(Mutant(name, module, statuses[code], diff, string_only,
                                             wording, survivor_key(name, diff)))
            results.append(result)
    finally:
        os.chdir(cwd)
    return results


def _natural(item: tuple[str, object]) -> tuple[str, int]:
    head, _, number = item[0].rpartition("__mutmut_")
    return head, int(number) if number.isdigit() else 0


def run_target(target: Target, keep: bool) -> list[ModuleResult]:
    print(f"== {target.name}: {', '.join(target.modules)}", flush=True)
    work = _prepare(target, keep)
    if _mutmut(work, list(target.functions)) != 0:
        raise SystemExit(f"mutmut failed for {target.name}; see {work / 'mutmut.log'}")
    results = _read(target, work)
    if keep:
        # mutmut keeps the verdicts of unchanged functions even when the tests changed:
        # rerun every mutant that was not killed, by name
        again = [m.name for r in results for m in r.mutants if not m.killed]
        if again:
            if _mutmut(work, again) != 0:
                raise SystemExit(f"mutmut failed for {target.name}; see {work / 'mutmut.log'}")
            results = _read(target, work)
    return results


# ---------------------------------------------------------------------------------------------
# reporting


def load_justifications(path: Path = JUSTIFICATIONS) -> dict[str, dict[str, str]]:
    data = tomllib.loads(path.read_text()) if path.exists() else {}
    kept = {}
    for entry in data.get("kept", []):
        if not entry.get("why", "").strip():
            raise SystemExit(f"{path}: entry {entry.get('id')} has no 'why'")
        kept[entry["id"]] = entry
    return kept


def _explanation(m: Mutant, justified: dict[str, dict[str, str]]) -> str | None:
    if m.key in justified:
        return justified[m.key]["why"].strip()
    if m.wording:
        return "wording of an error message (its type and code are asserted, not its text)"
    return None


def _row(r: ModuleResult, justified, today: str) -> list[str]:
    survivors = [m for m in r.mutants if not m.killed]
    unexplained = [m for m in survivors if _explanation(m, justified) is None]
    rest = r.non_string
    return [
        f"`{r.module.removeprefix('src/')}`", str(len(r.mutants)),
        str(len(r.mutants) - len(rest)),
        f"{sum(m.killed for m in rest)}/{len(rest)}",
        str(r.count(lambda m: m.status == "timeout")),
        str(len(survivors) - len(unexplained)), str(len(unexplained)),
        f"{100 * r.score:.0f}%", today,
    ]


HEADER = ["module", "mutants", "string-only", "non-string killed", "timeouts",
          "survivors explained", "unexplained", "score", "date"]


def write_summary(results: list[ModuleResult], justified, doc: Path = DOC) -> str:
    today = dt.date.today().isoformat()
    text = doc.read_text() if doc.exists() else f"# Testing\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    block, _, tail = rest.partition(END)
    rows: dict[str, list[str]] = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == len(HEADER):
            rows[cells[0]] = cells
    for r in results:
        row = _row(r, justified, today)
        rows[row[0]] = row
    order = [f"`{m.removeprefix('src/')}`" for t in TARGETS for m in t.modules]
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(rows[k]) + " |"
              for k in sorted(rows, key=lambda k: order.index(k) if k in order else len(order))]
    machine = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
               f"Python {platform.python_version()}")
    lines += ["", f"Last run {today} on {machine}, mutmut {_mutmut_version()}, "
              f"`HYPOTHESIS_PROFILE=ci`, {MAX_CHILDREN} workers."]
    table = "\n".join(lines)
    doc.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    return table


def _mutmut_version() -> str:
    from importlib.metadata import version
    return version("mutmut")


def write_report(results: list[ModuleResult], justified, path: Path) -> None:
    out = ["# Mutation report", ""]
    for r in results:
        rest = r.non_string
        out += [f"## {r.module}", "",
                f"Tests: {', '.join(r.tests)}", "",
                f"{len(r.mutants)} mutants ({len(r.mutants) - len(rest)} string-only); "
                f"non-string killed {sum(m.killed for m in rest)}/{len(rest)} "
                f"({100 * r.score:.1f}%), timeouts "
                f"{r.count(lambda m: m.status == 'timeout')}.", ""]
        for m in r.mutants:
            if m.killed:
                continue
            why = _explanation(m, justified)
            kind = "string-only" if m.string_only else "non-string"
            out += [f"### {m.name.rpartition('.')[2]} ({m.status}, {kind}, id `{m.key}`)", "",
                    f"**{'Kept: ' + why if why else 'UNEXPLAINED'}**", "",
                    "```diff", m.diff, "```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"of {[t.name for t in TARGETS]}")
    parser.add_argument("--keep", action="store_true",
                        help="reuse the last run's mutants and rerun only those not killed")
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/testing.md")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: report the last run's results in build/mutation/")
    args = parser.parse_args(argv)
    by_name = {t.name: t for t in TARGETS}
    unknown = [n for n in args.targets if n not in by_name]
    if unknown:
        parser.error(f"unknown target(s) {unknown}; choose from {list(by_name)}")
    justified = load_justifications()
    results: list[ModuleResult] = []
    for name in args.targets or list(by_name):
        target = by_name[name]
        if args.report_only:
            results += _read(target, WORK / name)
        else:
            results += run_target(target, args.keep)
    report = WORK / "report.md"
    write_report(results, justified, report)
    failed = []
    for r in results:
        survivors = [m for m in r.mutants if not m.killed]
        unexplained = [m for m in survivors if _explanation(m, justified) is None]
        print(f"{r.module}: {len(r.mutants)} mutants, non-string killed "
              f"{sum(m.killed for m in r.non_string)}/{len(r.non_string)} "
              f"({100 * r.score:.1f}%), {len(survivors)} survivors, "
              f"{len(unexplained)} unexplained")
        for m in unexplained:
            print(f"  unexplained {m.name} [{m.key}]\n" + re.sub(r"(?m)^", "    ", m.diff))
        if r.score < THRESHOLD or unexplained:
            failed.append(r.module)
    seen = {m.key for r in results for m in r.mutants}
    ran = {r.module for r in results}
    stale = [k for k, e in justified.items() if e.get("module") in ran and k not in seen]
    for key in stale:
        print(f"note: justification {key} matches no mutant any more; remove it")
    if not args.no_doc:
        write_summary(results, justified)
    print(f"report: {report.relative_to(ROOT)}")
    if failed:
        print(f"below {THRESHOLD:.0%} or with unexplained survivors: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
