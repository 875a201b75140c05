"""Write (or check) the snapshot of every public subpackage's ``__all__``.

    python tools/public_api.py          # print the differences from tests/snapshots/public_api.json
    python tools/public_api.py --write  # write the snapshot (review the diff before committing)

It also keeps ``tests/snapshots/private_in_tests.json``: the private modules and names each
test file imports (unit tests of internals with no public equivalent: kernels, samplers,
the file format). ``tests/test_public_api_snapshot.py`` fails when a test imports a private
name that list does not hold, and when the list holds one no test imports any more.

``tests/test_public_api_snapshot.py`` fails when a subpackage's ``__all__`` differs from the
snapshot: a public name added, removed or renamed is then a visible, reviewed change.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "tests" / "snapshots" / "public_api.json"
PRIVATE = ROOT / "tests" / "snapshots" / "private_in_tests.json"


def modules() -> list[str]:
    pkg = ROOT / "src" / "persona"
    subs = sorted(p.name for p in pkg.iterdir()
                  if (p / "__init__.py").is_file() and not p.name.startswith("_"))
    # and the public submodules of a subpackage (no underscore, not a package)
    extra = sorted(f"persona.{s}.{m.stem}" for s in subs for m in (pkg / s).glob("*.py")
                   if not m.stem.startswith("_"))
    return ["persona", *(f"persona.{s}" for s in subs), *extra, "persona.errors"]


def current() -> dict[str, list[str]]:
    out = {}
    for name in modules():
        module = importlib.import_module(name)
        out[name] = sorted(getattr(module, "__all__", []))
    return out


def private_in_tests() -> dict[str, list[str]]:
    """``{test file: [private module or module:name it imports]}`` for every test file
    that imports anything private of persona."""
    out: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").glob("*.py")):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names
                             if a.name.startswith("persona") and _private(a.name))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("persona"):
                module = node.module or ""
                if _private(module):
                    found.add(module)
                found.update(f"{module}.{a.name}" for a in node.names
                             if a.name.startswith("_"))
        if found:
            out[path.name] = sorted(found)
    return out


def _private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split(".")[1:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    now = current()
    if args.write:
        SNAPSHOT.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        PRIVATE.write_text(json.dumps(private_in_tests(), indent=1, sort_keys=True) + "\n",
                           encoding="utf-8")
        print(f"wrote {SNAPSHOT.relative_to(ROOT)} and {PRIVATE.relative_to(ROOT)}")
        return 0
    old = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    changed = 0
    for name in sorted(set(old) | set(now)):
        a, b = set(old.get(name, [])), set(now.get(name, []))
        for x in sorted(b - a):
            print(f"+ {name}.{x}")
        for x in sorted(a - b):
            print(f"- {name}.{x}")
        changed += len(a ^ b)
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
