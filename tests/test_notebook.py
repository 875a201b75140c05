"""The quickstart notebook is committed executed (issue 22), and runs top to bottom on the
current code with the same cells and the same kinds of output (issue 7).

``make notebook`` (``tools/execute_notebook.py``) re-runs it in place.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "notebooks" / "quickstart.ipynb"

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location("persona_execute_notebook",
                                                  ROOT / "tools" / "execute_notebook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tool = _tool()


@pytest.fixture(scope="module")
def committed() -> Any:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    return nb


def _outputs(nb: Any) -> list[Any]:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]


def _shows_what_it_teaches(nb: Any) -> None:
    outputs = _outputs(nb)
    html = [o["data"]["text/html"] for o in outputs
            if o.output_type in ("execute_result", "display_data") and "text/html" in o.data]
    explanations = [h for h in html if "persona-explanation" in h]  # Explanation._repr_html_
    assert len(explanations) == 2
    assert "<th>When</th>" not in explanations[0]  # the served one: models keep no times
    assert "<th>When</th>" in explanations[1] and " 2011</td>" in explanations[1]
    assert any('class="dataframe"' in h for h in html)  # the evaluation table
    png = [o.data["image/png"] for o in outputs
           if o.output_type == "display_data" and "image/png" in o.data]
    assert len(png) == 1 and base64.b64decode(png[0]).startswith(b"\x89PNG")


def test_committed_notebook_is_executed(committed: Any) -> None:
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert code and all(c.outputs for c in code)  # every code cell shows something
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert tool.problems(committed) == []  # no error, nothing on stderr, no machine path
    _shows_what_it_teaches(committed)


def test_committed_notebook_is_normalised(committed: Any) -> None:
    """Written by tools/execute_notebook.py: no timings, Python version or widget state."""
    assert tool.normalise(copy.deepcopy(committed)) == committed
    assert "version" not in committed.metadata.get("language_info", {})
    assert all("execution" not in c.metadata for c in committed.cells)


def test_problems_and_structure_see_what_they_must(committed: Any) -> None:
    nb = copy.deepcopy(committed)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.outputs.append(nbformat.v4.new_output(
        "stream", name="stderr", text="TqdmWarning: IProgress not found\n"))
    cell.outputs.append(nbformat.v4.new_output(
        "error", ename="ValueError", evalue="boom", traceback=[f"File {ROOT}/src/x.py"]))
    found = tool.problems(nb)
    assert any("stderr" in p and "IProgress" in p for p in found)
    assert any("raised ValueError: boom" in p for p in found)
    assert any(str(ROOT) in p for p in found)
    assert tool.structure(nb) != tool.structure(committed)
    # the numbers in an output are not part of the structure
    same = copy.deepcopy(committed)
    stream = next(o for o in _outputs(same) if o.output_type == "stream")
    stream.text = stream.text.replace("0", "1")
    assert tool.structure(same) == tool.structure(committed)


@pytest.mark.slow
def test_notebook_reruns_on_current_code_with_the_same_structure(committed: Any) -> None:
    executed = tool.execute(committed, timeout=300)
    assert tool.problems(executed) == []
    assert tool.structure(executed) == tool.structure(committed)
    _shows_what_it_teaches(executed)


def test_docs_site_page_shows_the_outputs(committed: Any) -> None:
    """docs/hooks.py turns the executed notebook into the site's page, outputs included."""
    pytest.importorskip("nbconvert")
    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location("persona_docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    page, images = hooks.notebook_page(NOTEBOOK)
    assert page.startswith("# persona quickstart") and "(quickstart.ipynb)" in page.split("\n")[3]
    assert page.count('<div class="persona-explanation">') == 2
    assert '<table border="1" class="dataframe">' in page
    assert "````{.text .nb-output}\nIngestReport(" in page
    assert list(images) == ["quickstart_files/quickstart_14_0.png"]
    assert f"![png]({next(iter(images))})" in page
    assert images["quickstart_files/quickstart_14_0.png"].startswith(b"\x89PNG")
    assert not (ROOT / "docs" / "notebooks" / "quickstart.md").exists()  # made, not kept
