"""The quickstart notebook runs top to bottom on the current code (issue 7)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "notebooks" / "quickstart.ipynb"

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def _kernel_manager(tmp_path: Path) -> Any:
    """A kernel manager whose ``python3`` kernel is this interpreter (the venv's python),
    whatever kernelspecs the machine has installed."""
    from ipykernel.kernelspec import install
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    install(prefix=str(tmp_path / "jupyter"), kernel_name="python3")
    kernels = tmp_path / "jupyter" / "share" / "jupyter" / "kernels"
    ksm = KernelSpecManager(kernel_dirs=[str(kernels)])
    spec = ksm.get_kernel_spec("python3")
    assert spec.argv[0] == sys.executable
    return KernelManager(kernel_name="python3", kernel_spec_manager=ksm)


def test_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=180, kernel_name="python3", km=_kernel_manager(tmp_path),
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(cleanup_kc=True)  # shut the kernel down and close its sockets

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for o in outputs
            if o.output_type == "execute_result" and "text/html" in o.get("data", {})]
    assert any("persona-explanation" in h for h in html)  # the Explanation._repr_html_
    assert any("image/png" in o.get("data", {}) for o in outputs if o.output_type == "display_data")
