"""The exact slow path of the sampler: integer brackets of ``exp(-y)`` contain the true
value (checked against 300-digit correctly rounded ``decimal`` arithmetic) and are as
narrow as the requested precision; the decisions built on them are therefore exact."""

from __future__ import annotations

import decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from persona.privacy import _sampler

DIGITS = 300


def _reference(y: Fraction) -> tuple[Fraction, Fraction]:
    """A bracket of exp(-y) about 10^-290 wide: y rounded down and up, then Decimal's
    correctly rounded exp widened by one unit in the last place."""
    out = []
    for rounding, sign in ((decimal.ROUND_CEILING, -1), (decimal.ROUND_FLOOR, 1)):
        with decimal.localcontext() as ctx:
            ctx.prec, ctx.rounding = DIGITS, rounding
            y_dec = decimal.Decimal(y.numerator) / decimal.Decimal(y.denominator)
        with decimal.localcontext() as ctx:
            ctx.prec = DIGITS
            value = (-y_dec).exp()
        out.append(Fraction(value) * (1 + sign * Fraction(1, 10 ** (DIGITS - 5))))
    return out[0], out[1]


@settings(max_examples=200, deadline=None)
@given(num=st.integers(0, 10**15), den=st.integers(1, 10**13),
       prec=st.sampled_from([80, 144, 208, 400]))
def test_brackets_contain_exp_and_are_narrow(num: int, den: int, prec: int) -> None:
    y = Fraction(num, den)
    lo, hi = _sampler._exp_neg_bounds(y, prec)
    assert 0 <= lo <= hi
    if y > 2000:
        assert hi <= Fraction(1, 2**2800)
        return
    ref_lo, ref_hi = _reference(y)
    assert lo <= ref_hi
    assert hi >= ref_lo
    assert hi - lo <= lo * Fraction(1, 2 ** (prec + 8))  # 8 of the 16 guard bits at least


@settings(max_examples=60, deadline=None)
@given(y=st.fractions(0, 2000, max_denominator=10**12), prec=st.sampled_from([80, 144, 400]))
def test_brackets_keep_their_guard_bits_over_the_whole_range(y: Fraction, prec: int) -> None:
    lo, hi = _sampler._exp_neg_bounds(y, prec)
    ref_lo, ref_hi = _reference(y)
    assert 0 < lo <= ref_hi
    assert hi >= ref_lo
    assert hi - lo <= lo * Fraction(1, 2 ** (prec + 8))


@settings(max_examples=100, deadline=None)
@given(p=st.integers(8, 300), frac=st.fractions(0, 1))
def test_dyadic_series_bounds_are_ordered(p: int, frac: Fraction) -> None:
    x = int(frac * (1 << p))
    lo = _sampler._exp_neg_dyadic(x, p, False)
    hi = _sampler._exp_neg_dyadic(x, p, True)
    ref_lo, ref_hi = _reference(Fraction(x, 1 << p))
    assert Fraction(lo, 1 << p) <= ref_hi
    assert Fraction(hi, 1 << p) >= ref_lo
    assert 0 <= hi - lo <= 2 * p + 4  # one unit per term, a few dozen terms


def test_bracket_edges() -> None:
    assert _sampler._exp_neg_bounds(Fraction(0), 80) == (1, 1)
    lo, hi = _sampler._exp_neg_bounds(Fraction(2000), 80)
    ref_lo, ref_hi = _reference(Fraction(2000))
    assert lo <= ref_hi
    assert hi >= ref_lo
    assert hi - lo <= lo * Fraction(1, 2**76)  # still narrow at the cut-off itself
    # past it: 0 below, a positive number above (exp(-y) > 0 however large y is)
    for y in (Fraction(2001), Fraction(4001, 2), Fraction(10**9)):
        lo, hi = _sampler._exp_neg_bounds(y, 80)
        assert lo == 0
        assert 0 < hi <= Fraction(1, 2**2800)
    assert _sampler._exp_neg_bounds(Fraction(2001), 80)[1] >= _reference(Fraction(2001))[0]


@settings(max_examples=60, deadline=None)
@given(a=st.integers(1, 2**64), k=st.integers(0, 9), extra=st.integers(0, 300),
       p=st.sampled_from([64, 65, 100]))
def test_powers_are_bounded_from_the_side_asked(a: int, k: int, extra: int, p: int) -> None:
    """``2^p (a / 2^p)^n`` in integers: the lower bound is at most the exact value, the
    upper bound at least it, each within one unit per multiplication."""
    a = min(a, 1 << p)
    for n in (1 << k, (1 << k) + extra):
        exact = Fraction(a**n, 1 << (p * (n - 1))) if n else Fraction(1 << p)
        lo = _sampler._pow_bound(a, n, p, False)
        hi = _sampler._pow_bound(a, n, p, True)
        assert lo <= exact <= hi
        assert hi - lo <= 2 * (n.bit_length() * 2 + 1)


def test_dyadic_series_bounds_hold_for_every_x_at_small_precision() -> None:
    """Every ``x`` at ``p`` = 8 to 10 bits, where few terms are summed and the series' own
    truncation error is not hidden by rounding (ending the sum on the wrong term is caught
    at x = 32, p = 9)."""
    for p in (8, 9, 10):
        for x in range((1 << p) + 1):
            lo = _sampler._exp_neg_dyadic(x, p, False)
            hi = _sampler._exp_neg_dyadic(x, p, True)
            ref_lo, ref_hi = _reference(Fraction(x, 1 << p))
            assert Fraction(lo, 1 << p) <= ref_hi
            assert Fraction(hi, 1 << p) >= ref_lo
