"""persona switches on OpenDP's "contrib" features only while it builds its own measurements:
importing :mod:`persona.privacy` and fitting a private model leave the host application's
OpenDP feature set as it was (issue 19). Each case runs in a fresh interpreter, because the
test suite's own modules enable "contrib" for their OpenDP checks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_FIT = """
    import numpy as np
    import scipy.sparse as sp
    import opendp.prelude as dp
    from opendp.mod import GLOBAL_FEATURES

    {before}
    start = sorted(GLOBAL_FEATURES)
    import persona
    from persona.privacy import DP, private_item_counts, plan_item_counts
    after_import = sorted(GLOBAL_FEATURES)
    X = sp.random(40, 12, density=0.3, format="csr", random_state=0)
    X.data = np.ones_like(X.data)
    plan_item_counts(12, DP(epsilon=1.0, delta=1e-6))
    private_item_counts(X, DP(epsilon=1.0, delta=1e-6))
    private_item_counts(X, DP(epsilon=1.0, delta=0.0))
    model = persona.ALS(factors=4, iterations=2, privacy=DP(epsilon=2.0, delta=1e-6))
    users, items = [str(u) for u in range(40)], [str(i) for i in range(12)]
    model.fit(persona.Interactions.from_csr(X, users, items))
    print(start, after_import, sorted(GLOBAL_FEATURES))
"""


def _run(before: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_FIT.format(before=before))],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1:]


@pytest.mark.parametrize(
    ("before", "features"),
    [("", "[]"), ('dp.enable_features("contrib")', "['contrib']"),
     ('dp.enable_features("honest-but-curious")', "['honest-but-curious']")],
)
def test_private_fit_leaves_opendp_features_as_they_were(before: str, features: str) -> None:
    assert _run(before) == [f"{features} {features} {features}"]


@pytest.mark.parametrize(("name", "home"), [("SeededBits", "persona.privacy.sampler"),
                                        ("ZCDPAccountant", "persona.privacy.accounting"),
                                        ("cap_events", "persona.privacy._bounding")])
def test_names_that_moved_still_import_with_a_deprecation_warning(name: str, home: str) -> None:
    import importlib

    import persona.privacy

    with pytest.warns(DeprecationWarning, match=name):
        value = getattr(persona.privacy, name)
    assert value is getattr(importlib.import_module(home), name)
    assert name not in persona.privacy.__all__
    with pytest.raises(AttributeError, match="NoSuchThing"):
        persona.privacy.NoSuchThing  # noqa: B018
