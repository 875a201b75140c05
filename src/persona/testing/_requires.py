"""persona.testing's own dependencies, checked before anything imports them: without
pytest or hypothesis, importing persona.testing is a MissingDependencyError that names the
extra to install, not a ModuleNotFoundError from deep inside."""

from __future__ import annotations

from persona.errors import MissingDependencyError

try:
    import hypothesis  # noqa: F401
    import pytest  # noqa: F401
except ImportError as exc:
    raise MissingDependencyError(
        f"persona.testing needs {exc.name or 'pytest and hypothesis'}, which is not "
        "installed; install the test extras with pip install 'persona[test]'",
        package=exc.name or "pytest",
    ) from None
