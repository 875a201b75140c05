"""Draw for draw: fed a scripted stream of random bytes, the sampler returns exactly what an
independent reference computes from the same bytes, and reads exactly the bytes it needs.

The reference reads the stream the way the module documents (64-bit little-endian words, the
low 53 bits of each a uniform ``V``, bit 63 the sign; 32-bit words for the Gaussian's
acceptance; 64 more bits of ``V`` at a time while a decision is open) and decides every
comparison in 120-digit :mod:`decimal` arithmetic, with no float margin and no rational
bracket. The crafted words sit next to the thresholds ``exp(-g / scale)`` and ``exp(-γ)``, so
that the first bits cannot decide and the exact slow path must read one or two more words.
"""

from __future__ import annotations

import decimal
import hashlib
import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from persona.privacy import _sampler
from persona.privacy.sampler import (
    SeededBits,
    discrete_gaussian,
    discrete_gaussian_pmf,
    discrete_laplace,
    discrete_laplace_pmf,
    gaussian_on_grid,
    laplace_on_grid,
)

CTX = decimal.Context(prec=120)
MASK53 = (1 << 53) - 1


class Script:
    """A bit source that hands out a fixed byte string and records every request."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.calls: list[int] = []

    def __call__(self, n: int) -> bytes:
        self.calls.append(n)
        chunk = self.data[self.pos : self.pos + n]
        assert len(chunk) == n, "the sampler read past the scripted bytes"
        self.pos += n
        return chunk

    @property
    def done(self) -> bool:
        return self.pos == len(self.data)


class Reader:
    """The reference's own cursor over the same bytes."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        assert len(chunk) == n
        self.pos += n
        return chunk

    def word(self) -> int:
        return int.from_bytes(self.take(8), "little")


def _dec(q: Fraction) -> Decimal:
    return CTX.divide(Decimal(q.numerator), Decimal(q.denominator))


def _floor(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=decimal.ROUND_FLOOR))


def _neg_ln(v: Fraction) -> Decimal:
    return CTX.minus(CTX.ln(_dec(v)))


def _exp_neg(y: Fraction) -> Decimal:
    return CTX.exp(CTX.minus(_dec(y)))


def ref_geometric(scale: Fraction, low: Fraction, width: Fraction, more: Reader) -> int:
    """``floor(-scale · ln V)`` for ``V`` uniform on ``[low, low + width)``, reading 64 more
    bits of ``V`` while the interval still straddles a threshold ``exp(-g / scale)``."""
    s = _dec(scale)
    while True:
        if low > 0:
            top = _floor(CTX.multiply(s, _neg_ln(low)))  # V -> low
            bottom = _floor(CTX.multiply(s, _neg_ln(low + width)))  # V -> low + width
            if top == bottom:
                return top
        width /= 1 << 64
        low += more.word() * width


def ref_bernoulli(gamma: Fraction, low: Fraction, width: Fraction, more: Reader) -> bool:
    """``V < exp(-gamma)`` for ``V`` uniform on ``[low, low + width)``."""
    theta = _exp_neg(gamma)
    while True:
        if _dec(low + width) <= theta:
            return True
        if _dec(low) >= theta:
            return False
        width /= 1 << 64
        low += more.word() * width


def ref_laplace(scale: Fraction, n: int, r: Reader) -> list[int]:
    words = [r.word() for _ in range(n)]
    out = []
    for w in words:
        mag = ref_geometric(scale, Fraction(w & MASK53, 1 << 53), Fraction(1, 1 << 53), r)
        negative = w >> 63
        if negative and mag == 0:
            continue  # "negative zero" is rejected
        out.append(-mag if negative else mag)
    return out


def ref_gaussian(sigma: Fraction, n: int, r: Reader) -> list[int]:
    t = math.floor(sigma) + 1
    cand = ref_laplace(Fraction(t), n, r)
    halves = [int.from_bytes(r.take(4), "little") for _ in cand]
    out = []
    for c, h in zip(cand, halves, strict=True):
        gamma = (abs(c) - sigma * sigma / t) ** 2 / (2 * sigma * sigma)
        if ref_bernoulli(gamma, Fraction(h, 1 << 32), Fraction(1, 1 << 32), r):
            out.append(c)
    return out


