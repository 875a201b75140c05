"""The house rules of ``../shared/DESIGN.md`` ("Parts and the rule for their arrows"),
checked on the sources (issue 19): each part imports only the parts below it, no import
circle (counting imports inside functions), no private name imported from another part,
and no file over 600 lines.

The parts are ``persona``'s subpackages, ``persona.cli`` with ``persona._cli``, and
``persona.demo``. The top-level modules ``persona.errors`` and ``persona._*`` (times,
columns, frames, progress bars) are the base every part may use; they import no part.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "persona"
MAX_LINES = 600

# What issue 19 still has to fix: each is a strict xfail, so fixing one makes its test fail
# until its mark is removed here (the list only shrinks).
TODO_RULES: set[str] = set()
TODO_LONG: set[str] = set()


def _todo(rule: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(rule in TODO_RULES, reason="issue 19", strict=True)

# DESIGN.md's table: what each part may import directly (and so, through them, below)
ARROWS: dict[str, set[str]] = {
    "schema": set(),
    "store": {"schema"},
    "data": {"schema"},
    "privacy": {"schema"},
    "explain": {"schema"},
    "models": {"data", "privacy", "explain"},
    "personalizer": {"models", "store"},
    "evaluate": {"data", "models"},
    "datasets": {"data"},
    "reports": {"personalizer", "evaluate", "store", "models", "privacy", "explain"},
    "testing": {"personalizer", "evaluate", "store", "models", "privacy", "explain", "data"},
    "demo": {"reports", "personalizer", "evaluate", "store", "models", "datasets"},
    "cli": {"demo", "reports", "personalizer", "evaluate", "store", "models", "datasets",
            "testing"},
    "distributed": {"personalizer", "evaluate", "store", "models"},
}


def _below(part: str) -> set[str]:
    out: set[str] = set()
    todo = list(ARROWS.get(part, ()))
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo.extend(ARROWS.get(p, ()))
    return out


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (a package's name means its __init__)
    names: tuple[str, ...]  # the names taken from it (from-imports)
    line: int
    in_function: bool
    type_only: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _imports(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"

    def walk(node: ast.AST, in_function: bool, type_only: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            f = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            t = type_only
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                yield from (i for c in child.body for i in walk_one(c, f, True))
                yield from (i for c in child.orelse for i in walk_one(c, f, type_only))
                continue
            yield from walk_one(child, f, t)

    def walk_one(child: ast.AST, f: bool, t: bool) -> Iterator[Import]:
        if isinstance(child, ast.Import):
            for a in child.names:
                if a.name.split(".")[0] == "persona":
                    yield Import(module, a.name, (), child.lineno, f, t)
        elif isinstance(child, ast.ImportFrom):
            target = _resolve(module, is_package, child.level, child.module)
            if target.split(".")[0] == "persona":
                names = tuple(a.name for a in child.names)
                # "from persona.store import _shown" imports a module, not a name
                subs = [n for n in names if f"{target}.{n}" in MODULES]
                for n in subs:
                    yield Import(module, f"{target}.{n}", (), child.lineno, f, t)
                rest = tuple(n for n in names if n not in subs)
                if rest or not subs:
                    yield Import(module, target, rest, child.lineno, f, t)
        else:
            yield from walk(child, f or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef),
                            t)

    yield from walk(tree, False, False)


IMPORTS = [i for m, p in MODULES.items() for i in _imports(m, p)]


def _part(module: str) -> str | None:
    """The part a module belongs to; None for the base (``persona``, ``errors``, ``_*``)."""
    bits = module.split(".")
    if len(bits) == 1:
        return None  # persona/__init__: the lazy front door
    top = bits[1]
    if top in ("cli", "_cli"):
        return "cli"
    if top == "demo":
        return "demo"
    if top == "errors" or (top.startswith("_") and len(bits) == 2 and
                           (PACKAGE / f"{top}.py").exists()):
        return None
    return top


def _is_private(module: str) -> bool:
    return any(b.startswith("_") and b != "__init__" for b in module.split(".")[1:])


def test_the_parts_are_known() -> None:
    parts = {_part(m) for m in MODULES} - {None}
    assert parts <= set(ARROWS), parts - set(ARROWS)


@_todo("arrows")
def test_each_part_imports_only_what_is_below_it() -> None:
    wrong = []
    for i in IMPORTS:
        src, dst = _part(i.source), _part(i.target)
        if src is None and i.source != "persona" and dst is not None:
            wrong.append(f"{i.source}:{i.line} (base) imports {i.target}")
        elif src and dst and src != dst and dst not in _below(src):
            wrong.append(f"{i.source}:{i.line} ({src}) imports {i.target} ({dst})")
    assert not wrong, "\n".join(wrong)


@_todo("private_imports")
def test_no_private_name_is_imported_across_parts() -> None:
    wrong = []
    for i in IMPORTS:
        src, dst = _part(i.source), _part(i.target)
        if src is None or dst is None or src == dst:
            continue
        private = [n for n in i.names if n.startswith("_")]
        if _is_private(i.target) or private:
            wrong.append(f"{i.source}:{i.line} imports {i.target} {private or ''}".rstrip())
    assert not wrong, "\n".join(wrong)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


@_todo("circles")
def test_no_import_circle() -> None:
    """Between modules, counting imports inside functions (a circle dodged at run time is
    still a circle); only ``if TYPE_CHECKING:`` imports are left out. A module importing
    its own package's ``__init__`` counts (it should import the sibling module)."""
    edges: dict[str, set[str]] = {}
    for i in IMPORTS:
        if i.type_only or i.source == "persona" or i.target == i.source:
            continue
        # a package's __init__ importing its own submodules is how packages are made
        if i.target in MODULES:
            edges.setdefault(i.source, set()).add(i.target)
    # the package itself (persona/__init__) loads parts lazily; leave it out
    edges.pop("persona", None)
    for v in edges.values():
        v.discard("persona")
    found = _cycles(edges)
    assert not found, "\n".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("module", [
    pytest.param(m, marks=pytest.mark.xfail(reason="issue 19", strict=True))
    if m in TODO_LONG else m for m in sorted(MODULES)
])
def test_no_file_over_600_lines(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{MODULES[module]} has {lines} lines"


def _private_members(path: Path) -> tuple[set[str], list[tuple[str, int]]]:
    """The private attribute names a module defines (``self._x = ...``, ``def _x``, class
    attributes) and the private attributes it reads off other objects (``obj._x`` where
    ``obj`` is not ``self`` or ``cls``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defined: set[str] = set()
    used: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            if isinstance(node.ctx, ast.Store):
                defined.add(node.attr)
            elif not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                used.append((node.attr, node.lineno))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.startswith("_") and node.value.isidentifier():
            defined.add(node.value)  # __slots__ entries
    return defined, used


@_todo("private_members")
def test_no_private_member_is_read_across_parts() -> None:
    """A part reads another part's objects through their public names only: ``obj._x``
    where only another part defines ``_x`` (e.g. the personalizer reading
    ``model._uidx``, explain reading ``view._store``)."""
    defined: dict[str, set[str]] = {}
    uses: list[tuple[str, str, int]] = []
    for m, p in MODULES.items():
        part = _part(m) or "base"
        d, u = _private_members(p)
        defined.setdefault(part, set()).update(d)
        uses.extend((m, name, line) for name, line in u)
    wrong = []
    for m, name, line in uses:
        part = _part(m) or "base"
        if name in defined.get(part, set()):
            continue
        owners = sorted(p for p, names in defined.items() if name in names)
        if owners:
            wrong.append(f"{m}:{line} reads .{name} (defined in {', '.join(owners)})")
    assert not wrong, f"{len(wrong)} reads:\n" + "\n".join(wrong)
