"""Run every benchmark in this folder, one after the other (``make bench``).

Each script runs persona beside its baseline in one process and updates its own section of
``benchmarks/RESULTS.md``. Pass script names to run only some: ``python run_all.py store``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = ["store", "models", "privacy", "dp_fit", "explain", "personalizer", "scaling",
           "fold_in", "serving"]


def main(argv: list[str]) -> int:
    chosen = argv or SCRIPTS
    unknown = [name for name in chosen if name not in SCRIPTS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {SCRIPTS}", file=sys.stderr)
        return 2
    for name in chosen:
        script = HERE / f"bench_{name}.py"
        print(f"== {script.name}", flush=True)
        result = subprocess.run([sys.executable, str(script)], check=False)
        if result.returncode != 0:
            print(f"{script.name} failed with exit code {result.returncode}", file=sys.stderr)
            return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
