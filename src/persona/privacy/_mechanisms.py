"""Private algorithms as pure functions on a scipy CSR user×item matrix.

Each returns ``(result, PrivacySpent)``. What is pooled across people (item counts, item
co-occurrences, the item-side statistics of ALS) is released with OpenDP-accounted noise from
persona's exact sampler; what belongs to one person (their own factor vector) is computed
from their own data and never released (the "billboard" / joint-DP setting of McSherry &
Mironov 2009 and Chien et al. 2021).

Unit of privacy: one person, i.e. one row and all of its entries (add/remove neighbours).

What a release spends is fixed before any data is read: each mechanism calibrates its noise
by calling the matching ``plan_*`` function (:mod:`persona.privacy._plans`) on public inputs
(the settings and the number of items of the matrix, i.e. of the declared catalogue) and
returns that plan as its spend. Nothing raises on the data: the sums over people are exact
for any number of people (:mod:`persona.privacy._exact`), and an empty matrix releases
noise alone. The steps of DP-ALS live in :mod:`persona.privacy._als`; the noise is added
here (``_add_noise``, ``gaussian_on_grid``, ``laplace_on_grid``), where the audits reach it.
"""

from __future__ import annotations

import math
import numbers
import time
from fractions import Fraction

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from persona.errors import ValidationError
from persona.privacy._accountant import DP
from persona.privacy._als import (
    ALSTimings,
    _als_inputs,
    _item_solve,
    _item_statistics,
    _user_vectors,
    solve_user_factors,
)
from persona.privacy._bounding import bound_contributions
from persona.privacy._exact import ExactSum, chunk_people, people_chunks
from persona.privacy._plans import (
    QV,
    als_budget,
    count_mechanism,
    plan_als,
    plan_cooccurrence,
    plan_item_counts,
)
from persona.privacy._sampler import (
    OS_BITS,
    RandomBits,
    discrete_gaussian,
    discrete_laplace,
    gaussian_on_grid,
    laplace_on_grid,
)
from persona.schema import PrivacySpent

__all__ = [
    "ALSTimings",
    "private_als_item_factors",
    "private_cooccurrence",
    "private_item_counts",
    "solve_user_factors",
]


def _n_items(X: object) -> int:
    if not sp.issparse(X):
        raise ValidationError("expected a scipy sparse user×item matrix (CSR)")
    return int(X.shape[1])  # type: ignore[attr-defined]


def _scale_k(spent: PrivacySpent) -> tuple[float, int]:
    return spent.noise["scale"], int(spent.noise["k"])


def _add_noise(
    idx: NDArray[np.int64] | NDArray[np.object_], scale: float, k: int, bits: RandomBits
) -> NDArray[np.float64]:
    """Grid indices plus discrete Gaussian noise of ``scale`` (on the grid ``2^k``)."""
    z = discrete_gaussian(math.ldexp(scale, -k), idx.size, bits=bits)
    return np.ldexp((idx + z).astype(np.float64), k)


def _add_laplace(
    idx: NDArray[np.int64] | NDArray[np.object_], scale: float, k: int, bits: RandomBits
) -> NDArray[np.float64]:
    """Grid indices plus discrete Laplace noise of ``scale`` (on the grid ``2^k``)."""
    z = discrete_laplace(Fraction(scale) / Fraction(2) ** k, idx.size, bits=bits)
    return np.ldexp((idx + z).astype(np.float64), k)


def _release(
    sums: ExactSum, shift: int, scale: float, k: int, bits: RandomBits, *,
    laplace: bool = False,
) -> NDArray[np.float64]:
    """Release exact integer sums on the grid ``2^-shift`` with noise on the grid ``2^k``:
    through :func:`gaussian_on_grid` / :func:`laplace_on_grid` when the sums are exact in
    float64 (always, short of about 2^33 people), else rounded in integers; both round to
    the nearest multiple of ``2^k`` (ties up) and add the same noise from the same bits."""
    x = sums.as_float(shift, k)
    if x is not None:
        return (laplace_on_grid if laplace else gaussian_on_grid)(x, scale, k, bits=bits)
    return (_add_laplace if laplace else _add_noise)(sums.rounded(shift + k), scale, k, bits)


