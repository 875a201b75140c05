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
* a string-only mutant that only changes the letter case of SQL text outside its quoted
  literals is the same statement to SQLite, explained automatically;
* any other survivor needs an entry in ``tools/mutation_justifications.toml`` saying why it is
  equivalent or harmless, keyed by a hash of the function and the changed lines (stable when
  unrelated code moves).

The full report (every survivor with its diff) goes to ``build/mutation/report.md``; the summary
table replaces its block in ``docs/testing.md``. The exit status is 1 when a module kills less
than 90% of its non-string mutants or keeps a survivor nobody explained, so the run can gate. A
module too big to mutate whole is split into targets (one row each); its gate is the sum of its
targets' rows, this run's and the table's from their last runs, and it fails while one of them
has never run.

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
    """A module (or a few that share tests) and the test files that cover it.

    ``functions`` narrows a big module to some of its functions: fnmatch patterns on mutmut's
    mutant names (``persona.store._store.xǁStoreǁgrant__mutmut_3`` for a method,
    ``persona.store._store.x_check_id__mutmut_1`` for a function; :func:`methods` and
    :func:`functions` write them). Each pattern must contain a ``*`` (mutmut looks a name
    without one up as a single mutant). Several targets may share a module, each its own
    functions, and each gets its own row in the table.
    """

    name: str
    modules: tuple[str, ...]  # source files to mutate, relative to the repository root
    tests: tuple[str, ...]  # test files that cover them
    functions: tuple[str, ...] = ()  # fnmatch patterns on mutant names; empty: every function

    def __post_init__(self) -> None:
        plain = [p for p in self.functions if "*" not in p]
        if plain:
            raise ValueError(f"target {self.name}: patterns {plain} need a '*' "
                             "(e.g. 'persona.store._store.xǁStoreǁgrant__mutmut_*')")

    def selects(self, mutant: str) -> bool:
        """Whether the mutant named ``mutant`` belongs to this target."""
        return not self.functions or any(fnmatch.fnmatchcase(mutant, p) for p in self.functions)

    def label(self, module: str) -> str:
        """The row of ``module`` in the table: the module, and the target when it covers only
        some of the module's functions."""
        shown = f"`{module.removeprefix('src/')}`"
        return f"{shown} ({self.name})" if self.functions else shown


def _dotted(module: str) -> str:
    return module.removeprefix("src/").removesuffix(".py").replace("/", ".")


def methods(module: str, cls: str, *names: str) -> tuple[str, ...]:
    """Patterns selecting the mutants of the methods ``names`` of class ``cls`` in ``module``.

    >>> methods("src/persona/store/_store.py", "Store", "grant")
    ('persona.store._store.xǁStoreǁgrant__mutmut_*',)
    """
    return tuple(f"{_dotted(module)}.x\u01c1{cls}\u01c1{n}__mutmut_*" for n in names)


def functions(module: str, *names: str) -> tuple[str, ...]:
    """Patterns selecting the mutants of the module-level functions ``names`` of ``module``.

    >>> functions("src/persona/store/_store.py", "_check_id")
    ('persona.store._store.x__check_id__mutmut_*',)
    """
    return tuple(f"{_dotted(module)}.x_{n}__mutmut_*" for n in names)


_STORE = "src/persona/store/_store.py"
_PEOPLE = "src/persona/store/_people.py"
_CONSENT = "src/persona/store/_consent.py"
_CONSENT_METHODS = "src/persona/store/_consent_methods.py"
_CONSENT_BULK = "src/persona/store/_consent_bulk.py"
_AUDIT = "src/persona/store/_audit.py"
_DEFINITIONS = "src/persona/store/_definitions.py"
_READS = "src/persona/store/_reads.py"
_DECODE = "src/persona/store/_decode.py"
_LINEAGE = "src/persona/store/_lineage.py"
_SEGMENTS = "src/persona/store/_segments.py"
_RIGHTS = "src/persona/store/_rights.py"
_SQLITE = "src/persona/store/_sqlite.py"
_VIEW = "src/persona/store/_view.py"
_INGEST_RULES = "src/persona/store/_ingest_rules.py"

