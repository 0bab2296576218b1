"""Plan-change direction, proration and next billing dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.catalog import Interval, Price, Product, Recurring
from service.domain.proration import Period, add_interval, direction, quote

JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)
JAN_31 = datetime(2026, 1, 31, tzinfo=UTC)
MONTH = Period(JAN_1, datetime(2026, 2, 1, tzinfo=UTC))  # 31 days
YEAR = Period(JAN_1, datetime(2027, 1, 1, tzinfo=UTC))


def plan(product_id: str, rank: int | None = None) -> Product:
    return Product(product_id, product_id.title(), plan_group="g", plan_rank=rank)


def price(price_id: str, unit_amount: int, interval: Interval = "month", product: str = "basic") -> Price:
    return Price(price_id, product, "usd", unit_amount=unit_amount, recurring=Recurring(interval))


BASIC = plan("basic", 1)
PREMIUM = plan("premium", 2)


@pytest.mark.parametrize(
    ("current", "target", "expected"),
    [
        # Ranks decide: an annual-to-monthly move to a higher-ranked plan is an upgrade although it bills less now.
        ((BASIC, price("b_y", 100_000, "year"), 1), (PREMIUM, price("p_m", 10_000), 1), "upgrade"),
        ((PREMIUM, price("p_m", 10_000), 1), (BASIC, price("b_y", 100_000, "year"), 1), "downgrade"),
        # Without ranks, the amount per year: 10,000 a month (120,000) beats 100,000 a year.
        ((plan("a"), price("a_y", 100_000, "year"), 1), (plan("b"), price("b_m", 10_000), 1), "upgrade"),
        ((plan("a"), price("a_m", 10_000), 1), (plan("b"), price("b_y", 100_000, "year"), 1), "downgrade"),
        # Equal ranks fall back to amounts; equal worth is not an upgrade.
        ((plan("a", 1), price("a_m", 1_000), 1), (plan("b", 1), price("b_m", 1_000), 2), "upgrade"),
        ((plan("a"), price("a_m", 1_000), 1), (plan("b"), price("b_w", 12_000, "year"), 1), "downgrade"),
    ],
)
def test_direction(current: tuple[Product, Price, int], target: tuple[Product, Price, int], expected: str) -> None:
    assert direction(current, target) == expected


def test_same_interval_upgrade_charges_the_difference_for_the_time_left() -> None:
    # 10 days of a 31-day month left: (3,000 - 1,000) * 10 / 31 = 645.16 -> 645.
    at = MONTH.end - timedelta(days=10)
    q = quote((BASIC, price("b", 1_000), 1), (PREMIUM, price("p", 3_000), 1), MONTH, at)
    assert (q.direction, q.effective) == ("upgrade", "immediately")
    assert q.amount_due_now == 645
    assert q.credit == 323  # 1,000 * 10 / 31 = 322.58
    assert q.next_invoice_amount == 3_000
    assert q.next_billing_date == MONTH.end


def test_half_a_minor_unit_rounds_up_once() -> None:
    # Half of the period left: (1,001 - 0) * 1/2 = 500.5 -> 501.
    period = Period(JAN_1, JAN_1 + timedelta(days=2))
    q = quote((BASIC, price("b", 0), 1), (PREMIUM, price("p", 1_001), 1), period, JAN_1 + timedelta(days=1))
    assert q.amount_due_now == 501


def test_interval_change_restarts_the_cycle_and_carries_leftover_credit() -> None:
    # Monthly 1,000 to a premium yearly 10,000 with the whole month left: credit 1,000, due 9,000.
    q = quote((BASIC, price("b", 1_000), 1), (PREMIUM, price("p", 10_000, "year"), 1), MONTH, JAN_1)
    assert (q.amount_due_now, q.credit, q.next_invoice_amount) == (9_000, 1_000, 10_000)
    assert q.next_billing_date == datetime(2027, 1, 1, tzinfo=UTC)


def test_credit_above_the_new_price_goes_to_the_next_invoice() -> None:
    # Yearly 120,000 with half a year left (credit 60,000) to a higher-ranked monthly 20,000: nothing due
    # now, 40,000 of credit left, so the next monthly invoice is 0 (the rest is not refunded here).
    half = YEAR.start + (YEAR.end - YEAR.start) / 2
    q = quote((BASIC, price("b", 120_000, "year"), 1), (PREMIUM, price("p", 20_000), 1), YEAR, half)
    assert (q.amount_due_now, q.credit) == (0, 60_000)
    assert q.next_invoice_amount == 0
    assert q.next_billing_date == datetime(2026, 8, 2, 12, tzinfo=UTC)


def test_credit_partly_used_lowers_the_next_invoice() -> None:
    # Yearly 12,000 with half left (credit 6,000) to a higher-ranked monthly 5,000: 1,000 left over.
    half = YEAR.start + (YEAR.end - YEAR.start) / 2
    q = quote((BASIC, price("b", 12_000, "year"), 1), (PREMIUM, price("p", 5_000), 1), YEAR, half)
    assert (q.amount_due_now, q.credit, q.next_invoice_amount) == (0, 6_000, 4_000)


def test_a_second_upgrade_in_the_same_period_credits_the_plan_held_now() -> None:
    basic, premium, ultimate = price("b", 1_000), price("p", 3_000), price("u", 6_000)
    first_at = MONTH.start + timedelta(days=11)  # 20 of 31 days left
    first = quote((BASIC, basic, 1), (PREMIUM, premium, 1), MONTH, first_at)
    assert first.amount_due_now == 1_290  # 2,000 * 20 / 31 = 1,290.32
    second_at = MONTH.end - timedelta(days=10)
    second = quote((PREMIUM, premium, 1), (plan("ultimate", 3), ultimate, 1), MONTH, second_at)
    assert second.amount_due_now == 968  # 3,000 * 10 / 31 = 967.74
    assert second.credit == 968  # what is left of the premium month, not of the basic one


def test_downgrade_waits_for_the_period_end() -> None:
    q = quote((PREMIUM, price("p", 3_000), 1), (BASIC, price("b", 1_000), 1), MONTH, JAN_1 + timedelta(days=3))
    assert (q.direction, q.effective, q.amount_due_now, q.credit) == ("downgrade", "period_end", 0, 0)
    assert (q.next_invoice_amount, q.next_billing_date) == (1_000, MONTH.end)


def test_after_the_period_end_nothing_is_left_to_credit() -> None:
    q = quote((BASIC, price("b", 1_000), 1), (PREMIUM, price("p", 3_000), 1), MONTH, MONTH.end + timedelta(hours=1))
    assert (q.amount_due_now, q.credit) == (0, 0)


@pytest.mark.parametrize(
    ("start", "recurring", "expected"),
    [
        (JAN_31, Recurring("month"), datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2028, 1, 31, tzinfo=UTC), Recurring("month"), datetime(2028, 2, 29, tzinfo=UTC)),
        (JAN_31, Recurring("month", 3), datetime(2026, 4, 30, tzinfo=UTC)),
        (datetime(2026, 11, 15, tzinfo=UTC), Recurring("month", 3), datetime(2027, 2, 15, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), Recurring("year"), datetime(2029, 2, 28, tzinfo=UTC)),
        (JAN_1, Recurring("week", 2), datetime(2026, 1, 15, tzinfo=UTC)),
        (JAN_1, Recurring("day", 45), datetime(2026, 2, 15, tzinfo=UTC)),
    ],
)
def test_add_interval(start: datetime, recurring: Recurring, expected: datetime) -> None:
    assert add_interval(start, recurring) == expected


amounts = st.integers(min_value=0, max_value=10_000_000)
intervals = st.sampled_from(["day", "week", "month", "year"])


@given(
    old=amounts,
    new=amounts,
    old_interval=intervals,
    new_interval=intervals,
    elapsed=st.floats(min_value=0, max_value=1.2),
)
def test_credit_never_exceeds_what_was_paid_and_nothing_is_negative(
    old: int, new: int, old_interval: Interval, new_interval: Interval, elapsed: float
) -> None:
    at = MONTH.start + (MONTH.end - MONTH.start) * elapsed
    q = quote((BASIC, price("b", old, old_interval), 1), (PREMIUM, price("p", new, new_interval), 1), MONTH, at)
    assert 0 <= q.credit <= old
    assert q.amount_due_now >= 0
    assert 0 <= q.next_invoice_amount <= new
    if q.effective == "immediately" and old_interval != new_interval and q.credit <= 2 * new:
        # The credit is spent in full over the charge now and the next invoice (when they can take it).
        assert q.amount_due_now + q.next_invoice_amount == 2 * new - q.credit
