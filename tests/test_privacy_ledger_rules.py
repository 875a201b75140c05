"""The budget ledger's rules line by line: what counts as spent, the budget's boundaries,
every field of every line it writes, and refusals that leave the ledger as it was."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from persona.errors import PrivacyBudgetExceeded, StoreError, ValidationError
from persona.privacy import (
    BudgetLedger,
    JsonlChargeStorage,
    MemoryChargeStorage,
    PrivacyCharge,
    PrivacyReservation,
    PrivacySpent,
)
from persona.schema import PrivacySettlement, Spending, ledger_lines, spending

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
D = 2.0**-24  # δ in multiples of a power of two: their sums are exact


class _Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def _spend(eps: float, delta: float = 0.0, mechanism: str = "m") -> PrivacySpent:
    return PrivacySpent(mechanism=mechanism, epsilon=eps, delta=delta)


def _ledger(storage=None, clock=None, **kwargs) -> BudgetLedger:
    kwargs.setdefault("epsilon_budget", 10.0)
    kwargs.setdefault("delta_budget", 1e-3)
    return BudgetLedger(storage, clock=clock or _Clock(), **kwargs)


@pytest.fixture(params=["memory", "jsonl"])
def storage(request, tmp_path: Path):
    if request.param == "memory":
        return MemoryChargeStorage()
    return JsonlChargeStorage(tmp_path / "sub" / "ledger.jsonl")


# ------------------------------------------------------------------- what counts as spent
def test_spending_counts_each_kind_of_line_for_its_own_purpose(storage) -> None:
    ledger = _ledger(storage)
    settled = ledger.reserve("p", (1.0, 8 * D))
    ledger.settle(settled, [_spend(0.25, 2 * D), _spend(0.5, D)])  # counts 0.75, 3D
    open_ = ledger.reserve("p", (2.0, 16 * D))  # counts at the reserved amount
    ledger.charge(_spend(0.125, 32 * D), purpose="p")  # a charge without a reservation
    ledger.reserve("q", (4.0, 64 * D))  # another purpose
    ledger.charge(_spend(3.0, 128 * D), purpose="q")
    s = ledger.spending("p")
    assert s == Spending(epsilon=0.75 + 2.0 + 0.125, delta=3 * D + 16 * D + 32 * D,
                         reserved_epsilon=2.0, reserved_delta=16 * D, pending=1)
    assert ledger.spent("p") == (s.epsilon, s.delta)
    assert ledger.spending("q") == Spending(7.0, 192 * D, 4.0, 64 * D, 1)
    assert ledger.spending("nobody") == Spending(0.0, 0.0, 0.0, 0.0, 0)
    ledger.cancel(open_)
    assert ledger.spending("p") == Spending(0.875, 35 * D, 0.0, 0.0, 0)


def test_an_open_reservation_counts_at_the_larger_of_reserved_and_charged() -> None:
    """Charges that name an open reservation (a settlement whose closing line is missing)
    count at least at what was reserved, and at what they spent when that is more."""
    r_small = PrivacyReservation(purpose="p", epsilon=1.0, delta=1e-6, created_at=T0)
    r_big = PrivacyReservation(purpose="p", epsilon=3.0, delta=1e-7, created_at=T0)
    over = _spend(2.0, 5e-7).charge("p", at=T0).model_copy(
        update={"reservation_id": r_small.reservation_id})
    under = _spend(1.0, 4e-7).charge("p", at=T0).model_copy(
        update={"reservation_id": r_big.reservation_id})
    s = spending([r_small, r_big, over, under], "p", period_days=None, now=T0)
    assert s == Spending(epsilon=2.0 + 3.0, delta=1e-6 + 4e-7, reserved_epsilon=5.0,
                         reserved_delta=1e-6 + 4e-7, pending=2)


def test_a_settled_reservation_counts_at_its_charges_even_when_above_what_it_held() -> None:
    r = PrivacyReservation(purpose="p", epsilon=1.0, delta=1e-6, created_at=T0)
    c = _spend(0.5, 2e-6).charge("p", at=T0).model_copy(
        update={"reservation_id": r.reservation_id})
    done = PrivacySettlement(reservation_id=r.reservation_id, purpose="p",
                             charge_ids=(c.charge_id,), created_at=T0)
    assert spending([r, c, done], "p", period_days=None, now=T0) == Spending(
        0.5, 2e-6, 0.0, 0.0, 0)
    # a settlement of another purpose with the same id does not close it
    other = done.model_copy(update={"purpose": "q"})
    assert spending([r, c, other], "p", period_days=None, now=T0) == Spending(
        1.0, 2e-6, 1.0, 2e-6, 1)


def test_a_charge_naming_a_reservation_of_another_purpose_counts_as_its_own() -> None:
    r = PrivacyReservation(purpose="q", epsilon=1.0, delta=0.0, created_at=T0)
    c = _spend(0.5, 1e-7).charge("p", at=T0).model_copy(
        update={"reservation_id": r.reservation_id})
    assert spending([r, c], "p", period_days=None, now=T0) == Spending(0.5, 1e-7, 0.0, 0.0, 0)
    assert spending([r, c], "q", period_days=None, now=T0) == Spending(1.0, 0.0, 1.0, 0.0, 1)


def test_a_period_counts_lines_strictly_after_its_start() -> None:
    start = T0 - timedelta(days=7)
    r_on = PrivacyReservation(purpose="p", epsilon=1.0, delta=D, created_at=start)
    r_in = PrivacyReservation(purpose="p", epsilon=2.0, delta=2 * D,
                              created_at=start + timedelta(microseconds=1))
    c_on = _spend(4.0, 4 * D).charge("p", at=start)
    c_in = _spend(8.0, 8 * D).charge("p", at=start + timedelta(microseconds=1))
    # a charge of a reservation is dated by the reservation, not by itself
    late = _spend(16.0, 0.0).charge("p", at=T0).model_copy(
        update={"reservation_id": r_on.reservation_id})
    entries = [r_on, r_in, c_on, c_in, late]
    assert spending(entries, "p", period_days=7, now=T0) == Spending(10.0, 10 * D, 2.0, 2 * D, 1)
    assert spending(entries, "p", period_days=None, now=T0) == Spending(
        16.0 + 2.0 + 4.0 + 8.0, 15 * D, 18.0, 3 * D, 2)
    assert spending(entries, "p", period_days=8, now=T0).epsilon == 30.0


def test_a_per_period_ledger_reads_its_clock(storage) -> None:
    clock = _Clock()
    ledger = _ledger(storage, clock, epsilon_budget=1.0, period_days=1)
    ledger.charge(_spend(1.0), purpose="p")
    clock.advance(days=1)  # exactly one period later: no longer counts
    assert ledger.spent("p") == (0.0, 0.0)
    assert ledger.remaining("p") == (1.0, 1e-3)
    ledger.check("p", epsilon=1.0, delta=0.0)
    assert ledger.period_days == 1


def test_ledger_lines_list_charges_and_open_reservations_oldest_first(storage) -> None:
    clock = _Clock()
    ledger = _ledger(storage, clock)
    a = ledger.reserve("p", [_spend(1.0, 1e-6, "x")], snapshot="s0")
    clock.advance(seconds=1)
    b = ledger.reserve("q", (0.5, 0.0))
    clock.advance(seconds=1)
    (settled,) = ledger.settle(a, [_spend(0.5, 1e-7, "x")])
    lines = ledger.charges()
    assert [(c.purpose, c.status, c.charge_id) for c in lines] == [
        ("q", "reserved", b.reservation_id), ("p", "settled", settled.charge_id)]
    assert ledger.charges("p") == [settled]
    assert ledger.charges("q") == [b.as_charge()]
    assert ledger_lines(storage.load_entries(), "q") == [b.as_charge()]
    assert ledger.charges("nobody") == []
    assert ledger.export() == [c.model_dump(mode="json") for c in lines]
    assert [e["status"] for e in ledger.export()] == ["reserved", "settled"]
    assert [type(e) for e in ledger.entries()] == [
        PrivacyReservation, PrivacyReservation, PrivacyCharge, PrivacySettlement]
    assert [type(e) for e in ledger.entries("p")] == [
        PrivacyReservation, PrivacyCharge, PrivacySettlement]
    assert storage.load_charges() == [settled]


# ------------------------------------------------------------------- the budget's edges
def test_spending_exactly_the_budget_is_allowed_and_a_hair_more_refused(storage) -> None:
    ledger = _ledger(storage, epsilon_budget=1.0, delta_budget=1e-6)
    ledger.reserve("p", (0.5, 5e-7))
    ledger.check("p", epsilon=0.5, delta=5e-7)
    ledger.check("p", epsilon=0.5 * (1 + 1e-13), delta=5e-7 * (1 + 1e-13))  # float noise
    with pytest.raises(PrivacyBudgetExceeded):
        ledger.check("p", epsilon=0.5 * (1 + 1e-10), delta=0.0)
    with pytest.raises(PrivacyBudgetExceeded):
        ledger.check("p", epsilon=0.0, delta=5e-7 * (1 + 1e-10))
    with pytest.raises(PrivacyBudgetExceeded):  # δ alone over the budget is refused
        ledger.charge(_spend(0.0, 6e-7), purpose="p")
    ledger.charge(_spend(0.5, 5e-7), purpose="p")
    assert ledger.remaining("p") == (0.0, 0.0)


def test_the_budget_slack_is_inclusive() -> None:
    ledger = _ledger(epsilon_budget=1.0, delta_budget=1e-6)
    ledger.check("p", epsilon=1.0 * (1 + 1e-12), delta=1e-6 * (1 + 1e-12) + 1e-300)
    zero = _ledger(epsilon_budget=1.0, delta_budget=0.0)
    zero.check("p", epsilon=0.0, delta=1e-300)


def test_a_zero_delta_budget_allows_pure_dp_only() -> None:
    ledger = _ledger(epsilon_budget=1.0, delta_budget=0.0)
    ledger.check("p", epsilon=1.0, delta=0.0)
    ledger.check("p", epsilon=1.0, delta=1e-301)  # below float noise of a sum
    with pytest.raises(PrivacyBudgetExceeded):
        ledger.check("p", epsilon=0.0, delta=1e-299)


def test_remaining_never_goes_below_zero_and_hides_float_noise() -> None:
    ledger = _ledger(epsilon_budget=0.3, delta_budget=3e-6)
    ledger.charge(_spend(0.1, 1e-6), purpose="p")
    ledger.charge(_spend(0.1, 1e-6), purpose="p")
    # 0.3 - 0.2 is 0.09999999999999998 in floats, 3e-6 - 2e-6 is 1.0000000000000002e-06
    assert ledger.remaining("p") == (0.1, 1e-6)
    r = ledger.reserve("p", (0.1, 1e-6))
    with pytest.raises(PrivacyBudgetExceeded):
        ledger.settle(r, [_spend(0.25, 2e-6)])  # overran: spent more than the budget
    assert ledger.remaining("p") == (0.0, 0.0)
    assert ledger.spent("p") == pytest.approx((0.45, 4e-6))


def test_remaining_rounds_to_12_and_18_decimals() -> None:
    ledger = _ledger(epsilon_budget=1.0, delta_budget=1e-5)
    ledger.charge(_spend(1e-13, 1e-19), purpose="p")
    assert ledger.remaining("p") == (1.0, 1e-5)
    ledger.charge(_spend(1e-11, 1e-17), purpose="p")
    assert ledger.remaining("p") == (round(1.0 - 1e-11, 12), round(1e-5 - 1e-17, 18))
    assert ledger.remaining("p")[0] < 1.0 and ledger.remaining("p")[1] < 1e-5


def test_the_refusal_states_the_spend_the_request_and_what_is_left() -> None:
    clock = _Clock()
    ledger = _ledger(epsilon_budget=2.0, delta_budget=1e-5, clock=clock)
    ledger.charge(_spend(0.5, 1e-6), purpose="recs")
    ledger.reserve("recs", (1.0, 2e-6))
    with pytest.raises(PrivacyBudgetExceeded) as info:
        ledger.reserve("recs", (1.0, 1e-6))
    err = info.value
    assert err.code == "privacy_budget_exceeded"
    assert err.context == {"purpose": "recs", "spent": (1.5, 3e-6), "requested": (1.0, 1e-6),
                           "remaining": (0.5, 7e-6)}
    assert str(err) == (
        "purpose 'recs' has spent ε = 1.5, δ = 3e-06 (ε = 1 of it is held by 1 "
        "reservation(s) not settled: a fit in progress, or one whose process stopped before "
        "settling, which keeps counting) of its budget ε = 2, δ = 1e-05; this fit needs "
        "ε = 1, δ = 1e-06 but only ε = 0.5, δ = 7e-06 is left. Nothing was read. Lower the "
        "fit's epsilon, reuse an existing model, or have a reviewer raise the budget.")


def test_a_per_period_refusal_says_so_and_has_no_pending_part() -> None:
    ledger = _ledger(epsilon_budget=2.0, delta_budget=1e-5, period_days=30)
    ledger.charge(_spend(2.0), purpose="recs")
    with pytest.raises(PrivacyBudgetExceeded) as info:
        ledger.check("recs", epsilon=0.5, delta=0.0)
    assert str(info.value).startswith(
        "purpose 'recs' has spent ε = 2, δ = 0 in the last 30 days of its budget ε = 2, "
        "δ = 1e-05 per 30 days; this fit needs ε = 0.5, δ = 0 but only ε = 0, δ = 1e-05 "
        "is left.")


# ------------------------------------------------------------------- reserve
def test_reserve_writes_one_line_with_every_field(storage) -> None:
    clock = _Clock()
    ledger = _ledger(storage, clock)
    plan = [_spend(0.25, 1e-7, "a"), _spend(0.5, 2e-7, "b")]
    r = ledger.reserve("p", plan, snapshot="snap-1")
    assert (r.kind, r.purpose, r.epsilon, r.delta, r.snapshot, r.created_at) == (
        "reservation", "p", 0.75, 3e-7, "snap-1", T0)
    assert r.planned == tuple(plan)
    assert storage.load_entries() == [r]
    bare = ledger.reserve("p", (1, 0))
    assert (bare.epsilon, bare.delta, bare.planned, bare.snapshot) == (1.0, 0.0, (), None)
    assert isinstance(bare.epsilon, float) and isinstance(bare.delta, float)
    # a tuple of two spends is a plan, not an (ε, δ) pair
    pair = ledger.reserve("p", (_spend(0.125), _spend(0.125, 1e-8)))
    assert (pair.epsilon, pair.delta, len(pair.planned)) == (0.25, 1e-8, 2)
    assert storage.load_entries() == [r, bare, pair]


@pytest.mark.parametrize(("plan", "field"), [
    ((math.nan, 0.0), "epsilon"), ((math.inf, 0.0), "epsilon"), ((-1e-9, 0.0), "epsilon"),
    ((True, 0.0), "epsilon"), (("1.0", 0.0), "epsilon"), ((None, 0.0), "epsilon"),
    ((0.0, math.nan), "delta"), ((0.0, -1e-9), "delta"), ((0.0, False), "delta"),
    ((0.0, 1.0), "delta"), ((0.0, 1.5), "delta"), ((0.0, "0"), "delta"),
    ([_spend(1.0), (1.0, 0.0)], "spents"), ("ab", "spents"),
])
def test_a_bad_plan_is_refused_naming_the_field_and_nothing_is_written(
    storage, plan: object, field: str,
) -> None:
    ledger = _ledger(storage)
    with pytest.raises(ValidationError) as info:
        ledger.reserve("p", plan)  # type: ignore[arg-type]
    assert info.value.code == "validation_error"
    assert info.value.errors == [{"row": None, "field": field, "message": "invalid"}]
    if field == "spents":
        bad = next(p for p in plan if not isinstance(p, PrivacySpent))
        assert str(info.value).endswith(f"pair, not {type(bad).__name__}")
    else:
        value = plan[0] if field == "epsilon" else plan[1]
        assert str(info.value).startswith(f"a planned {field} must be ")
        assert str(info.value).endswith(f", not {value!r}")
    assert storage.load_entries() == []


def test_the_edges_of_a_plan_are_accepted() -> None:
    ledger = _ledger(epsilon_budget=100.0, delta_budget=math.nextafter(1.0, 0.0))
    r = ledger.reserve("p", (0.0, 0.0))
    assert (r.epsilon, r.delta) == (0.0, 0.0)
    r = ledger.reserve("p", (2, math.nextafter(1.0, 0.0)))
    assert (r.epsilon, r.delta) == (2.0, math.nextafter(1.0, 0.0))
    assert ledger.reserve("p", []).epsilon == 0.0


@pytest.mark.parametrize("purpose", ["", None, 3, b"p"])
def test_reserve_needs_a_purpose(storage, purpose: object) -> None:
    ledger = _ledger(storage)
    with pytest.raises(ValidationError, match="purpose must be a non-empty string") as info:
        ledger.reserve(purpose, (1.0, 0.0))  # type: ignore[arg-type]
    assert info.value.errors == [{"row": None, "field": "purpose", "message": "empty"}]
    assert storage.load_entries() == []


def test_a_refused_reservation_writes_nothing(storage) -> None:
    ledger = _ledger(storage, epsilon_budget=1.0)
    r = ledger.reserve("p", (0.75, 0.0))
    with pytest.raises(PrivacyBudgetExceeded):
        ledger.reserve("p", (0.5, 0.0))
    with pytest.raises(PrivacyBudgetExceeded):
        ledger.charge(_spend(0.5), purpose="p")
    assert storage.load_entries() == [r]


# ------------------------------------------------------------------- settle
def test_settle_writes_every_field_of_each_charge_and_the_closing_line(storage) -> None:
    clock = _Clock()
    ledger = _ledger(storage, clock)
    r = ledger.reserve("p", (1.0, 1e-6), snapshot="snap-r")
    clock.advance(minutes=5)
    first = PrivacySpent(mechanism="dp-als", epsilon=0.5, delta=5e-7, rho=0.01, steps=3,
                         bounds={"max_events_per_person": 8.0}, noise={"scale": 2.0},
                         accounting="by hand", epsilon_pld=0.4)
    second = _spend(0.25, 1e-7, "dp-counts")
    lines = ledger.settle(r, [first, second])
    for line, spent in zip(lines, [first, second], strict=True):
        assert line.model_dump(include=set(PrivacySpent.model_fields)) == spent.model_dump()
        assert (line.purpose, line.snapshot, line.created_at, line.reservation_id,
                line.status) == ("p", "snap-r", T0 + timedelta(minutes=5), r.reservation_id,
                                 "settled")
    assert lines[0].charge_id != lines[1].charge_id
    closing = storage.load_entries()[-1]
    assert closing == PrivacySettlement(
        reservation_id=r.reservation_id, purpose="p",
        charge_ids=(lines[0].charge_id, lines[1].charge_id), created_at=T0 + timedelta(minutes=5))
    assert storage.load_entries() == [r, *lines, closing]
    assert ledger.spent("p") == (0.75, 6e-7)


def test_settle_takes_a_line_of_another_ledger_as_a_spend(storage) -> None:
    """A ledger line is a PrivacySpent too: settling with it copies its spend, not its
    purpose, ids or dates."""
    clock = _Clock()
    ledger = _ledger(storage, clock)
    elsewhere = PrivacySpent(mechanism="dp-x", epsilon=0.5, delta=1e-7, rho=0.01).charge(
        "other", "snap-o", at=T0 - timedelta(days=3))
    r = ledger.reserve("p", (1.0, 1e-6))
    (line,) = ledger.settle(r, [elsewhere])
    assert line.model_dump(include=set(PrivacySpent.model_fields)) == elsewhere.model_dump(
        include=set(PrivacySpent.model_fields))
    assert (line.purpose, line.snapshot, line.created_at, line.reservation_id) == (
        "p", None, T0, r.reservation_id)
    assert line.charge_id != elsewhere.charge_id


def test_settle_names_its_own_snapshot_when_given(storage) -> None:
    ledger = _ledger(storage)
    r = ledger.reserve("p", (1.0, 0.0), snapshot="planned")
    (line,) = ledger.settle(r, (_spend(0.5),), snapshot="read")
    assert line.snapshot == "read"


def test_cancel_closes_a_reservation_with_no_charge(storage) -> None:
    ledger = _ledger(storage)
    r = ledger.reserve("p", (1.0, 1e-6))
    assert ledger.cancel(r) is None
    (_, closing) = storage.load_entries()
    assert isinstance(closing, PrivacySettlement)
    assert (closing.reservation_id, closing.purpose, closing.charge_ids) == (
        r.reservation_id, "p", ())
    assert ledger.spent("p") == (0.0, 0.0)
    assert ledger.charges("p") == []


@pytest.mark.parametrize(("reserved", "spent"), [
    ((1.0, 1e-6), (1.0, 1e-6)), ((1.0, 1e-6), (1.0 + 1e-10, 1e-6 * (1 + 1e-10))),
    ((0.0, 0.0), (0.0, 1e-301)),
    # exactly at the slack: 1e-9 relative, and 1e-300 absolute for δ
    ((1.0, 1e-6), (1.0 * (1 + 1e-9), 1e-6 * (1 + 1e-9))), ((0.0, 0.0), (0.0, 1e-300)),
])
def test_settling_at_the_reserved_amount_is_no_overrun(reserved, spent) -> None:
    ledger = _ledger()
    r = ledger.reserve("p", reserved)
    (line,) = ledger.settle(r, [_spend(*spent)])
    assert (line.epsilon, line.delta) == spent


@pytest.mark.parametrize(("reserved", "spent"), [
    ((1.0, 1e-6), (1.0 + 1e-8, 1e-6)), ((1.0, 1e-6), (1.0, 1e-6 * (1 + 1e-8))),
    ((0.0, 0.0), (0.0, 1e-299)),
])
def test_an_overrun_is_recorded_then_refused(storage, reserved, spent) -> None:
    ledger = _ledger(storage)
    r = ledger.reserve("p", reserved)
    with pytest.raises(PrivacyBudgetExceeded, match="more than the planned") as info:
        ledger.settle(r, [_spend(*spent)])
    assert info.value.code == "privacy_budget_exceeded"
    assert info.value.context == {"purpose": "p", "spent": spent, "requested": reserved}
    assert [type(e) for e in storage.load_entries()] == [
        PrivacyReservation, PrivacyCharge, PrivacySettlement]
    assert ledger.spent("p") == spent


def test_an_overrun_sums_every_charge() -> None:
    ledger = _ledger()
    r = ledger.reserve("p", (1.0, 1e-6))
    with pytest.raises(PrivacyBudgetExceeded) as info:
        ledger.settle(r, [_spend(0.75, 5e-7), _spend(0.5, 5e-7)])
    assert info.value.context["spent"] == (1.25, 1e-6)


@pytest.mark.parametrize("bad", [None, "r", ("r",)])
def test_settle_needs_the_reservation(storage, bad: object) -> None:
    ledger = _ledger(storage)
    ledger.reserve("p", (1.0, 0.0))
    before = storage.load_entries()
    with pytest.raises(ValidationError) as info:
        ledger.settle(bad, [])  # type: ignore[arg-type]
    assert info.value.errors == [{"row": None, "field": "reservation", "message": "invalid"}]
    assert str(info.value) == ("settle needs the PrivacyReservation that reserve returned, "
                               f"not {type(bad).__name__}")
    assert storage.load_entries() == before


@pytest.mark.parametrize("bad", [[(1.0, 0.0)], [_spend(0.5), "x"], "ab"])
def test_settle_needs_spends(storage, bad: object) -> None:
    ledger = _ledger(storage)
    r = ledger.reserve("p", (1.0, 0.0))
    with pytest.raises(ValidationError) as info:
        ledger.settle(r, bad)  # type: ignore[arg-type]
    assert info.value.errors == [{"row": None, "field": "spents", "message": "invalid"}]
    first_bad = next(s for s in bad if not isinstance(s, PrivacySpent))
    assert str(info.value) == f"settle needs PrivacySpent values, not {type(first_bad).__name__}"
    assert storage.load_entries() == [r]


def test_a_reservation_is_settled_once_and_only_in_its_ledger(storage) -> None:
    ledger = _ledger(storage)
    r = ledger.reserve("p", (1.0, 0.0))
    ledger.settle(r, [_spend(0.5)])
    before = storage.load_entries()
    for attempt in ([_spend(0.1)], []):
        with pytest.raises(ValidationError, match="already settled") as info:
            ledger.settle(r, attempt)
        assert info.value.errors == [{"row": None, "field": "reservation",
                                      "message": "settled"}]
    stranger = _ledger().reserve("p", (0.5, 0.0))
    with pytest.raises(ValidationError, match="not in this ledger") as info:
        ledger.settle(stranger, [])
    assert info.value.errors == [{"row": None, "field": "reservation", "message": "unknown"}]
    assert storage.load_entries() == before


def test_a_settlement_found_after_other_reservations_still_refuses(storage) -> None:
    """The check looks at every line: the settlement of ``r`` comes after the lines of
    other reservations, the reservation itself before them."""
    ledger = _ledger(storage)
    r = ledger.reserve("p", (1.0, 0.0))
    other = ledger.reserve("p", (1.0, 0.0))
    ledger.cancel(r)
    ledger.reserve("p", (1.0, 0.0))
    with pytest.raises(ValidationError, match="already settled"):
        ledger.cancel(r)
    ledger.cancel(other)


# ------------------------------------------------------------------- charge and run
def test_charge_writes_every_field(storage) -> None:
    clock = _Clock()
    ledger = _ledger(storage, clock)
    spent = PrivacySpent(mechanism="dp-x", epsilon=0.5, delta=1e-7, rho=0.02, steps=2)
    line = ledger.charge(spent, purpose="p", snapshot="s9")
    assert line.model_dump(include=set(PrivacySpent.model_fields)) == spent.model_dump()
    assert (line.purpose, line.snapshot, line.created_at, line.reservation_id,
            line.status) == ("p", "s9", T0, None, "settled")
    assert storage.load_entries() == [line]
    assert ledger.charge(_spend(0.25), purpose="p").snapshot is None


def test_run_reserves_what_is_planned_computes_and_settles(storage) -> None:
    clock = _Clock()
    ledger = _ledger(storage, clock, epsilon_budget=1.0, delta_budget=1e-6)
    seen: list[tuple[float, float]] = []

    def compute() -> tuple[str, PrivacySpent]:
        seen.append(ledger.spent("p"))  # the reservation is in place before the read
        clock.advance(seconds=3)
        return "model", _spend(0.5, 2e-7)

    result, line = ledger.run("p", epsilon=0.75, delta=5e-7, compute=compute, snapshot="s")
    assert result == "model"
    assert seen == [(0.75, 5e-7)]
    r, charge, closing = storage.load_entries()
    assert isinstance(r, PrivacyReservation)
    assert (r.epsilon, r.delta, r.snapshot, r.created_at) == (0.75, 5e-7, "s", T0)
    assert charge == line
    assert (line.epsilon, line.delta, line.snapshot, line.reservation_id, line.created_at) == (
        0.5, 2e-7, "s", r.reservation_id, T0 + timedelta(seconds=3))
    assert closing.charge_ids == (line.charge_id,)
    assert ledger.run("p", epsilon=0.25, delta=0.0,
                      compute=lambda: (1, _spend(0.25)))[1].snapshot is None


def test_a_run_whose_computation_fails_keeps_its_reservation(storage) -> None:
    ledger = _ledger(storage, epsilon_budget=1.0)

    def broken() -> tuple[str, PrivacySpent]:
        raise RuntimeError("the fit crashed after reading")

    with pytest.raises(RuntimeError):
        ledger.run("p", epsilon=0.75, delta=0.0, compute=broken)
    assert ledger.spending("p").pending == 1
    assert ledger.spent("p") == (0.75, 0.0)


# ------------------------------------------------------------------- construction
def test_a_ledger_keeps_its_settings() -> None:
    ledger = BudgetLedger(epsilon_budget=2, delta_budget=0)
    assert (ledger.epsilon_budget, ledger.delta_budget, ledger.period_days) == (2.0, 0.0, None)
    assert isinstance(ledger.epsilon_budget, float) and isinstance(ledger.delta_budget, float)
    assert isinstance(ledger.storage, MemoryChargeStorage)
    assert (ledger.policy.purpose, ledger.policy.epsilon, ledger.policy.delta,
            ledger.policy.period_days) == ("*", 2.0, 0.0, None)  # the same for every purpose
    assert BudgetLedger(epsilon_budget=1.0).delta_budget == 1e-5
    # the default clock is the system's, in UTC
    before = datetime.now(UTC)
    r = BudgetLedger(epsilon_budget=1.0).reserve("p", (0.5, 0.0))
    assert before <= r.created_at <= datetime.now(UTC)
    assert r.created_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("kwargs", [
    {"epsilon_budget": 0.0}, {"epsilon_budget": -1.0}, {"epsilon_budget": math.nan},
    {"epsilon_budget": 1.0, "delta_budget": 1.0}, {"epsilon_budget": 1.0, "delta_budget": -1e-9},
    {"epsilon_budget": 1.0, "period_days": 0},
])
def test_a_bad_budget_is_refused_with_its_field(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValidationError) as info:
        BudgetLedger(**kwargs)  # type: ignore[arg-type]
    assert info.value.code == "validation_error"
    assert info.value.errors == [{"row": None, "field": "epsilon_budget",
                                  "message": "out of range"}]
    got = (kwargs["epsilon_budget"], kwargs.get("delta_budget", 1e-5),
           kwargs.get("period_days"))
    assert str(info.value).startswith("epsilon_budget must be a finite number > 0")
    assert str(info.value).endswith(f"got ({got[0]!r}, {got[1]!r}, {got[2]!r})")


def test_a_clock_without_a_time_zone_is_refused_before_anything_is_written() -> None:
    storage = MemoryChargeStorage()
    ledger = BudgetLedger(storage, epsilon_budget=1.0,
                          clock=lambda: datetime(2026, 1, 1))
    for call in (lambda: ledger.reserve("p", (0.5, 0.0)),
                 lambda: ledger.charge(_spend(0.5), purpose="p"),
                 lambda: ledger.spent("p"), lambda: ledger.check("p", epsilon=0.1, delta=0.0)):
        with pytest.raises(ValidationError, match="without a time zone") as info:
            call()
        assert info.value.code == "validation_error"
    assert storage.load_entries() == []


def test_memory_storage_hands_out_copies() -> None:
    storage = MemoryChargeStorage()
    line = _spend(0.5).charge("p", at=T0)
    storage.append_charge(line)
    got = storage.load_entries()
    got.append(line)
    assert storage.load_entries() == [line]
    seen: list[list] = []
    storage.append_entries([line], check=seen.append)
    seen[0].append(line)
    assert storage.load_entries() == [line, line]
    assert storage.load_charges() == [line, line]


# ------------------------------------------------------------------- the JSON-lines file
def test_a_file_ledger_is_created_on_first_append_with_its_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.jsonl"
    storage = JsonlChargeStorage(str(path))
    assert storage.path == path
    assert storage.load_entries() == [] and storage.load_charges() == []
    assert not path.exists()  # reading creates nothing
    line = _spend(0.5).charge("p", at=T0)
    storage.append_charge(line)
    assert path.read_text() == line.model_dump_json() + "\n"
    assert storage.load_charges() == [line]


def test_a_file_ledger_skips_blank_lines_and_names_the_damaged_one(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    storage = JsonlChargeStorage(path)
    a, b = _spend(0.5).charge("p", at=T0), _spend(0.25).charge("p", at=T0)
    path.write_text("\n" + a.model_dump_json() + "\n  \n\n" + b.model_dump_json() + "\n")
    assert storage.load_entries() == [a, b]
    with path.open("a") as fh:
        fh.write('{"kind": "settlement"}\n')
    with pytest.raises(StoreError) as info:
        storage.load_entries()
    assert info.value.code == "store_error"
    assert f"privacy ledger {path} line 6 is damaged" in str(info.value)
    with pytest.raises(StoreError, match="line 6"):
        storage.append_entries([a], check=lambda entries: None)
    assert path.read_text().count("\n") == 6  # the refused append wrote nothing


def test_a_file_ledger_reads_under_a_shared_lock_and_appends_under_an_exclusive_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fcntl = pytest.importorskip("fcntl")
    import persona.privacy._ledger as module

    path = tmp_path / "ledger.jsonl"
    storage = JsonlChargeStorage(path)
    storage.append_charge(_spend(0.5).charge("p", at=T0))
    seen: list[str] = []

    def probe() -> None:
        """What another process could do to the file right now."""
        with path.open("r") as other:
            try:
                fcntl.flock(other.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                seen.append("exclusive")
                return
            try:
                fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                seen.append("shared")
                return
            fcntl.flock(other.fileno(), fcntl.LOCK_UN)
            seen.append("free")

    parse = module.ledger_entry_from_json

    def parse_and_probe(text: str):
        probe()
        return parse(text)

    monkeypatch.setattr(module, "ledger_entry_from_json", parse_and_probe)
    storage.load_entries()
    assert seen == ["shared"]
    seen.clear()
    storage.append_entries([], check=lambda entries: probe())
    assert seen == ["exclusive", "exclusive"]  # parsing the one line, then the check
    seen.clear()
    probe()
    assert seen == ["free"]  # released after each call


def test_a_file_ledger_works_without_file_locks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where ``fcntl`` is missing (Windows) appends are atomic within one process only, but
    the ledger still reads and writes."""
    import persona.privacy._ledger as module

    monkeypatch.setattr(module, "fcntl", None)
    ledger = _ledger(JsonlChargeStorage(tmp_path / "ledger.jsonl"), epsilon_budget=1.0)
    r = ledger.reserve("p", (0.75, 0.0))
    with pytest.raises(PrivacyBudgetExceeded):
        ledger.reserve("p", (0.5, 0.0))
    ledger.settle(r, [_spend(0.5)])
    assert ledger.spent("p") == (0.5, 0.0)