# ---------------------------------------------------------------------------------------------
# crafting words next to a threshold


def _digits(theta: Decimal, bits: int) -> int:
    """``floor(theta · 2^bits)``."""
    return _floor(CTX.multiply(theta, Decimal(1 << bits)))


def straddle(theta: Decimal, extra: int, side: int, first: int = 53) -> tuple[int, list[int]]:
    """The first ``first`` bits of ``V`` and ``extra`` more 64-bit words, all but the last
    agreeing with ``theta``'s binary digits, so that ``V``'s interval contains ``theta`` until
    the last word, which puts it just below (``side=-1``) or just above (``+1``) ``theta``."""
    head = _digits(theta, first)
    words = [_digits(theta, first + 64 * j) - (_digits(theta, first + 64 * (j - 1)) << 64)
             for j in range(1, extra + 1)]
    if extra:
        words[-1] += side * 2
        assert 0 <= words[-1] < 1 << 64
    else:
        head += side * 2
    return head, words


def _le(words: list[int], size: int = 8) -> bytes:
    return b"".join(w.to_bytes(size, "little") for w in words)


def _laplace_case(scale: Fraction, plan: list[tuple[int, int, int, int]]):
    """Words for ``_laplace_candidates``: each item ``(g, extra, side, sign)`` puts ``V`` next
    to the threshold ``exp(-(g + 1) / scale)`` between magnitudes ``g`` and ``g + 1``."""
    firsts, tails = [], []
    for g, extra, side, sign in plan:
        theta = _exp_neg(Fraction(g + 1) / scale)
        u, more = straddle(theta, extra, side)
        firsts.append(u | (sign << 63))
        tails += more
    return _le(firsts) + _le(tails)


# ---------------------------------------------------------------------------------------------
# the tests


LAPLACE_PLAN = [
    # (g, extra words, side, sign bit)
    (0, 0, 1, 0),  # just above exp(-1/s): magnitude 0, decided on the first word
    (0, 0, -1, 0),  # just below: magnitude 1
    (0, 1, 1, 0),  # one more word decides: 0
    (0, 1, -1, 1),  # ... 1, negative
    (3, 1, 1, 1),  # -3
    (3, 2, -1, 0),  # two more words: 4
    (3, 2, 1, 0),
    (0, 1, 1, 1),  # negative zero, decided only on the second word: dropped
    (0, 0, 1, 1),  # negative zero: dropped
    (7, 0, 1, 1),
]


@pytest.mark.parametrize("scale", [Fraction(1), Fraction(5, 2), Fraction(1000), Fraction(2, 7)])
def test_laplace_candidates_draw_for_draw_next_to_thresholds(scale: Fraction) -> None:
    data = _laplace_case(scale, LAPLACE_PLAN)
    expected = ref_laplace(scale, len(LAPLACE_PLAN), Reader(data))
    src = Script(data)
    got = _sampler._laplace_candidates(scale, len(LAPLACE_PLAN), src)
    assert got.dtype == np.int64
    assert got.tolist() == expected
    assert src.done  # every extra word read, and no more
    assert src.calls[0] == 8 * len(LAPLACE_PLAN)
    assert all(n == 8 for n in src.calls[1:])
    mags = [g + (side < 0) for g, _, side, _ in LAPLACE_PLAN]
    signs = [-1 if sign else 1 for *_, sign in LAPLACE_PLAN]
    assert expected == [s * m for s, m in zip(signs, mags, strict=True) if not (s < 0 and m == 0)]


def test_an_all_zero_first_word_reads_on_until_v_is_positive() -> None:
    """``V``'s first 53 bits all zero: ``-ln V`` is unbounded until more bits arrive."""
    scale = Fraction(3)
    tail = [0, 5 << 40]  # V = 5 · 2^40 · 2^-181: magnitude floor(3 (141 ln 2 - ln 5))
    data = _le([0, 1 << 63]) + _le(tail) + _le([0, 1 << 20])
    expected = ref_laplace(scale, 2, Reader(data))
    src = Script(data)
    got = _sampler._laplace_candidates(scale, 2, src).tolist()
    assert got == expected
    assert src.done
    assert expected[0] == math.floor(3 * (141 * math.log(2) - math.log(5))) == 288
    assert expected[1] == -math.floor(3 * 161 * math.log(2))


