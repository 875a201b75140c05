"""benchmarks/RESULTS.md holds only what the benchmark scripts write (issue 19): every
section is one script's ``write_section``, once, and every sub-heading in it is one that
script writes. Notes about runs are written by hand in docs/benchmarks.md instead."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))
_WRITE = re.compile(r"""write_section\(\s*f?["']([^"']+)["']""")


def _sections() -> list[tuple[str, str]]:
    text = RESULTS.read_text()
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def _writers() -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for script in SCRIPTS:
        for title in _WRITE.findall(script.read_text()):
            out.setdefault(title, []).append(script)
    return out


def test_every_section_is_written_by_one_script_once() -> None:
    titles = [title for title, _ in _sections()]
    assert titles, "RESULTS.md has no section"
    assert len(titles) == len(set(titles)), f"a section appears twice: {titles}"
    writers = _writers()
    for title in titles:
        assert len(writers.get(title, [])) == 1, (
            f"section {title!r} is not written by exactly one script in benchmarks/ "
            f"(found {writers.get(title, [])}): a stale or hand-written section"
        )


def test_sub_headings_are_the_scripts_own() -> None:
    writers = _writers()
    for title, body in _sections():
        source = writers[title][0].read_text()
        for heading in re.findall(r"^### (.+)$", body, flags=re.M):
            # the heading's words before any number the script fills in
            fixed = re.split(r"[0-9{]", heading, maxsplit=1)[0].strip()
            assert fixed and f"### {fixed}" in source, (
                f"sub-heading {heading!r} of {title!r} is not written by "
                f"{writers[title][0].name}: notes about runs belong in docs/benchmarks.md"
            )


def test_the_docs_page_includes_the_results() -> None:
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    assert '--8<-- "benchmarks/RESULTS.md"' in page