TARGETS = (
    Target("bounding", ("src/persona/privacy/_bounding.py",),
           ("tests/test_privacy_bounding_mechanisms.py",)),
    Target("mechanisms", ("src/persona/privacy/_mechanisms.py",),
           ("tests/test_privacy_bounding_mechanisms.py", "tests/test_privacy_mechanisms_recipe.py",
            "tests/test_privacy_sampler.py")),
    Target("sampler", ("src/persona/privacy/_sampler.py",),
           ("tests/test_privacy_sampler.py", "tests/test_privacy_sampler_brackets.py",
            "tests/test_privacy_sampler_draws.py")),
    Target("accountant", ("src/persona/privacy/_accountant.py",
                          "src/persona/privacy/_composition.py"),
           ("tests/test_privacy_accounting.py", "tests/test_privacy_accounting_edges.py",
            "tests/test_privacy_composition.py")),
    Target("ledger", ("src/persona/privacy/_ledger.py", "src/persona/schema/_ledger.py"),
           ("tests/test_privacy_ledger.py", "tests/test_store_ledger.py",
            "tests/test_privacy_ledger_rules.py")),
    Target("store_consent", (_CONSENT_METHODS, _CONSENT, _CONSENT_BULK, _AUDIT),
           ("tests/test_store_consent_records.py", "tests/test_store_consent_stateful.py",
            "tests/test_store_retention_signals.py", "tests/test_store_erasure.py",
            "tests/test_store_consent_batch.py", "tests/test_store_grant_many.py"),
           (*methods(_CONSENT_METHODS, "ConsentMethods", "grant", "withdraw", "decline",
                     "do_not_sell", "apply_tcf", "apply_consent_mode", "record_consents",
                     "grant_many", "consent_history", "consent_status", "consented",
                     "has_consent"),
            *methods(_AUDIT, "AuditLog", "append_many"),
            f"{_dotted(_CONSENT)}.x*", f"{_dotted(_CONSENT_BULK)}.x*")),
    Target("store_read", (_STORE, _DEFINITIONS, _READS, _DECODE, _LINEAGE, _VIEW),
           ("tests/test_store_contract.py", "tests/test_store_consent_stateful.py",
            "tests/test_store_retention_signals.py", "tests/test_personalizer_retention.py",
            "tests/test_store_erasure.py", "tests/test_store_read_lineage.py"),
           (*methods(_STORE, "Store", "scope"),
            *functions(_DEFINITIONS, "feature_uses"),
            f"{_dotted(_READS)}.x*", f"{_dotted(_DECODE)}.x*", f"{_dotted(_LINEAGE)}.x*",
            f"{_dotted(_VIEW)}.x*")),
    Target("store_retention", (_STORE, _PEOPLE, _DEFINITIONS, _SEGMENTS, _INGEST_RULES),
           ("tests/test_store_retention_signals.py", "tests/test_personalizer_retention.py",
            "tests/test_store_contract.py", "tests/test_store_retention_edges.py",
            "tests/test_ingest_retention.py"),
           (*methods(_STORE, "Store", "apply_retention"),
            *methods(_PEOPLE, "PersonMethods", "shown_retention_days", "set_shown_retention"),
            *functions(_DEFINITIONS, "feature_plan", "cutoffs"),
            *functions(_SEGMENTS, "apply_retention"),
            *functions(_INGEST_RULES, "outside_retention", "count_by_feature",
                       "held_outside_retention"))),
    Target("store_erasure", (_PEOPLE, _RIGHTS, _SEGMENTS, _SQLITE),
           ("tests/test_store_erasure.py", "tests/test_personalizer_erasure.py",
            "tests/test_store_pseudonym.py", "tests/test_store_consent_stateful.py",
            "tests/test_store_erasure_scope.py"),
           (*methods(_PEOPLE, "PersonMethods", "erase"),
            *functions(_RIGHTS, "erase", "erased_at"),
            *functions(_SEGMENTS, "purge_eids", "drop_orphan_items", "merge"),
            *methods(_SQLITE, "SqliteDb", "checkpoint"))),
    # shared serving state (issue 21): curation and the model registry held in the store,
    # and the rows audit.verify() checks them against
    Target("store_serving_state", ("src/persona/store/_curation.py",
                                   "src/persona/store/_registry.py",
                                   "src/persona/store/_serving_rows.py"),
           ("tests/test_shared_serving.py",)),
    # the consent-scoped Parquet export (issue 23)
    Target("store_export", ("src/persona/store/_parquet.py",),
           ("tests/test_parquet_export.py",)),
    # the private model choice and the text model (issue 20); the choice's empirical audit
    # (test_private_choice_audit.py, 30 s a run) is left out, its recipe is pinned here
    Target("choice", ("src/persona/personalizer/_choice.py", "src/persona/models/_content.py"),
           ("tests/test_content_model.py", "tests/test_itemknn_head.py",
            "tests/test_private_choice.py")),
    # private ItemKNN's release: the head and the co-occurrences (issue 20)
    Target("itemknn_private", ("src/persona/models/_neighbours.py",),
           ("tests/test_itemknn_head.py", "tests/test_content_model.py"),
           (*methods("src/persona/models/_neighbours.py", "ItemKNN", "_fit_private",
                     "_released_similarity"),
            *functions("src/persona/models/_neighbours.py", "cosine_top_k"))),
    # test_explain_text_property.py is left out: its title property fits 20 models per
    # mutant; the sentences it checks are pinned word for word in test_explain_text_render.py
    Target("explain_text", ("src/persona/schema/_text.py",),
           ("tests/test_explain_text_render.py", "tests/test_explain_text_forms.py",
            "tests/test_explain_text_plans.py", "tests/test_explain_truth.py",
            "tests/test_explain_core.py")),
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
    sql_case: bool = False  # only the letter case of SQL text changed (sql_case_only)

    @property
    def killed(self) -> bool:
        return self.status in KILLED


@dataclass
class ModuleResult:
    module: str
    tests: tuple[str, ...]
    mutants: list[Mutant] = field(default_factory=list)
    label: str = ""  # its row in the table (Target.label)
    target: str = ""
    partial: bool = False  # only some of the module's functions (Target.functions)

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


_SQL_WORD = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|FROM|WHERE|JOIN|VALUES|ORDER BY|"
                       r"GROUP BY|PRAGMA|CREATE)\b")
