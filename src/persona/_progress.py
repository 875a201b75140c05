"""Progress bars: tqdm's notebook widget where it can be drawn, its text bar elsewhere.

tqdm decides once, when ``tqdm.auto`` is first imported, whether it runs in a Jupyter
kernel with ipywidgets (the widget bar) or not (the text bar). In a kernel without
ipywidgets that import warns ``TqdmWarning: IProgress not found``, and implicit imports
``tqdm.auto`` too. This module imports it first, with that warning silenced (the text bar
is a fine answer, not a problem to report), so that neither persona nor implicit warns and
both draw the same kind of bar.

``show_progress=None`` (the models' default) draws a bar when someone is watching: on an
interactive terminal, or in a notebook that can draw the widget. A notebook without
ipywidgets gets no bar unless asked (``show_progress=True``: the text bar), since a text
bar's redraws would fill the cell's output.
"""

from __future__ import annotations

import sys
import warnings

from tqdm.std import TqdmWarning
from tqdm.std import tqdm as text_bar

from persona.errors import ValidationError

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
    from tqdm.auto import tqdm as _auto_bar

__all__ = ["bar_class", "check_show_progress", "progress_bar", "show_progress"]


def bar_class() -> type[text_bar]:
    """tqdm's choice for this process: its notebook bar in a Jupyter kernel with
    ipywidgets, else its text bar (the class implicit's own bars use too)."""
    return _auto_bar  # type: ignore[no-any-return]


def _widgets() -> bool:
    # tqdm.notebook is imported only where tqdm chose it (importing it costs IPython)
    notebook = sys.modules.get("tqdm.notebook")
    return notebook is not None and issubclass(_auto_bar, notebook.tqdm_notebook)


def show_progress(flag: bool | None) -> bool:
    """Whether to draw a bar: ``flag`` as given, or for ``None`` whether someone is
    watching (an interactive terminal, or a notebook that draws the widget bar)."""
    check_show_progress(flag)
    if flag is None:
        return _widgets() or bool(getattr(sys.stderr, "isatty", lambda: False)())
    return flag


def check_show_progress(flag: object) -> None:
    """Refuse a ``show_progress`` other than True, False or None."""
    if flag is not None and not isinstance(flag, bool):
        raise ValidationError(
            f"show_progress must be True, False or None (a bar when someone is watching), "
            f"not {flag!r}",
            errors=[{"row": None, "field": "show_progress", "message": "not a bool"}])


def progress_bar(total: int, desc: str, show: bool | None) -> text_bar:
    """A bar of ``total`` steps named ``desc`` (drawn when :func:`show_progress` says so);
    use it as a context manager and call ``update``."""
    return bar_class()(total=total, desc=desc, disable=not show_progress(show))
