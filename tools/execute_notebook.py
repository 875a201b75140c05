"""Re-execute the docs notebooks in place, so that the committed copies show their outputs
where they are browsed (GitHub, the documentation site). ``make notebook`` runs it.

    python tools/execute_notebook.py [NOTEBOOK ...]    # default: docs/notebooks/*.ipynb

Each notebook runs top to bottom in a fresh kernel that is this interpreter (whatever
kernelspecs the machine has installed), in an empty temporary folder, with matplotlib's
inline backend (plots saved as PNG) and a fixed ``PYTHONHASHSEED``. The models in the
notebooks take ``random_state``; differential-privacy noise comes from the operating
system's random bits on purpose, so the numbers of private fits change a little from run
to run.

What would change from machine to machine or run to run without meaning anything is left
out of the file (:func:`normalise`): timing metadata, the Python version, widget state and
widget outputs (progress bars drawn where ipywidgets is installed). A notebook is written
only if no cell raised and no output names a folder of this machine; otherwise the tool
exits with status 1 and says which cell, leaving the file as it was.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("*.ipynb"))
WIDGET = "application/vnd.jupyter.widget-view+json"
#: The stable keys of ``metadata.language_info`` (its ``version`` is the machine's Python).
LANGUAGE_INFO = ("name", "codemirror_mode", "file_extension", "mimetype", "nbconvert_exporter",
                 "pygments_lexer")

__all__ = ["execute", "machine_paths", "main", "normalise", "problems", "structure"]


def _kernel_manager(folder: Path) -> Any:
    """A kernel manager whose ``python3`` kernel is this interpreter, talking over local
    sockets in ``folder`` (not TCP)."""
    from ipykernel.kernelspec import install
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    install(prefix=str(folder / "jupyter"), kernel_name="python3")
    kernels = folder / "jupyter" / "share" / "jupyter" / "kernels"
    ksm = KernelSpecManager(kernel_dirs=[str(kernels)])
    return KernelManager(kernel_name="python3", kernel_spec_manager=ksm, transport="ipc",
                         ip=str(folder / "kernel"))


def execute(nb: Any, timeout: int = 600) -> Any:
    """A copy of the notebook ``nb`` (an ``nbformat`` node) run top to bottom, normalised.

    Cells that raise leave an ``error`` output (see :func:`problems`) instead of stopping
    the run, so that every failing cell is reported at once.
    """
    from nbclient import NotebookClient

    nb = copy.deepcopy(nb)
    with tempfile.TemporaryDirectory(prefix="persona-notebook-") as tmp:
        folder = Path(tmp)
        (folder / "work").mkdir()
        env = {**os.environ, "JUPYTER_PLATFORM_DIRS": "1", "PYTHONHASHSEED": "0",
               "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", km=_kernel_manager(folder),
            allow_errors=True, record_timing=False, store_widget_state=False,
            resources={"metadata": {"path": str(folder / "work")}},
        )
        client.execute(cleanup_kc=True, env=env)  # shuts the kernel down, closes sockets
    return normalise(nb)


def normalise(nb: Any) -> Any:
    """``nb`` without what changes between runs and machines for no reason (in place;
    returns it): timing and widget metadata, widget outputs, the Python version."""
    nb.metadata.pop("widgets", None)
    info = nb.metadata.get("language_info")
    if info is not None:
        nb.metadata["language_info"] = {k: info[k] for k in LANGUAGE_INFO if k in info}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET not in o.get("data", {})]
    return nb


def _text(output: Any) -> str:
    if output.output_type == "stream":
        return str(output.text)
    if output.output_type == "error":
        return "\n".join([str(output.ename), str(output.evalue), *output.traceback])
    data = output.get("data", {})
    return "\n".join(str(v) for k, v in data.items() if k.startswith("text/"))


def machine_paths(nb: Any) -> list[str]:
    """The outputs that name a folder of this machine (the checkout, the home folder, the
    temporary folder), as ``"cell N: path"``."""
    folders = {str(ROOT), str(Path.home()), tempfile.gettempdir(), sys.prefix}
    found = []
    for n, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            text = _text(output)
            found += [f"cell {n}: {f}" for f in sorted(folders) if f and f != "/" and f in text]
    return found


def problems(nb: Any) -> list[str]:
    """What keeps an executed notebook from being committed: errors, warnings written to
    stderr, code cells without output, machine paths."""
    out = []
    for n, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if not cell.outputs:
            out.append(f"cell {n} has no output")
        for o in cell.outputs:
            if o.output_type == "error":
                out.append(f"cell {n} raised {o.ename}: {o.evalue}")
            elif o.output_type == "stream" and o.name == "stderr":
                out.append(f"cell {n} wrote to stderr: {str(o.text).strip()[:300]}")
    return out + [f"{p} appears in an output" for p in machine_paths(nb)]


def structure(nb: Any) -> list[tuple[Any, ...]]:
    """What stays the same from run to run: each cell's kind and source and, for code,
    its execution count and the kind of each output (stream name or MIME types), not
    the numbers in them."""
    out: list[tuple[Any, ...]] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            out.append((cell.cell_type, cell.source))
            continue
        kinds = tuple(
            (o.output_type, o.get("name") or tuple(sorted(o.get("data", {}))))
            for o in cell.outputs
        )
        out.append(("code", cell.source, cell.execution_count, kinds))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, default=NOTEBOOKS,
                        help="notebooks to run and rewrite (default: docs/notebooks/*.ipynb)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    import nbformat

    status = 0
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        done = execute(nb, timeout=args.timeout)
        found = problems(done)
        if found:
            status = 1
            print(f"{path}: not written:", *found, sep="\n  ", file=sys.stderr)
            continue
        nbformat.validate(done)
        nbformat.write(done, path)
        print(f"{path}: executed, {sum(c.cell_type == 'code' for c in done.cells)} code cells")
    return status


if __name__ == "__main__":
    sys.exit(main())
