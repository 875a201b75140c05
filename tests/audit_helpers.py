"""Helpers shared by the privacy audits (mechanisms and models)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import scipy.sparse as sp

from persona.privacy import _mechanisms as mech


def blocks(person_rows: list[list[int]], n_items: int, copies: int) -> sp.csr_matrix:
    """``copies`` disjoint copies (own people, own items) of a small data set: one release
    over them is ``copies`` independent releases of the same mechanism on that data set."""
    rows = np.array([u for u, items in enumerate(person_rows) for _ in items])
    cols = np.array([j for items in person_rows for j in items])
    offset = np.arange(copies)[:, None]
    r = (rows[None, :] + offset * len(person_rows)).ravel()
    c = (cols[None, :] + offset * n_items).ravel()
    return sp.csr_matrix((np.ones(r.size), (r, c)),
                         shape=(copies * len(person_rows), copies * n_items))


@contextmanager
def noise_divided(name: str, factor: float) -> Iterator[None]:
    """Within the block, ``persona.privacy._mechanisms.<name>`` (``gaussian_on_grid``,
    ``laplace_on_grid`` or DP-ALS's ``_add_noise``) adds noise of ``scale / factor``: what a
    sensitivity too small by ``factor`` would do. ``factor = 1`` leaves it alone."""
    with pytest.MonkeyPatch.context() as mp:
        if factor != 1:
            real = getattr(mech, name)
            mp.setattr(mech, name,
                       lambda x, scale, k, bits: real(x, scale / factor, k, bits=bits))
        yield
