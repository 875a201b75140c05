"""Progress bars (issue 22): tqdm's notebook widget in a Jupyter kernel with ipywidgets, a
text bar elsewhere, and never ``TqdmWarning: IProgress not found``.

The kernel and ipywidgets are faked in a fresh interpreter (``sys.modules`` entries), so
that tqdm, persona and implicit are imported the way a notebook imports them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]

_KERNEL = textwrap.dedent("""
    import json, sys, types, warnings

    # a Jupyter kernel, as tqdm.autonotebook detects one
    shell = type("ZMQInteractiveShell", (), {})()
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell
    sys.modules["IPython"] = ipython
    sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")
    if WIDGETS:
        widgets = types.ModuleType("ipywidgets")
        widgets.FloatProgress = widgets.HBox = widgets.HTML = type("Widget", (), {})
        sys.modules["ipywidgets"] = widgets
    else:
        sys.modules["ipywidgets"] = None  # not installed: importing it raises ImportError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import persona
        persona.ALS, persona.evaluate  # what a notebook's first cells import
        import implicit.cpu.als, implicit.nearest_neighbours  # implicit's own bars
    from tqdm.notebook import tqdm_notebook
    got = {
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught
                     if "tqdm" in w.category.__name__.lower() or "IProgress" in str(w.message)],
        "implicit_widget": issubclass(implicit.cpu.als.tqdm, tqdm_notebook),
    }
    from persona._progress import bar_class, show_progress
    got.update(widget=issubclass(bar_class(), tqdm_notebook), default=show_progress(None),
               asked=show_progress(True), declined=show_progress(False))
    print(json.dumps(got))
""")


def _in_kernel(widgets: bool) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("QT_API", None)
    out = subprocess.run(
        [sys.executable, "-c", f"WIDGETS = {widgets}\n" + _KERNEL],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_notebook_without_ipywidgets_gets_a_quiet_text_bar() -> None:
    got = _in_kernel(widgets=False)
    assert got["warnings"] == []  # no "IProgress not found"
    assert got["widget"] is False and got["implicit_widget"] is False
    # by default no bar: a text bar's carriage returns would fill the notebook's output
    assert got["default"] is False
    assert got["asked"] is True and got["declined"] is False


def test_notebook_with_ipywidgets_gets_the_widget_bar() -> None:
    got = _in_kernel(widgets=True)
    assert got["warnings"] == []
    assert got["widget"] is True and got["implicit_widget"] is True
    assert got["default"] is True  # someone is watching the notebook
    assert got["asked"] is True and got["declined"] is False


def test_terminal_bar_is_tqdm_text_bar(capsys: pytest.CaptureFixture[str]) -> None:
    from tqdm.notebook import tqdm_notebook
    from tqdm.std import tqdm as text_bar

    from persona._progress import bar_class, progress_bar

    assert issubclass(bar_class(), text_bar) and not issubclass(bar_class(), tqdm_notebook)
    with progress_bar(total=3, desc="work", show=True) as bar:
        bar.update(3)
    assert "work: 100%" in capsys.readouterr().err
    with progress_bar(total=3, desc="quiet", show=False) as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""


def test_models_and_evaluate_draw_through_it(capsys: pytest.CaptureFixture[str]) -> None:
    import persona
    from persona.data import Interactions

    rng = np.random.default_rng(0)
    m = sp.csr_matrix((rng.random((20, 15)) < 0.3).astype(float))
    X = Interactions.from_csr(m, users=[f"u{i}" for i in range(20)],
                              items=[f"i{j}" for j in range(15)])
    als = persona.ALS(factors=4, iterations=2, random_state=0, show_progress=True).fit(X)
    persona.evaluate(als, X, X, k=3, show_progress=True)
    err = capsys.readouterr().err
    assert "ALS: 100%" in err and "evaluate: 100%" in err
    persona.ALS(factors=4, iterations=2, random_state=0).fit(X)  # None: stderr is no terminal
    assert capsys.readouterr().err == ""