def _gaussian_case(sigma: Fraction, plan: list[tuple[int, int, int, int, int]]) -> bytes:
    """Words for ``_gaussian_candidates``: each item ``(c, sign, extra, side, ...)`` draws the
    Laplace candidate ``±c`` (far from its thresholds) and an acceptance word next to
    ``exp(-γ(c))``."""
    t = math.floor(sigma) + 1
    firsts = []
    for c, sign, *_ in plan:
        # V in the middle of [exp(-(c+1)/t), exp(-c/t)): magnitude c on the first word
        mid = CTX.divide(CTX.add(_exp_neg(Fraction(c + 1, t)), _exp_neg(Fraction(c, t))), 2)
        firsts.append(_digits(mid, 53) | (sign << 63))
    halves, tails = [], []
    for c, _, extra, side in plan:
        gamma = (c - sigma * sigma / t) ** 2 / (2 * sigma * sigma)
        theta = _exp_neg(gamma)
        half, more = straddle(theta, extra, side, first=32)
        halves.append(half)
        tails += more
    return _le(firsts) + _le(halves, 4) + _le(tails)


GAUSS_PLAN = [
    # (candidate magnitude, sign, extra words for the acceptance, side of exp(-γ))
    (0, 0, 0, -1),  # accepted on the first 32 bits
    (1, 1, 0, 1),  # rejected on the first 32 bits
    (2, 0, 1, -1),  # accepted on one more word
    (2, 1, 1, 1),  # rejected on one more word
    (3, 0, 2, -1),
    (1, 0, 2, 1),
    (4, 1, 0, -1),
]


@pytest.mark.parametrize("sigma", [Fraction(3, 2), Fraction(7, 3), Fraction(4)])
def test_gaussian_candidates_draw_for_draw_next_to_acceptance(sigma: Fraction) -> None:
    data = _gaussian_case(sigma, GAUSS_PLAN)
    expected = ref_gaussian(sigma, len(GAUSS_PLAN), Reader(data))
    src = Script(data)
    got = _sampler._gaussian_candidates(sigma, len(GAUSS_PLAN), src)
    assert got.dtype == np.int64
    assert got.tolist() == expected
    assert src.done
    assert src.calls[:2] == [8 * len(GAUSS_PLAN), 4 * len(GAUSS_PLAN)]
    assert all(n == 8 for n in src.calls[2:])
    accepted = [(-c if sign else c) for c, sign, _, side in GAUSS_PLAN if side < 0]
    assert expected == accepted


@pytest.mark.parametrize("scale", [Fraction(3, 10), Fraction(1), Fraction(5, 2), Fraction(17),
                                   Fraction(10005, 10), Fraction(2**40 - 3, 1),
                                   Fraction(2**40)])
@pytest.mark.parametrize("margin", [None, 2.0**-5])
def test_laplace_candidates_match_the_reference_on_random_words(monkeypatch, scale, margin):
    """Random words, with the float margin as shipped and widened so that many decisions go
    to the exact path: the same draws either way, those of the reference."""
    if margin is not None:
        monkeypatch.setattr(_sampler, "_MARGIN", margin)
    n = 300
    data = SeededBits(int(scale * 7))(8 * n + 8 * 64)
    reader = Reader(data)
    expected = ref_laplace(scale, n, reader)
    src = Script(data)
    assert _sampler._laplace_candidates(scale, n, src).tolist() == expected
    assert src.pos == reader.pos


@pytest.mark.parametrize("sigma", [Fraction(3, 10), Fraction(1), Fraction(5, 2), Fraction(17),
                                   Fraction(2**40)])
@pytest.mark.parametrize("margin", [None, 2.0**-5])
def test_gaussian_candidates_match_the_reference_on_random_words(monkeypatch, sigma, margin):
    if margin is not None:
        monkeypatch.setattr(_sampler, "_MARGIN", margin)
    n = 200
    data = SeededBits(int(sigma * 11))(12 * n + 8 * 64)
    reader = Reader(data)
    expected = ref_gaussian(sigma, n, reader)
    src = Script(data)
    assert _sampler._gaussian_candidates(sigma, n, src).tolist() == expected
    assert src.pos == reader.pos


