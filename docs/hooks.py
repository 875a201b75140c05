"""mkdocs hook: files the site needs that are not written in the docs folder.

- The benchmark plots that benchmarks/RESULTS.md links to: docs/benchmarks.md includes
  RESULTS.md as a snippet; the plots live in benchmarks/, so they are added here (not copied
  in git).
- The notebooks as pages: docs/notebooks/NAME.ipynb, committed executed
  (``make notebook``), becomes the page notebooks/NAME.md with its outputs, converted by
  nbconvert at build time (code, text, the HTML of tables and explanations, the plots as
  PNG files beside it), so the site shows the notebook as run, not a copy kept by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
EXTRA = {name: ROOT / "benchmarks" / name for name in ("privacy_utility.png", "scaling.png")}
NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("*.ipynb"))
NOTE = (
    '!!! info ""\n'
    "    This page is the notebook [`docs/notebooks/{name}`]({name}) (download it to run "
    "it) with the outputs of its last run on the current code (`make notebook`).\n\n"
)
# outputs as fenced blocks of class nb-output (docs/stylesheets/notebook.css wraps their
# long lines and sets them apart from the code); four backticks, as outputs may hold three
TEMPLATE = """{%- extends 'markdown/index.md.j2' -%}
{% block stream %}
````{.text .nb-output}
{{ output.text.rstrip() }}
````
{% endblock stream %}
{% block data_text scoped %}
````{.text .nb-output}
{{ output.data['text/plain'].rstrip() }}
````
{% endblock data_text %}
"""


def notebook_page(source: Path) -> tuple[str, dict[str, bytes]]:
    """The markdown of the executed notebook ``source`` and its images (by path relative
    to the page)."""
    from jinja2 import DictLoader
    from nbconvert import MarkdownExporter

    stem = source.stem
    exporter = MarkdownExporter(extra_loaders=[DictLoader({"persona.md.j2": TEMPLATE})],
                                template_file="persona.md.j2")
    body, resources = exporter.from_filename(
        str(source), resources={"output_files_dir": f"{stem}_files", "unique_key": stem}
    )
    title, _, rest = body.partition("\n")  # the note goes under the notebook's title
    if not title.startswith("# "):
        raise ValueError(f"{source}: the first cell must open with a '# title' line")
    page = f"{title}\n\n{NOTE.format(name=source.name)}{rest}"
    return page, dict(resources.get("outputs", {}))


def on_files(files: Any, config: Any) -> Any:
    for name, source in EXTRA.items():
        if source.exists():
            files.append(File.generated(config, name, abs_src_path=str(source)))
    for source in NOTEBOOKS:
        folder = source.parent.relative_to(Path(config["docs_dir"]).resolve()).as_posix()
        page, images = notebook_page(source)
        uri = f"{folder}/{source.stem}.md"
        if files.get_file_from_path(uri) is not None:
            raise ValueError(f"docs/{uri} is made from {source.name}: delete it")
        files.append(File.generated(config, uri, content=page))
        for path, data in images.items():
            files.append(File.generated(config, f"{folder}/{path}", content=data))
    return files
