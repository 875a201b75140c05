"""Every subpackage is an attribute of ``persona`` in a fresh interpreter (issue 22), and
``import persona`` stays cheap: it imports none of them until they are used."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = sorted(
    p.name for p in (ROOT / "src" / "persona").iterdir()
    if (p / "__init__.py").is_file() and not p.name.startswith("_")
)


def _fresh(code: str) -> str:
    """Run ``code`` in a new interpreter on this checkout's sources; its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_subpackages_are_the_ones_of_the_design() -> None:
    assert {"data", "datasets", "evaluate", "explain", "models", "personalizer", "privacy",
            "reports", "schema", "store", "testing"} <= set(SUBPACKAGES)


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_subpackage_is_an_attribute_in_a_fresh_interpreter(name: str) -> None:
    out = _fresh(f"""
        import importlib, persona
        value = persona.{name}
        module = importlib.import_module("persona.{name}")
        # persona.evaluate is the function of that name (the package's main entry point)
        print(value is module or value is getattr(module, "{name}", None))
    """)
    assert out.strip() == "True"


def test_issue_22_example_models_load() -> None:
    out = _fresh("""
        import persona
        print(persona.models.load.__module__, persona.data.Interactions.__name__,
              persona.privacy.DP.__name__, callable(persona.datasets.load_demo_shop),
              persona.store.Store.__name__, persona.personalizer.Personalizer.__name__,
              persona.testing.ModelConformance.__name__)
    """)
    assert out.split() == ["persona.models", "Interactions", "DP", "True", "Store",
                           "Personalizer", "ModelConformance"]


def test_dir_lists_every_subpackage() -> None:
    out = _fresh("import persona; print(' '.join(dir(persona)))")
    assert set(SUBPACKAGES) <= set(out.split())


def test_import_persona_stays_cheap() -> None:
    out = _fresh("""
        import sys, persona
        dir(persona)
        print(' '.join(sorted(m for m in sys.modules
                              if m.startswith('persona.') or m in ('numpy', 'scipy', 'sklearn'))))
    """)
    assert out.split() == ["persona.errors"]


def test_star_import_needs_no_test_extras() -> None:
    """``from persona import *`` imports the core subpackages, never persona.testing (which
    needs pytest and hypothesis)."""
    out = _fresh("""
        import sys
        from persona import *
        print('persona.testing' in sys.modules, 'pytest' in sys.modules, models.__name__)
    """)
    assert out.split() == ["False", "False", "persona.models"]


def test_persona_testing_without_pytest_says_what_to_install() -> None:
    """Without the test extras, persona.testing is a MissingDependencyError naming them
    (it was a ModuleNotFoundError), in a fresh interpreter where pytest cannot be found."""
    code = (
        "import sys\n"
        "sys.modules['pytest'] = None  # as if it were not installed: import fails\n"
        "import persona\n"
        "from persona.errors import MissingDependencyError\n"
        "try:\n"
        "    persona.testing\n"
        "except MissingDependencyError as exc:\n"
        "    print('refused', exc.code, 'persona[test]' in str(exc))\n"
    )
    assert _fresh(code).strip() == "refused missing_dependency True"