# ---------------------------------------------------------------------------------------------
# the public functions on top of the candidates


def test_seeded_bits_are_shake256_in_counter_mode() -> None:
    for seed in (7, -3, 2**100):
        src = SeededBits(seed)
        key = seed.to_bytes(16, "little", signed=True)
        for counter, n in enumerate((16, 0, 5, 40)):
            expected = hashlib.shake_256(key + counter.to_bytes(8, "little")).digest(n)
            assert src(n) == expected
    assert SeededBits(1)(32) != SeededBits(2)(32)


def test_fill_keeps_every_draw_in_order_and_asks_for_need_times_overshoot() -> None:
    asked: list[int] = []
    counter = iter(range(10**9))

    def draw(m: int) -> np.ndarray:
        asked.append(m)
        got = m // 2  # half of the candidates survive
        return np.array([next(counter) for _ in range(got)], dtype=np.int64)

    out = _sampler._fill(1000, draw, 1.5, chunk=256)
    assert out.dtype == np.int64
    assert out.tolist() == list(range(1000))  # nothing skipped, nothing repeated
    expected, filled = [], 0
    while filled < 1000:
        need = min(1000 - filled, 256)
        expected.append(int(need * 1.5) + 8)
        filled += min(expected[-1] // 2, 1000 - filled)
    assert asked == expected
    assert _sampler._fill(0, draw, 1.5).size == 0


def test_fill_chunks_large_requests() -> None:
    asked: list[int] = []

    def draw(m: int) -> np.ndarray:
        asked.append(m)
        return np.ones(m, dtype=np.int64)

    assert _sampler._fill(150_000, draw, 1.0).size == 150_000
    assert asked == [(1 << 16) + 8, (1 << 16) + 8, 150_000 - 2 * ((1 << 16) + 8) + 8]


@pytest.mark.parametrize("scale", [Fraction(1, 10**400), 0.05, 0.3, 1.0, 2.0, 7.5])
def test_laplace_reads_little_more_randomness_than_its_draws_need(scale: float) -> None:
    """About ``n / a`` candidates are needed, ``a = (1 + e^(-1/s)) / 2`` the share that is
    not a "negative zero": the first round asks for enough (a second one is rare) and the
    rounds may not read much more than that."""
    n = 20_000
    asked: list[int] = []

    def bits(m: int) -> bytes:
        asked.append(m)
        return src(m)

    src = SeededBits(21)
    out = discrete_laplace(scale, n, bits=bits)
    assert out.size == n
    needed = n * 2 / (1 + math.exp(-1 / scale)) if scale > 2**-20 else 2 * n
    words = sum(m for m in asked if m > 8) / 8  # the bulk rounds, not the exact path's words
    assert needed * 0.97 < words < needed * 1.06 + 100
    assert len([m for m in asked if m > 8]) <= 2


@pytest.mark.parametrize("sampler", ["gaussian", "laplace"])
@pytest.mark.parametrize(("scale", "k"), [(0.5, -10), (3.0, 0), (24.0, 3), (0.7, -1)])
def test_grid_release_is_rounded_input_plus_noise_of_scale_over_2k(sampler, scale, k) -> None:
    x = np.array([[0.3, -1.7, 2.0**-12], [5.5, 1e6, -0.0]])
    release = gaussian_on_grid if sampler == "gaussian" else laplace_on_grid
    draw = discrete_gaussian if sampler == "gaussian" else discrete_laplace
    out = release(x, scale, k, bits=SeededBits(5))
    assert out.shape == x.shape
    assert out.dtype == np.float64
    noise = draw(Fraction(scale) * Fraction(2) ** -k, x.size, bits=SeededBits(5))
    for value, got, z in zip(x.ravel().tolist(), out.ravel().tolist(), noise.tolist(),
                             strict=True):
        nearest = math.floor(Fraction(value) / Fraction(2) ** k + Fraction(1, 2))
        assert Fraction(got) == (nearest + z) * Fraction(2) ** k
    assert release(x.tolist(), scale, k, bits=SeededBits(5)).tolist() == out.tolist()
    assert release([[1, 2], [3, 4]], scale, k, bits=SeededBits(6)).dtype == np.float64


# ---------------------------------------------------------------------------------------------
# the probability mass functions


def _ref_gaussian_pmf(scale: Fraction, xs: list[int]) -> list[Decimal]:
    two_s2 = 2 * scale * scale
    half = math.ceil(40 * scale) + 40
    norm = sum((_exp_neg(Fraction(i * i) / two_s2) for i in range(-half, half + 1)),
               Decimal(0))
    return [CTX.divide(_exp_neg(Fraction(x * x) / two_s2), norm) for x in xs]


def _ref_laplace_pmf(scale: Fraction, x: int) -> Decimal:
    r = _exp_neg(1 / scale)
    return CTX.divide(CTX.multiply(1 - r, _exp_neg(abs(x) / scale)), 1 + r)


@pytest.mark.parametrize("scale", [0.05, 0.1, 0.3, 1.0, 2.5, 17.0])
def test_pmfs_match_exact_sums(scale: float) -> None:
    support = [-30, -3, -1, 0, 1, 2, 5, 40]
    g = discrete_gaussian_pmf(scale, support)
    lap = discrete_laplace_pmf(scale, support)
    assert g.dtype == lap.dtype == np.float64
    refs = _ref_gaussian_pmf(Fraction(scale), support)
    for i, x in enumerate(support):
        ref_g = float(refs[i])
        ref_l = float(_ref_laplace_pmf(Fraction(scale), x))
        assert g[i] == pytest.approx(ref_g, rel=1e-12, abs=1e-300)
        assert lap[i] == pytest.approx(ref_l, rel=1e-12, abs=1e-300)


def test_pmfs_take_support_beyond_int64_squares() -> None:
    """Whole numbers whose squares (or absolute values) leave int64 are still exact."""
    g = discrete_gaussian_pmf(2.0, [3_037_000_500, 0])
    assert g.tolist() == [0.0, pytest.approx(float(_ref_gaussian_pmf(Fraction(2), [0])[0]))]
    x = [-(2**63), 2**64, 3]
    scale = 2.0**62
    lap = discrete_laplace_pmf(scale, x)
    for got, xi in zip(lap.tolist(), x, strict=True):
        assert got == pytest.approx(float(_ref_laplace_pmf(Fraction(scale), xi)), rel=1e-9)


# ---------------------------------------------------------------------------------------------
# the exact path on its own: intervals far narrower than a float, at and next to the brackets


def _words_for(theta: Decimal, low: Fraction, width: Fraction, count: int, side: int) -> bytes:
    """``count`` 64-bit words that keep refining ``[low, low + width)`` towards ``theta``,
    the last one landing just below (``side=-1``) or above (``+1``) it."""
    out = []
    for i in range(count):
        width /= 1 << 64
        e = _floor(CTX.divide(CTX.subtract(theta, _dec(low)), _dec(width)))
        if i == count - 1:
            e += 2 * side
        e = min(max(e, 0), (1 << 64) - 1)
        out.append(e)
        low += e * width
    return _le(out)


@pytest.mark.parametrize("side", [-1, 1])
@pytest.mark.parametrize("gamma", [Fraction(1, 3), Fraction(5), Fraction(700)])
def test_bernoulli_exact_reads_on_while_the_interval_straddles_by_2_to_minus_100(gamma, side):
    """``V``'s interval overlaps ``exp(-γ)`` by a relative ``2^-100``, far inside the first
    bracket's width: no bracket may decide it, more words must be read."""
    theta = _exp_neg(gamma)
    width = Fraction(1, 1 << 60) * Fraction(_dec_to_frac(theta))
    eps = width / (3 << 40)  # not a multiple of the next words' widths
    for low in (_dec_to_frac(theta) - width + eps, _dec_to_frac(theta) - eps):
        data = _words_for(theta, low, width, 3, side)
        reader = Reader(data)
        expected = ref_bernoulli(gamma, low, width, reader)
        src = Script(data)
        assert _sampler._bernoulli_exp_exact(gamma, low, width, src) is expected
        assert expected is (side < 0)
        assert src.pos == reader.pos >= 16


@pytest.mark.parametrize("gamma", [Fraction(1, 3), Fraction(47, 7), Fraction(700)])
def test_bernoulli_exact_decides_at_the_bracket_ends(gamma) -> None:
    lo, hi = _sampler._exp_neg_bounds(gamma, 80)
    width = lo / (1 << 70)
    no_bits = Script(b"")
    assert _sampler._bernoulli_exp_exact(gamma, lo - width, width, no_bits) is True
    assert _sampler._bernoulli_exp_exact(gamma, hi, width, no_bits) is False
    assert no_bits.calls == []


def _dec_to_frac(x: Decimal) -> Fraction:
    return Fraction(x)


@pytest.mark.parametrize("scale", [Fraction(1), Fraction(7, 2), Fraction(1000)])
@pytest.mark.parametrize("g", [0, 3])
def test_geometric_exact_reads_on_while_the_interval_straddles_a_threshold(scale, g) -> None:
    for edge, side in ((g, -1), (g, 1), (g + 1, -1), (g + 1, 1)):
        if edge == 0:
            continue  # exp(0) = 1 is above every V
        theta = _exp_neg(Fraction(edge) / scale)
        t = _dec_to_frac(theta)
        width = t / (1 << 60)
        eps = width / (3 << 40)  # not a multiple of the next words' widths
        for low in (t - width + eps, t - eps):
            data = _words_for(theta, low, width, 2, side)
            reader = Reader(data)
            expected = ref_geometric(scale, low, width, reader)
            src = Script(data)
            assert _sampler._geometric_exact(scale, low, width, src) == expected
            assert expected == edge - (side > 0)
            assert src.pos == reader.pos >= 16


@pytest.mark.parametrize("scale", [Fraction(1), Fraction(7, 2), Fraction(1000)])
@pytest.mark.parametrize("g", [0, 2])
def test_geometric_exact_decides_at_the_bracket_ends(scale, g) -> None:
    top = _sampler._exp_neg_bound(Fraction(g) / scale, 80, False)  # below exp(-g/scale)
    bottom = _sampler._exp_neg_bound(Fraction(g + 1) / scale, 80, True)  # above the next
    no_bits = Script(b"")
    assert _sampler._geometric_exact(scale, bottom, (top - bottom) / 2, no_bits) == g
    assert _sampler._geometric_exact(scale, (top + bottom) / 2, (top - bottom) / 2,
                                     no_bits) == g
    assert no_bits.calls == []


@pytest.mark.parametrize("offset", [-2, -1, 1, 2])
@pytest.mark.parametrize("g", [0, 1, 5])
def test_geometric_exact_finds_the_magnitude_when_the_float_guess_is_off_by_two(
        monkeypatch, offset, g) -> None:
    """The float estimate of ``-scale · ln V`` only picks where to start; the exact search
    around it covers an error of up to two."""
    scale = Fraction(3, 2)
    centre = CTX.divide(CTX.add(_exp_neg(Fraction(g) / scale),
                                _exp_neg(Fraction(g + 1) / scale)), 2)
    low, width = _dec_to_frac(centre), Fraction(1, 1 << 80)

    class OffMath:
        log = staticmethod(math.log)

        @staticmethod
        def floor(v):
            return math.floor(v) + (offset if isinstance(v, float) else 0)

    monkeypatch.setattr(_sampler, "math", OffMath)
    assert _sampler._geometric_exact(scale, low, width, Script(b"")) == g


def _sigma_with_acceptance_digits(lo: float, hi: float) -> Fraction:
    """A σ whose acceptance threshold for the candidate 0, ``θ = exp(-σ² / (2 t²))``, has
    ``frac(θ · 2^32)`` between ``lo · θ`` and ``hi · θ`` (counted from the top when
    negative): ``V``'s first 32 bits then leave it a hair inside ``V``'s interval."""
    for k in range(1, 1 << 16):
        sigma = Fraction(3, 2) + Fraction(k, 1 << 20)
        t = math.floor(sigma) + 1
        theta = _exp_neg(sigma * sigma / (2 * t * t))
        f = float(CTX.multiply(theta, Decimal(1 << 32)) % 1)
        th = float(theta)
        if lo * th < (f if lo > 0 else f - 1) < hi * th:
            return sigma
    raise AssertionError("no such σ")


@pytest.mark.parametrize(("lo", "hi", "side"), [(-1 / 40, -1 / 400, 1), (-1 / 40, -1 / 400, -1),
                                                (1 / 400, 1 / 40, 1), (1 / 400, 1 / 40, -1)])
def test_gaussian_acceptance_within_the_float_margin_goes_to_the_exact_path(lo, hi, side):
    """``θ`` a relative ``2^-38`` or so inside ``V``'s 32-bit interval, nearer to one end
    than the fast path's margin: the first bits cannot decide, one more word must be read."""
    sigma = _sigma_with_acceptance_digits(lo, hi)
    plan = [(0, 0, 1, side)]
    data = _gaussian_case(sigma, plan)
    reader = Reader(data)
    expected = ref_gaussian(sigma, 1, reader)
    src = Script(data)
    assert _sampler._gaussian_candidates(sigma, 1, src).tolist() == expected == (
        [0] if side < 0 else [])
    assert src.done and reader.pos == len(data)


def test_gaussian_acceptance_below_the_float_range_goes_to_the_exact_path() -> None:
    """γ = 630: ``exp(-γ)`` ~ 2^-909 is below the fast path's absolute floor ``_TINY``, and
    ``V``'s first 32 bits all zero cannot reject it; zero words are read until ``V``'s
    interval lies below ``θ`` or above it."""
    sigma = Fraction(1)
    for side in (-1, 1):
        plan = [(36, 0, 15, side), (36, 0, 0, 1)]
        data = _gaussian_case(sigma, plan)
        reader = Reader(data)
        expected = ref_gaussian(sigma, 2, reader)
        src = Script(data)
        assert _sampler._gaussian_candidates(sigma, 2, src).tolist() == expected == (
            [36] if side < 0 else [])
        assert src.done and reader.pos == len(data)


@pytest.mark.parametrize("sigma", [3.0, 100.0])
def test_gaussian_reads_little_more_randomness_than_its_draws_need(sigma: float) -> None:
    """Per draw, ``1 / (a · b)`` Laplace candidates (a 64-bit word each) are needed and the
    ``1 / b`` that pass the sign/zero step take a 32-bit word more, ``a`` the share that is
    not a "negative zero" and ``b`` the mean acceptance ``exp(-γ)``; the rounds may read a
    quarter more at most."""
    t = math.floor(sigma) + 1
    r = math.exp(-1 / t)
    half = int(60 * t) + 50
    b = sum((1 - r) / (1 + r) * r ** abs(c)
            * math.exp(-((abs(c) - sigma * sigma / t) ** 2) / (2 * sigma * sigma))
            for c in range(-half, half + 1))
    a = (1 + r) / 2
    n = 20_000
    read = []
    src = SeededBits(22)

    def bits(m: int) -> bytes:
        read.append(m)
        return src(m)

    assert discrete_gaussian(sigma, n, bits=bits).size == n
    needed = n * (8 / (a * b) + 4 / b)
    assert needed * 0.97 < sum(read) < needed * 1.25


@pytest.mark.parametrize("g", [19, 30])
def test_laplace_candidates_next_to_thresholds_at_small_v(g: int) -> None:
    """``V ~ e^-20`` and ``e^-31``: its first 53 bits are a small integer ``u``, and the width
    of ``-ln V`` over them, about ``1 / u``, dwarfs the relative float margin; a threshold
    inside still needs more words."""
    scale = Fraction(1)
    plan = [(g, 1, 1, 0), (g, 1, -1, 1), (g, 0, 1, 0), (g, 0, -1, 1), (g, 2, 1, 1)]
    data = _laplace_case(scale, plan)
    reader = Reader(data)
    expected = ref_laplace(scale, len(plan), reader)
    src = Script(data)
    assert _sampler._laplace_candidates(scale, len(plan), src).tolist() == expected
    assert expected == [g, -(g + 1), g, -(g + 1), -g]
    assert src.done and reader.pos == len(data)
