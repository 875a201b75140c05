"""Known-answer data and hypothesis strategies for interaction matrices."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import strategies as st

from persona.data import Interactions

__all__ = ["block_interactions", "interaction_matrices"]


def block_interactions(
    groups: int = 3,
    users_per_group: int = 20,
    items_per_group: int = 8,
    density: float = 0.6,
    random_state: int = 0,
) -> Interactions:
    """People in group ``g`` only interact with items of group ``g`` (a known answer).

    Every person has at least two items, and no person has all items of their group,
    so a good model recommends each person the unseen items of their own group first.

    Examples
    --------
    >>> X = block_interactions(groups=2, users_per_group=3, items_per_group=4)
    >>> X.shape
    (6, 8)
    """
    rng = np.random.default_rng(random_state)
    rows, cols = [], []
    for g in range(groups):
        for u in range(users_per_group):
            row = g * users_per_group + u
            mask = rng.random(items_per_group) < density
            mask[rng.choice(items_per_group, 2, replace=False)] = True
            mask[rng.integers(items_per_group)] = False  # one unseen item at least
            if mask.sum() < 2:
                mask[:] = False
                mask[:2] = True
            for j in np.flatnonzero(mask):
                rows.append(row)
                cols.append(g * items_per_group + j)
    n_users, n_items = groups * users_per_group, groups * items_per_group
    values = rng.integers(1, 4, len(rows)).astype(np.float64)
    m = sp.csr_matrix((values, (rows, cols)), shape=(n_users, n_items))
    return Interactions.from_csr(
        m, [f"u{i}" for i in range(n_users)], [f"i{j}" for j in range(n_items)]
    )


@st.composite
def interaction_matrices(
    draw: st.DrawFn,
    max_users: int = 25,
    max_items: int = 20,
    min_users: int = 2,
    min_items: int = 2,
) -> Interactions:
    """A random :class:`Interactions`: every person has at least one item.

    Values are confidences in ``(0, 10]``; ids are ``"u0".."uN"`` and ``"i0".."iM"``.
    """
    n_users = draw(st.integers(min_users, max_users))
    n_items = draw(st.integers(min_items, max_items))
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.floats(0.05, 0.6))
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < density) * rng.uniform(0.1, 10.0, (n_users, n_items))
    for u in np.flatnonzero(~dense.any(axis=1)):
        dense[u, rng.integers(n_items)] = 1.0
    return Interactions.from_csr(
        sp.csr_matrix(dense), [f"u{i}" for i in range(n_users)], [f"i{j}" for j in range(n_items)]
    )
