"""Griffe extension for the docs build: give each name of a grouped numpydoc parameter
(``factors, iterations, regularization``) its own entry.

numpydoc allows one description for several parameters; griffe then gives every name in
the group the type and default of the first one, so the API reference would show wrong
defaults (``iterations`` with default 64). Sphinx roles (``:class:`X```) become inline code,
since mkdocstrings does not read them. This rewrites the docstring text seen by the docs
build only; the source is unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension

_HEADER = re.compile(r"^(\s*)(Parameters|Other Parameters)\n\1-{3,}\n", re.M)
_ROLE = re.compile(r":(?:class|meth|func|attr|mod|data|exc|obj):`~?([^`]+)`")
_GROUP = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:, [A-Za-z_][A-Za-z0-9_]*)+$")


def split_groups(text: str) -> str:
    """Rewrite grouped parameter lines of every Parameters section of ``text``."""
    lines = text.split("\n")
    out: list[str] = []
    in_params = False
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped in ("Parameters", "Other Parameters") and i + 1 < len(lines) \
                and set(lines[i + 1].strip()) == {"-"}:
            in_params = True
            out += [line, lines[i + 1]]
            i += 2
            continue
        if in_params and stripped and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}:
            in_params = False  # the next section starts
        indent = len(line) - len(line.lstrip())
        if in_params and indent == 0 and _GROUP.match(stripped):
            body = []
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or lines[j].startswith((" ", "\t"))):
                if not lines[j].strip() and j + 1 < len(lines) and lines[j + 1].strip() \
                        and not lines[j + 1].startswith((" ", "\t")):
                    break
                body.append(lines[j])
                j += 1
            for name in stripped.split(", "):
                out += [name, *body]
            i = j
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


class SplitGroupedParameters(Extension):
    """Apply :func:`split_groups` and plain Sphinx roles to every docstring griffe loads."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        docstring = getattr(obj, "docstring", None)
        if docstring is None:
            return
        text = _ROLE.sub(r"`\1`", docstring.value)
        if "Parameters" in text:
            text = split_groups(text)
        docstring.value = text