def private_item_counts(
    X: sp.spmatrix | sp.sparray, dp_cfg: DP, *, mechanism: str | None = None,
    signed: bool = False, bits: RandomBits = OS_BITS,
) -> tuple[NDArray[np.float64], PrivacySpent]:
    """Noisy per-item totals of (clipped) interaction values: DP popularity.

    One person changes at most ``max_events_per_person`` items by at most ``max_value``
    each, so the L2 sensitivity is ``max_value · sqrt(max_events)`` (Gaussian, zCDP) and the
    L1 sensitivity ``max_value · max_events`` (Laplace, pure DP, used when ``delta == 0`` or
    ``mechanism="laplace"``). With ``signed=True`` values are clipped to ``[-max_value,
    max_value]`` instead of ``[0, max_value]`` (e.g. each person's difference between two
    indicators); one person still moves each total by at most ``max_value``, so the
    sensitivity and the spend are the same.

    Parameters
    ----------
    X
        User×item sparse matrix.
    dp_cfg
        Privacy settings; ``epsilon``/``delta`` are the total cost of this release.
    mechanism
        ``"gaussian"`` or ``"laplace"``; default Gaussian when ``delta > 0``.
    bits
        Random bytes (OS CSPRNG by default).

    Returns
    -------
    (numpy.ndarray, PrivacySpent)
        Noisy counts (one per item, on OpenDP's grid) and what was spent:
        :func:`~persona.privacy.plan_item_counts` ``(X.shape[1], dp_cfg, mechanism)``.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.random(200, 30, density=0.2, format="csr", random_state=0)
    >>> counts, spent = private_item_counts(X, DP(epsilon=1.0, max_events_per_person=10))
    >>> counts.shape, spent.epsilon <= 1.0, spent.unit_of_privacy
    ((30,), True, 'one person')
    """
    spent = plan_item_counts(_n_items(X), dp_cfg, mechanism)
    if not isinstance(signed, bool):
        raise ValidationError(f"signed must be True or False, not {signed!r}")
    kind = count_mechanism(dp_cfg, mechanism)
    scale, k = _scale_k(spent)
    m, v = dp_cfg.max_events_per_person, dp_cfg.max_value
    B = bound_contributions(X, m, v, signed=signed, bits=bits)
    # truncate values onto 2^-20 (toward zero, so never above max_value in magnitude) as
    # integers: the sums are exact and one person moves them by exactly the sensitivity
    values = np.trunc(np.ldexp(B.data, QV)).astype(np.int64)
    n_items = B.shape[1]

    def part(a: int, b: int) -> NDArray[np.int64]:
        out = np.zeros(n_items, dtype=np.int64)
        lo, hi = B.indptr[a], B.indptr[b]
        np.add.at(out, B.indices[lo:hi], values[lo:hi])
        return out

    totals = ExactSum()
    for a, b in people_chunks(B.shape[0], chunk_people(math.floor(math.ldexp(v, QV)))):
        totals.add(part(a, b))
    return _release(totals, QV, scale, k, bits, laplace=kind == "laplace"), spent


def private_cooccurrence(
    X: sp.spmatrix | sp.sparray, dp_cfg: DP, *, bits: RandomBits = OS_BITS
) -> tuple[NDArray[np.float64], PrivacySpent]:
    """Noisy symmetric item×item co-occurrence counts (McSherry & Mironov 2009).

    Each person keeps at most ``m = max_events_per_person`` distinct items (sampled), so
    they touch at most ``m (m + 1) / 2`` cells of the upper triangle (diagonal included),
    each by 1: L2 sensitivity ``sqrt(m (m + 1) / 2)``. Noise goes on the upper triangle and
    is mirrored, so the matrix stays symmetric. The spend is
    :func:`~persona.privacy.plan_cooccurrence` ``(X.shape[1], dp_cfg)``. The result is
    dense (every cell is noisy), so memory grows with items²: about 0.8 GB at 10,000 items.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.random(300, 12, density=0.3, format="csr", random_state=1)
    >>> C, spent = private_cooccurrence(X, DP(epsilon=2.0, max_events_per_person=4))
    >>> C.shape, bool(np.allclose(C, C.T)), spent.mechanism
    ((12, 12), True, 'dp-cooccurrence')
    """
    spent = plan_cooccurrence(_n_items(X), dp_cfg)
    scale, k = _scale_k(spent)
    B = bound_contributions(X, dp_cfg.max_events_per_person, 1.0, bits=bits)
    B.data[:] = 1.0
    n = B.shape[1]
    iu = np.triu_indices(n)
    C = ExactSum()
    # float64 counts are exact integers below 2^53: one person adds at most 1 per cell
    for a, b in people_chunks(B.shape[0], chunk_people(1, limit=1 << 53)):
        block = B[a:b] if (a, b) != (0, B.shape[0]) else B
        C.add((block.T @ block).toarray()[iu].astype(np.int64))
    noisy_upper = _release(C, 0, scale, k, bits)
    out = np.zeros((n, n))
    out[iu] = noisy_upper
    out = out + np.triu(out, 1).T
    return out, spent


