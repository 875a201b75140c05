"""Private algorithms as pure functions on a scipy CSR user×item matrix.

Each returns ``(result, PrivacySpent)``. What is pooled across people (item counts, item
co-occurrences, the item-side statistics of ALS) is released with OpenDP-accounted noise from
persona's exact sampler; what belongs to one person (their own factor vector) is computed
from their own data and never released (the "billboard" / joint-DP setting of McSherry &
Mironov 2009 and Chien et al. 2021).

Unit of privacy: one person, i.e. one row and all of its entries (add/remove neighbours).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from persona.errors import ValidationError
from persona.privacy._accountant import (
    DP,
    grid_sensitivity,
    pld_epsilon,
)
from persona.privacy._bounding import bound_contributions, clip_rows
from persona.privacy._sampler import (
    OS_BITS,
    RandomBits,
    discrete_gaussian,
    gaussian_on_grid,
    laplace_on_grid,
)
from persona.schema._privacy import PrivacySpent

__all__ = [
    "ALSTimings",
    "private_als_item_factors",
    "private_cooccurrence",
    "private_item_counts",
    "solve_user_factors",
]


def _bounds(dp_cfg: DP, **extra: float) -> dict[str, float]:
    out: dict[str, float] = {
        "max_events_per_person": float(dp_cfg.max_events_per_person),
        "max_value": float(dp_cfg.max_value),
    }
    out.update(extra)
    return out


def _gaussian_spent(
    mechanism: str, dp_cfg: DP, sensitivity: float, steps: int, size: int,
    bounds: dict[str, float],
) -> tuple[PrivacySpent, float, int]:
    plan = dp_cfg.gaussian_plan(sensitivity=sensitivity, steps=steps, size=size)
    eff = grid_sensitivity(sensitivity, size, plan.k)
    pld = pld_epsilon(plan.scale / eff, steps, plan.delta) if plan.epsilon <= 64 else None
    spent = PrivacySpent(
        mechanism=mechanism, epsilon=plan.epsilon, delta=plan.delta, rho=plan.rho,
        bounds=bounds, steps=steps,
        noise={"scale": plan.scale, "k": float(plan.k), "sensitivity": sensitivity,
               "sensitivity_with_rounding": eff, "size": float(size)},
        accounting="OpenDP make_gaussian map per step, zCDP composition, make_zCDP_to_approxDP",
        epsilon_pld=pld if pld is not None and pld < plan.epsilon else None,
    )
    return spent, plan.scale, plan.k


def private_item_counts(
    X: sp.spmatrix | sp.sparray, dp_cfg: DP, *, mechanism: str | None = None,
    bits: RandomBits = OS_BITS,
) -> tuple[NDArray[np.float64], PrivacySpent]:
    """Noisy per-item totals of (clipped) interaction values: DP popularity.

    One person changes at most ``max_events_per_person`` items by at most ``max_value``
    each, so the L2 sensitivity is ``max_value · sqrt(max_events)`` (Gaussian, zCDP) and the
    L1 sensitivity ``max_value · max_events`` (Laplace, pure DP, used when ``delta == 0`` or
    ``mechanism="laplace"``).

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
        Noisy counts (one per item, on OpenDP's grid) and what was spent.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.random(200, 30, density=0.2, format="csr", random_state=0)
    >>> counts, spent = private_item_counts(X, DP(epsilon=1.0, max_events_per_person=10))
    >>> counts.shape, spent.epsilon <= 1.0, spent.unit_of_privacy
    ((30,), True, 'one person')
    """
    m, v = dp_cfg.max_events_per_person, dp_cfg.max_value
    kind = mechanism or ("gaussian" if dp_cfg.delta > 0 else "laplace")
    B = bound_contributions(X, m, v, bits=bits)
    # truncate values onto 2^-20 (toward zero, so never above max_value): the float sums
    # below are then exact and one person moves them by exactly the stated sensitivity
    B.data = np.floor(np.ldexp(B.data, 20)) / 2.0**20
    if B.shape[0] * v >= 2.0**32:
        raise ValidationError("too many people for exact sums; lower max_value")
    n_items = B.shape[1]
    if kind == "gaussian":
        spent, scale, k = _gaussian_spent(
            "dp-item-counts", dp_cfg, v * math.sqrt(m), 1, n_items, _bounds(dp_cfg))
        totals = np.asarray(B.sum(axis=0)).ravel()
        return gaussian_on_grid(totals, scale, k, bits=bits), spent
    if kind == "laplace":
        sens = v * m
        scale, k, eps = dp_cfg.laplace_scale(sens, size=n_items)
        spent = PrivacySpent(
            mechanism="dp-item-counts", epsilon=eps, delta=0.0, rho=None,
            bounds=_bounds(dp_cfg),
            noise={"scale": scale, "k": float(k), "sensitivity": sens, "size": float(n_items)},
            accounting="OpenDP make_laplace map (pure DP)",
        )
        totals = np.asarray(B.sum(axis=0)).ravel()
        return laplace_on_grid(totals, scale, k, bits=bits), spent
    raise ValidationError(f"mechanism must be 'gaussian' or 'laplace', got {mechanism!r}")


def private_cooccurrence(
    X: sp.spmatrix | sp.sparray, dp_cfg: DP, *, bits: RandomBits = OS_BITS
) -> tuple[NDArray[np.float64], PrivacySpent]:
    """Noisy symmetric item×item co-occurrence counts (McSherry & Mironov 2009).

    Each person keeps at most ``m = max_events_per_person`` distinct items (sampled), so
    they touch at most ``m (m + 1) / 2`` cells of the upper triangle (diagonal included),
    each by 1: L2 sensitivity ``sqrt(m (m + 1) / 2)``. Noise goes on the upper triangle and
    is mirrored, so the matrix stays symmetric. The result is dense (every cell is noisy),
    so memory grows with items²: about 0.8 GB at 10,000 items.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.random(300, 12, density=0.3, format="csr", random_state=1)
    >>> C, spent = private_cooccurrence(X, DP(epsilon=2.0, max_events_per_person=4))
    >>> C.shape, bool(np.allclose(C, C.T)), spent.mechanism
    ((12, 12), True, 'dp-cooccurrence')
    """
    m = dp_cfg.max_events_per_person
    B = bound_contributions(X, m, 1.0, bits=bits)
    B.data[:] = 1.0
    n = B.shape[1]
    iu = np.triu_indices(n)
    size = iu[0].size
    spent, scale, k = _gaussian_spent(
        "dp-cooccurrence", dp_cfg, math.sqrt(m * (m + 1) / 2), 1, size,
        _bounds(dp_cfg, max_value=1.0))
    C = (B.T @ B).toarray()
    noisy_upper = gaussian_on_grid(C[iu], scale, k, bits=bits)
    out = np.zeros((n, n))
    out[iu] = noisy_upper
    out = out + np.triu(out, 1).T
    return out, spent


# ---------------------------------------------------------------------------------------------
# DP-ALS


def solve_user_factors(
    X: sp.spmatrix | sp.sparray, item_factors: NDArray[np.float64], regularization: float,
    alpha: float,
) -> NDArray[np.float64]:
    """Each person's factor vector from their own row and the (public) item factors: the
    implicit-feedback ALS user step (Hu, Koren & Volinsky 2008) with confidence
    ``1 + alpha · x_ui``.

    This is what a served model computes for a person; it reads only that person's data.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> Y = np.eye(3)
    >>> U = solve_user_factors(sp.csr_matrix([[1.0, 0, 0]]), Y, 0.1, 1.0)
    >>> bool(U[0, 0] > U[0, 1])
    True
    """
    csr = sp.csr_matrix(X, dtype=np.float64)
    Y = np.asarray(item_factors, dtype=np.float64)
    f = Y.shape[1]
    W = csr.copy()
    W.data = alpha * W.data  # confidence - 1
    C = csr.copy()
    C.data = 1.0 + alpha * C.data
    YtY = Y.T @ Y
    YY = np.einsum("if,ig->ifg", Y, Y).reshape(Y.shape[0], f * f)
    A = (W @ YY).reshape(-1, f, f) + YtY + regularization * np.eye(f)
    b = C @ Y
    return np.linalg.solve(A, b[:, :, None])[:, :, 0]


@dataclass
class ALSTimings:
    """Where a DP-ALS fit spends its time (seconds)."""

    bounding: float = 0.0
    user_step: float = 0.0
    statistics: float = 0.0
    sampling: float = 0.0
    solves: float = 0.0
    accounting: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return (self.bounding + self.user_step + self.statistics + self.sampling
                + self.solves + self.accounting)


_QX = 15  # user factors are truncated toward zero onto the grid 2^-15
_QW = 8  # confidence weights are truncated toward zero onto the grid 2^-8


def _round_shift(S: NDArray[np.int64], e: int) -> NDArray[np.int64]:
    """Nearest multiple index of 2^e for integers S (ties up), exactly."""
    if e <= 0:
        return S << (-e)
    return (S + (1 << (e - 1))) >> e


def _als_inputs(
    R: sp.csr_matrix, alpha: float, person_weight: NDArray[np.float64] | None = None
) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Integer item-step weights ``p_u · alpha · r`` and confidences ``p_u · (1 + alpha · r)``
    truncated toward zero onto ``2^-QW`` (so never above their bounds; ``p_u`` is the
    person's weight, 1 by default), and the float weights ``alpha · r`` of the user step."""
    down = 1.0 - 2.0**-40  # keeps float rounding from lifting a value over a grid point
    p = np.ones(R.shape[0]) if person_weight is None else np.asarray(person_weight)
    p_entry = np.repeat(p, np.diff(R.indptr))
    unit = float(1 << _QW)
    w_user = np.floor(alpha * R.data * unit * down)
    w_int = np.floor(p_entry * alpha * R.data * unit * down)
    c_int = np.floor(p_entry * (1.0 + alpha * R.data) * unit * down)
    W_int = sp.csr_matrix((w_int.astype(np.int64), R.indices, R.indptr), shape=R.shape)
    C_int = sp.csr_matrix((c_int.astype(np.int64), R.indices, R.indptr), shape=R.shape)
    W_float = sp.csr_matrix((w_user / unit, R.indices, R.indptr), shape=R.shape)
    return W_int, C_int, W_float


def _user_vectors(
    W_float: sp.csr_matrix, Y: NDArray[np.float64], regularization: float, norm: float,
    normalize: bool,
) -> NDArray[np.int64]:
    """Every person's vector from their own row (exact), clipped or normalised to ``norm``
    and truncated toward zero onto the grid ``2^-QX`` (as integers)."""
    U = solve_user_factors(W_float, Y, regularization, 1.0)
    if normalize:
        norms = np.linalg.norm(U, axis=1, keepdims=True)
        U = np.where(norms > 0, U / np.maximum(norms, 1e-300), 0.0) * norm
    U = clip_rows(U, norm)
    return np.trunc(U * (1 << _QX)).astype(np.int64)  # |U_int| <= 2^QX, norm only shrinks


def _item_statistics(
    W_int: sp.csr_matrix, C_int: sp.csr_matrix, U_int: NDArray[np.int64], k: int,
    with_a: bool,
) -> NDArray[np.int64]:
    """The item-side statistics [G, A_j..., b_j...] computed exactly in integers and rounded
    onto the noise grid ``2^k`` (nearest, ties up, as OpenDP), as grid indices."""
    f = U_int.shape[1]
    iu = np.triu_indices(f)
    UU = U_int[:, iu[0]] * U_int[:, iu[1]]  # users × tri, grid 2^-(2 QX)
    G = UU.sum(axis=0)
    blocks = [_round_shift(G, 2 * _QX + k).ravel()]
    if with_a:
        A = np.asarray(W_int.T @ UU)  # items × tri, grid 2^-(2 QX + QW)
        blocks.append(_round_shift(A, 2 * _QX + _QW + k).ravel())
    b = np.asarray(C_int.T @ U_int)  # items × f, grid 2^-(QX + QW)
    blocks.append(_round_shift(b, _QX + _QW + k).ravel())
    return np.concatenate(blocks)


def _add_noise(
    idx: NDArray[np.int64], scale: float, k: int, bits: RandomBits
) -> NDArray[np.float64]:
    """Grid indices plus discrete Gaussian noise of ``scale`` (on the grid ``2^k``)."""
    z = discrete_gaussian(math.ldexp(scale, -k), idx.size, bits=bits)
    return np.ldexp((idx + z).astype(np.float64), k)


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
    the noise scale is calibrated so the total is the requested (ε, δ).

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
    if factors < 1 or iterations < 1:
        raise ValidationError("factors and iterations must be at least 1")
    if alpha < 0 or regularization < 0:
        raise ValidationError("alpha and regularization must be non-negative")
    tm = timings if timings is not None else ALSTimings()
    f = int(factors)
    m, v, Bn = dp_cfg.max_events_per_person, dp_cfg.max_value, dp_cfg.factor_norm
    if alpha * v > 2.0**10 or Bn > 1.0:
        raise ValidationError("need alpha * max_value <= 1024 and factor_norm <= 1 "
                              "(exact integer statistics); rescale the data")

    t0 = time.perf_counter()
    R = bound_contributions(X, m, v, bits=bits)
    n_users, n_items = R.shape
    # integer confidence weights w = alpha * r truncated to 2^-QW (never above alpha * v)
    if n_users * (alpha * v + 1) * 2.0 ** (2 * _QX + _QW) >= 2.0**62:
        raise ValidationError(
            f"DP-ALS sums its statistics exactly in 64-bit integers, which allows at most "
            f"{int(2.0**62 / ((alpha * v + 1) * 2.0 ** (2 * _QX + _QW))):,} people at "
            f"alpha * max_value = {alpha * v:g}; lower alpha or max_value, or split the data")
    person_weight = None
    budget = float(m)  # bound on the sum of a person's squared item weights
    if weight_budget is None:
        weight_budget = dp_cfg.weight_budget
    if weight_budget is not None:
        if not weight_budget > 0:
            raise ValidationError("weight_budget must be positive")
        kept = R.getnnz(axis=1)
        person_weight = np.minimum(1.0, weight_budget / np.sqrt(np.maximum(kept, 1)))
        budget = min(float(weight_budget) ** 2, float(m))
    W_int, C_int, W_float = _als_inputs(R, alpha, person_weight)
    tm.bounding += time.perf_counter() - t0

    t0 = time.perf_counter()
    d = f
    iu = np.triu_indices(d)
    tri = iu[0].size
    aw = alpha * v  # bounds the (truncated) weights, with or without person weights
    with_a = aw > 0  # alpha = 0: every confidence is 1 and the A_j block is not released
    size = tri * (1 + (n_items if with_a else 0)) + d * n_items
    sens = math.sqrt(Bn**4 + budget * (aw * Bn * Bn) ** 2 + budget * ((1 + aw) * Bn) ** 2)
    bounds = _bounds(dp_cfg, factor_norm=Bn, alpha=alpha)
    if weight_budget is not None:
        bounds["weight_budget"] = float(weight_budget)
    spent, scale, k = _gaussian_spent("dp-als", dp_cfg, sens, iterations, size, bounds)
    tm.accounting += time.perf_counter() - t0

    rng = np.random.default_rng(random_state)  # data-independent initialisation only
    Y = rng.standard_normal((n_items, d)) / math.sqrt(f)
    ridge = regularization + noise_regularization * scale * math.sqrt(d)
    for _ in range(iterations):
        t0 = time.perf_counter()
        U_int = _user_vectors(W_float, Y, regularization, Bn, normalize_users)
        tm.user_step += time.perf_counter() - t0

        t0 = time.perf_counter()
        idx = _item_statistics(W_int, C_int, U_int, k, with_a)
        tm.statistics += time.perf_counter() - t0

        t0 = time.perf_counter()
        noisy = _add_noise(idx, scale, k, bits)
        tm.sampling += time.perf_counter() - t0

        t0 = time.perf_counter()
        Gn = np.zeros((d, d))
        Gn[iu] = noisy[:tri]
        An = np.zeros((n_items, d, d))
        if with_a:
            An[:, iu[0], iu[1]] = noisy[tri: tri * (1 + n_items)].reshape(n_items, tri)
        bn = noisy[size - d * n_items:].reshape(n_items, d)
        if shrinkage:
            energy = np.maximum(np.einsum("nf,nf->n", bn, bn), 1e-300)
            bn = bn * np.maximum(0.0, 1.0 - d * scale * scale / energy)[:, None]
        M = An + Gn  # upper triangles
        M = M + np.transpose(np.triu(M, 1), (0, 2, 1))
        evals, evecs = np.linalg.eigh(M)
        evals = np.maximum(evals, 0.0) + ridge
        proj = np.einsum("nfg,nf->ng", evecs, bn)
        Y = np.einsum("nfg,ng->nf", evecs, proj / evals)
    tm.solves += time.perf_counter() - t0
    return Y, spent