_SQL_LITERAL = re.compile(r"'[^']*'")


def sql_case_only(original: str, mutant: str) -> bool:
    """Whether every string the mutant changes is SQL text (it has an SQL keyword written in
    capitals, as persona writes them) whose letters only changed case outside its quoted
    literals: SQLite reads keywords and table and column names in any case, so the
    statement is the same.

    >>> q = "def f(c):\\n    return c.execute({!r})"
    >>> sql_case_only(q.format("SELECT id FROM t WHERE k = 'grant'"),
    ...               q.format("select id from t where k = 'grant'"))
    True
    >>> sql_case_only(q.format("SELECT id FROM t WHERE k = 'grant'"),
    ...               q.format("SELECT ID FROM T WHERE K = 'GRANT'"))
    False
    >>> sql_case_only(q.format("Give a list"), q.format("GIVE A LIST"))
    False
    """
    a, b = ast.parse(original), ast.parse(mutant)
    if _blank_strings(a) != _blank_strings(b):
        return False
    pairs = [(x.value, y.value) for x, y in zip(ast.walk(a), ast.walk(b), strict=True)
             if isinstance(x, ast.Constant) and isinstance(x.value, str) and x.value != y.value]
    return bool(pairs) and all(
        x.lower() == y.lower() and _SQL_WORD.search(x) is not None
        and _SQL_LITERAL.findall(x) == _SQL_LITERAL.findall(y) for x, y in pairs)


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
        'also_copy = ["docs"]',  # tests compare published files (the JSON schema) with code
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
    for folder in ("src", "tests", "docs"):
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
    # one BLAS thread: mutmut forks every mutant's run from a process that has loaded
    # numpy, and a threaded BLAS in a forked child can hang on a lock with no CPU used
    # (mutmut's time limit counts CPU seconds, so it never ends such a run)
    env = dict(os.environ, HYPOTHESIS_PROFILE="ci", PYTHONDONTWRITEBYTECODE="1",
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
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
            result = ModuleResult(module, target.tests, label=target.label(module),
                                  target=target.name, partial=bool(target.functions))
            for name, code in sorted(meta["exit_code_by_key"].items(), key=_natural):
                if not target.selects(name):
                    continue
                diff = get_diff_for_mutant(name, path=module)
                pair = read_functions_from_index(name, module)
                if pair is None:
                    raise RuntimeError(f"mutmut left no line index for {module}")
                original, mutated = (cst.Module([f]).code for f in pair)
                string_only, wording = classify(original, mutated)
                result.mutants.append(Mutant(name, module, statuses[code], diff, string_only,
                                             wording, survivor_key(name, diff),
                                             string_only and sql_case_only(original, mutated)))
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
    if target.functions:
        return _run_functions(target, work, keep)
    if _mutmut(work, []) != 0:
        raise SystemExit(f"mutmut failed for {target.name}; see {work / 'mutmut.log'}")
    results = _read(target, work)
    if keep:
        # mutmut keeps the verdicts of unchanged functions even when the tests changed:
        # rerun every mutant that was not killed, by name
        again = [m.name for r in results for m in r.mutants if not m.killed]
        if again:
            _mutmut_or_exit(target, work, again)
            results = _read(target, work)
    return results


def _run_functions(target: Target, work: Path, keep: bool) -> list[ModuleResult]:
    """A target with ``functions``: mutmut is always given names (with none it would run every
    mutant of the module). Named mutants are rerun even when mutmut has a verdict, so with
    ``keep`` only those not killed last time are named, then any it has not checked yet (new
    mutants of a changed function)."""
    names = list(target.functions)
    if keep and all((work / "mutants" / f"{m}.meta").exists() for m in target.modules):
        names = [m.name for r in _read(target, work) for m in r.mutants if not m.killed] or names
    _mutmut_or_exit(target, work, names)
    results = _read(target, work)
    unchecked = [m.name for r in results for m in r.mutants if m.status == "not checked"]
    if unchecked:
        _mutmut_or_exit(target, work, unchecked)
        results = _read(target, work)
    return results


def _mutmut_or_exit(target: Target, work: Path, names: list[str]) -> None:
    if _mutmut(work, names) != 0:
        raise SystemExit(f"mutmut failed for {target.name}; see {work / 'mutmut.log'}")


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
    if m.sql_case:
        return "letter case of SQL keywords and names (SQLite reads them in any case)"
    return None


def _row(r: ModuleResult, justified, today: str) -> list[str]:
    survivors = [m for m in r.mutants if not m.killed]
    unexplained = [m for m in survivors if _explanation(m, justified) is None]
    rest = r.non_string
    return [
        r.label or f"`{r.module.removeprefix('src/')}`", str(len(r.mutants)),
        str(len(r.mutants) - len(rest)),
        f"{sum(m.killed for m in rest)}/{len(rest)}",
        str(r.count(lambda m: m.status == "timeout")),
        str(len(survivors) - len(unexplained)), str(len(unexplained)),
        f"{100 * r.score:.0f}%", today,
    ]


HEADER = ["module", "mutants", "string-only", "non-string killed", "timeouts",
          "survivors explained", "unexplained", "score", "date"]


def _doc_text(doc: Path) -> str:
    text = doc.read_text() if doc.exists() else f"# Testing\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    return text


def merged_rows(results: list[ModuleResult], justified, doc: Path = DOC) -> dict[str, list[str]]:
    """The table's rows after this run: those of ``doc`` with this run's replacing theirs."""
    today = dt.date.today().isoformat()
    block = _doc_text(doc).partition(BEGIN)[2].partition(END)[0]
    rows: dict[str, list[str]] = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == len(HEADER):
            rows[cells[0]] = cells
    for r in results:
        row = _row(r, justified, today)
        rows[row[0]] = row
    return rows


def module_scores(results: list[ModuleResult], rows: dict[str, list[str]]
                  ) -> dict[str, tuple[int, int, int, list[str]]]:
    """Per module this run touched: (non-string killed, non-string mutants, unexplained
    survivors, targets with no row yet), summed over every target that mutates part of it
    (their rows in ``rows``: this run's, or the table's from their last run). The gate is
    the module's, as issue 24 sets it; a split module's targets are rows of one sum."""
    out: dict[str, tuple[int, int, int, list[str]]] = {}
    for module in dict.fromkeys(r.module for r in results):
        killed = total = unexplained = 0
        missing = []
        for target in TARGETS:
            if module not in target.modules:
                continue
            row = rows.get(target.label(module))
            if row is None:
                missing.append(target.name)
                continue
            k, n = (int(x) for x in row[3].split("/"))
            killed, total, unexplained = killed + k, total + n, unexplained + int(row[6])
        out[module] = (killed, total, unexplained, missing)
    return out


def write_summary(results: list[ModuleResult], justified, doc: Path = DOC) -> str:
    today = dt.date.today().isoformat()
    text = _doc_text(doc)
    head, _, rest = text.partition(BEGIN)
    tail = rest.partition(END)[2]
    rows = merged_rows(results, justified, doc)
    order = [t.label(m) for t in TARGETS for m in t.modules]
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
        out += [f"## {r.module}" + (f" ({r.target})" if r.partial else ""), "",
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


def stale_justifications(results: list[ModuleResult], justified) -> list[str]:
    """Justifications that match no mutant of the modules this run covered. An entry with a
    ``target`` (a module shared by several targets) is checked only when that target ran."""
    seen = {m.key for r in results for m in r.mutants}
    whole = {r.module for r in results if not r.partial}
    targets = {r.target for r in results}
    return [k for k, e in justified.items() if k not in seen and (
        e.get("target") in targets if e.get("target") else e.get("module") in whole)]


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
    for r in results:
        survivors = [m for m in r.mutants if not m.killed]
        unexplained = [m for m in survivors if _explanation(m, justified) is None]
        print(f"{r.label or r.module}: {len(r.mutants)} mutants, non-string killed "
              f"{sum(m.killed for m in r.non_string)}/{len(r.non_string)} "
              f"({100 * r.score:.1f}%), {len(survivors)} survivors, "
              f"{len(unexplained)} unexplained")
        for m in unexplained:
            print(f"  unexplained {m.name} [{m.key}]\n" + re.sub(r"(?m)^", "    ", m.diff))
    failed = []
    rows = merged_rows(results, justified)
    for module, (killed, total, unexplained_n, missing) in module_scores(results, rows).items():
        score = killed / total if total else 1.0
        print(f"{module}: module gate {killed}/{total} ({100 * score:.1f}%), "
              f"{unexplained_n} unexplained" + (f", no run yet of {missing}" if missing else ""))
        if score < THRESHOLD or unexplained_n or missing:
            failed.append(module)
    stale = stale_justifications(results, justified)
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