# ---------------------------------------------------------------------------------------------
# DP-ALS


def private_als_item_factors(
    X: sp.spmatrix | sp.sparray, factors: int, iterations: int, regularization: float,
    alpha: float, dp_cfg: DP, random_state: int | None = None, *,
    noise_regularization: float = 1.0, normalize_users: bool = True,
    shrinkage: bool = True, weight_budget: float | None = None, bits: RandomBits = OS_BITS,
    timings: ALSTimings | None = None,
) -> tuple[NDArray[np.float64], PrivacySpent]:
    """Item factors of implicit-feedback ALS trained with differential privacy (DP-ALS,
    Chien et al. 2021, on the implicit objective of Hu, Koren & Volinsky 2008).

    Each iteration recomputes every person's factor vector exactly from their own data and
    the current (already private) item factors, clips it to ``factor_norm`` and truncates it
    onto a fine grid; then releases, with discrete Gaussian noise on OpenDP's grid, the
    item-side sufficient statistics

    * ``G = Σ_u x_u x_uᵀ`` (upper triangle),
    * ``A_j = Σ_u w_uj x_u x_uᵀ`` for every item ``j`` (upper triangles), ``w = alpha · r``,
    * ``b_j = Σ_u (1 + w_uj) x_u`` for every item ``j``,

    and solves ``(G + A_j + λ_j I) y_j = b_j`` on the noisy statistics (negative eigenvalues
    of the noisy matrix are clipped, ``λ_j = regularization + noise_regularization · σ ·
    sqrt(factors)``; both are post-processing). The statistics are summed in exact integer
    arithmetic, so one person moves them by at most the stated L2 sensitivity

    ``Δ = sqrt(B⁴ + m (α v)² B⁴ + m (1 + α v)² B²)``

    with ``B = factor_norm``, ``m = max_events_per_person``, ``v = max_value``; rounding to
    the noise grid is added to Δ as OpenDP does. The ``iterations`` releases compose in zCDP;
    the noise scale is calibrated so the total is the requested (ε, δ): the spend is
    :func:`~persona.privacy.plan_als` ``(X.shape[1], factors, iterations, alpha, dp_cfg,
    weight_budget)``, known before the data is read.

    At ``alpha = 0`` (the default under DP) no ``A_j`` is released, every person's system
    matrix is ``YᵀY + λI`` and every item's the noisy ``G``: each is factorised once per
    iteration and everyone is solved at once. With ``alpha > 0`` people and items are
    solved in batches of bounded memory.

    Parameters
    ----------
    X
        User×item sparse matrix of interaction strengths.
    factors, iterations, regularization, alpha
        ALS hyperparameters (public). ``alpha = 0`` is recommended under DP: with
        ``alpha > 0`` the confidence-weighted ``A_j`` blocks are released too, which more
        than doubles the sensitivity.
    dp_cfg
        Privacy settings: total (ε, δ) and the contribution bounds.
    random_state
        Seed of the data-independent initial item factors (not of the noise, which always
        comes from ``bits``).
    noise_regularization
        Extra ridge per unit of noise scale; post-processing.
    normalize_users
        Scale every person's vector to norm ``factor_norm`` before the item step (it does
        not change that person's ranking, and it uses the whole clip norm as signal).
        Otherwise vectors are only clipped.
    shrinkage
        Shrink each noisy ``b_j`` toward zero by the positive-part James–Stein factor
        ``max(0, 1 - d σ² / ||b_j||²)`` before solving (post-processing): items whose
        statistics are indistinguishable from noise get (near) zero factors instead of
        random ones.
    weight_budget
        Overrides ``dp_cfg.weight_budget``. If set (``s``), each person's item-side
        contributions are weighted by ``min(1, s / sqrt(n_u))`` (``n_u``: their kept items;
        McSherry & Mironov's per-person normalisation): the squared weights sum to at most
        ``s²``, which replaces ``m`` in the sensitivity. Light users count fully, heavy users
        are scaled down instead of sampled. By default every kept event has weight 1.
    bits
        Random bytes for sampling and noise (OS CSPRNG by default).
    timings
        If given, filled with the time spent per stage.

    Returns
    -------
    (numpy.ndarray, PrivacySpent)
        ``items × factors`` item factors and what was spent.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.random(400, 20, density=0.2, format="csr", random_state=2)
    >>> Y, spent = private_als_item_factors(X, factors=4, iterations=3, regularization=0.1,
    ...                                     alpha=1.0, dp_cfg=DP(epsilon=8.0), random_state=0)
    >>> Y.shape, spent.steps, spent.epsilon <= 8.0
    ((20, 4), 3, True)
    """
    return _dp_als(
        X, factors, iterations, regularization, alpha, dp_cfg, random_state,
        noise_regularization=noise_regularization, normalize_users=normalize_users,
        shrinkage=shrinkage, weight_budget=weight_budget, bits=bits, timings=timings,
        shared=alpha == 0,
    )


