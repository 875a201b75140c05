"""mkdocs hook: publish the benchmark plot that benchmarks/RESULTS.md links to.

docs/benchmarks.md includes benchmarks/RESULTS.md as a snippet; the plot it shows lives in
benchmarks/, outside the docs folder, so it is added to the site here (not copied in git).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
EXTRA = {"privacy_utility.png": ROOT / "benchmarks" / "privacy_utility.png"}


def on_files(files: Any, config: Any) -> Any:
    for name, source in EXTRA.items():
        if source.exists():
            files.append(File.generated(config, name, abs_src_path=str(source)))
    return files