def _dp_als(
    X: sp.spmatrix | sp.sparray, factors: int, iterations: int, regularization: float,
    alpha: float, dp_cfg: DP, random_state: int | None, *, noise_regularization: float,
    normalize_users: bool, shrinkage: bool, weight_budget: float | None, bits: RandomBits,
    timings: ALSTimings | None, shared: bool,
) -> tuple[NDArray[np.float64], PrivacySpent]:
    """DP-ALS; ``shared`` (only at ``alpha = 0``) factorises the one system matrix of all
    people and the one noisy Gram matrix of all items once per iteration, instead of one
    per person and per item (the general path, same statistics, same noise, same
    post-processing)."""
    tm = timings if timings is not None else ALSTimings()
    t0 = time.perf_counter()
    spent = plan_als(_n_items(X), factors, iterations, alpha, dp_cfg, weight_budget)
    if not all(isinstance(r, numbers.Real) and not isinstance(r, bool) and math.isfinite(r)
               and r >= 0 for r in (regularization, noise_regularization)) \
            or not regularization + noise_regularization > 0:
        raise ValidationError(
            "regularization and noise_regularization must be non-negative and not both 0 "
            "(the item step divides by the clipped noisy eigenvalues plus their ridge)")
    if shared and alpha != 0:
        raise ValidationError("the shared solve needs alpha = 0")
    scale, k = _scale_k(spent)
    tm.accounting += time.perf_counter() - t0

    t0 = time.perf_counter()
    d = int(factors)
    m, v, bn = dp_cfg.max_events_per_person, dp_cfg.max_value, dp_cfg.factor_norm
    R = bound_contributions(X, m, v, bits=bits)
    n_items = R.shape[1]
    person_weight = None
    wb, _ = als_budget(dp_cfg, weight_budget)
    if wb is not None:
        kept = R.getnnz(axis=1)
        person_weight = np.minimum(1.0, wb / np.sqrt(np.maximum(kept, 1)))
    W_int, C_int, W_float = _als_inputs(R, alpha, person_weight)
    aw = alpha * v  # bounds the (truncated) weights, with or without person weights
    with_a = aw > 0  # alpha = 0: every confidence is 1 and the A_j block is not released
    tm.bounding += time.perf_counter() - t0

    rng = np.random.default_rng(random_state)  # data-independent initialisation only
    Y = rng.standard_normal((n_items, d)) / math.sqrt(d)
    ridge = regularization + noise_regularization * scale * math.sqrt(d)
    for _ in range(int(iterations)):
        t0 = time.perf_counter()
        U_int = _user_vectors(W_float, Y, regularization, bn, normalize_users, shared=shared)
        tm.user_step += time.perf_counter() - t0

        t0 = time.perf_counter()
        idx = _item_statistics(W_int, C_int, U_int, k, with_a, alpha_value=aw)
        tm.statistics += time.perf_counter() - t0

        t0 = time.perf_counter()
        noisy = _add_noise(idx, scale, k, bits)
        tm.sampling += time.perf_counter() - t0

        t0 = time.perf_counter()
        Y = _item_solve(noisy, n_items, d, with_a, ridge, scale, shrinkage, shared)
        tm.solves += time.perf_counter() - t0
    return Y, spent
