"""Savings of an upsell over one upsell cycle and their display."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from service.domain.catalog import Interval, Price, Recurring, Tier, TransformQuantity
from service.domain.money import format_money, format_whole_percent
from service.domain.pricing import amount
from service.domain.savings import Savings, cycles, display, savings

NBSP = "\xa0"


def price(
    price_id: str,
    unit_amount: int | None,
    interval: Interval,
    count: int = 1,
    currency: str = "usd",
    **extra: Any,
) -> Price:
    return Price(
        price_id,
        "prod_pro",
        currency,
        unit_amount=unit_amount,
        recurring=Recurring(interval, count),
        **extra,
    )


@pytest.mark.parametrize(
    ("initial", "upsell", "expected"),
    [
        (Recurring("month"), Recurring("year"), 12),
        (Recurring("week"), Recurring("year"), 52),
        (Recurring("day"), Recurring("year"), 365),
        (Recurring("day"), Recurring("week"), 7),
        (Recurring("month"), Recurring("month", 3), 3),
        (Recurring("month", 2), Recurring("year"), 6),
        (Recurring("month", 3), Recurring("year"), 4),
        (Recurring("month"), Recurring("year", 2), 24),
        (Recurring("week"), Recurring("day", 14), 2),
        (Recurring("month"), Recurring("month"), 1),
        (Recurring("month", 12), Recurring("year"), 1),
        (Recurring("week"), Recurring("month"), None),
        (Recurring("month"), Recurring("week"), None),
        (Recurring("day"), Recurring("month"), None),
        (Recurring("year"), Recurring("month"), None),
        (Recurring("month", 5), Recurring("year"), None),
        (Recurring("month", 6), Recurring("month", 3), None),
        (Recurring("day", 14), Recurring("week"), None),
    ],
    ids=[
        "month-to-year-12",
        "week-to-year-52",
        "day-to-year-365",
        "day-to-week-7",
        "month-to-quarter-3",
        "2-months-to-year-6",
        "quarter-to-year-4",
        "month-to-2-years-24",
        "week-to-14-days-2",
        "same-interval-1",
        "12-months-to-year-1",
        "week-to-month-none",
        "month-to-week-none",
        "day-to-month-none",
        "year-to-month-shorter-none",
        "5-months-to-year-none",
        "6-months-to-quarter-shorter-none",
        "14-days-to-week-shorter-none",
    ],
)
def test_cycles(initial: Recurring, upsell: Recurring, expected: int | None) -> None:
    assert cycles(initial, upsell) == expected


MONTHLY = price("price_monthly", 10000, "month")
YEARLY = price("price_yearly", 100000, "year")


def test_seed_example_monthly_100_to_yearly_1000() -> None:
    result = savings(MONTHLY, YEARLY, 1)
    assert result == Savings(20000, Decimal("16.67"), "16%")
    assert format_money(result.amount, "usd", trim_zero_fraction=True) == "$200"


@pytest.mark.parametrize(
    ("initial", "upsell", "quantity"),
    [
        (MONTHLY, price("price_yearly", 120000, "year"), 1),
        (MONTHLY, price("price_yearly", 150000, "year"), 1),
        (MONTHLY, YEARLY, 0),
        (MONTHLY, price("price_monthly_q", 30000, "month", 3), 1),
        (price("price_weekly", 2500, "week"), price("price_month", 8000, "month"), 1),
        (YEARLY, MONTHLY, 1),
        (Price("price_once", "prod_pro", "usd", type="one_time", unit_amount=10000), YEARLY, 1),
    ],
    ids=[
        "zero-savings",
        "negative-savings",
        "zero-quantity",
        "quarterly-same-cost",
        "week-to-month-no-exact-ratio",
        "year-to-month-shorter",
        "one-time-initial",
    ],
)
def test_no_savings_shown(initial: Price, upsell: Price, quantity: int) -> None:
    assert savings(initial, upsell, quantity) is None


@pytest.mark.parametrize(
    ("initial", "upsell", "quantity", "locale", "expected"),
    [
        (MONTHLY, YEARLY, 3, "en", Savings(60000, Decimal("16.67"), "16%")),
        (
            price("m", 1000, "month", currency="jpy"),
            price("y", 10000, "year", currency="jpy"),
            1,
            "en",
            Savings(2000, Decimal("16.67"), "16%"),
        ),
        (
            price("m", 100, "month", currency="jpy"),
            price("y", 1195, "year", currency="jpy"),
            1,
            "en",
            Savings(5, Decimal("0.42"), "¥5"),
        ),
        (
            price("m", 10000, "month", currency="kwd"),
            price("y", 100000, "year", currency="kwd"),
            1,
            "en",
            Savings(20000, Decimal("16.67"), "16%"),
        ),
        (
            price("m", 10000, "month", currency="kwd"),
            price("y", 99500, "year", currency="kwd"),
            1,
            "en",
            Savings(20500, Decimal("17.08"), "17%"),
        ),
        (price("m", 100, "month"), price("y", 700, "year"), 1, "en", Savings(500, Decimal("41.67"), "$5")),
        (price("m", 1000, "month"), price("y", 11500, "year"), 1, "en", Savings(500, Decimal("4.17"), "$5")),
        (MONTHLY, price("y", 99601, "year"), 1, "en", Savings(20399, Decimal("17.00"), "16%")),
        (MONTHLY, YEARLY, 1, "de", Savings(20000, Decimal("16.67"), f"16{NBSP}%")),
        (
            price("m", 100, "month"),
            price("y", 700, "year"),
            1,
            "de",
            Savings(500, Decimal("41.67"), f"5{NBSP}$"),
        ),
        (
            price("w", 1000, "week"),
            price("y", 26000, "year"),
            1,
            "en",
            Savings(26000, Decimal("50.00"), "50%"),
        ),
        (price("d", 100, "day"), price("w", 600, "week"), 1, "en", Savings(100, Decimal("14.29"), "$1")),
    ],
    ids=[
        "quantity-3",
        "jpy-zero-decimal",
        "jpy-amount-ties-percent",
        "kwd-three-decimals",
        "kwd-fraction",
        "usd-amount-shorter",
        "usd-tie-goes-to-amount",
        "percent-floored-not-rounded",
        "de-percent",
        "de-amount",
        "weekly-to-yearly",
        "daily-to-weekly",
    ],
)
def test_savings(initial: Price, upsell: Price, quantity: int, locale: str, expected: Savings) -> None:
    assert savings(initial, upsell, quantity, locale) == expected


TIERS_MONTHLY = (Tier(5, 2000), Tier(None, 1500))
TIERS_YEARLY = (Tier(5, 20000), Tier(None, 15000))


@pytest.mark.parametrize(
    ("mode", "quantity", "saved"),
    [
        ("graduated", 3, 12 * 6000 - 60000),
        ("graduated", 7, 12 * 13000 - 130000),
        ("volume", 7, 12 * 10500 - 105000),
    ],
    ids=["graduated-first-tier", "graduated-two-tiers", "volume"],
)
def test_savings_apply_tiers(mode: str, quantity: int, saved: int) -> None:
    extra: dict[str, Any] = {"billing_scheme": "tiered", "tiers_mode": mode}
    initial = price("m", None, "month", tiers=TIERS_MONTHLY, **extra)
    upsell = price("y", None, "year", tiers=TIERS_YEARLY, **extra)
    result = savings(initial, upsell, quantity)
    assert result is not None
    assert result.amount == saved
    assert result.percent == Decimal("16.67")


def test_savings_apply_transform_quantity() -> None:
    packs = TransformQuantity(5, "up")
    initial = price("m", 1000, "month", transform_quantity=packs)
    upsell = price("y", 10000, "year", transform_quantity=packs)
    result = savings(initial, upsell, 11)
    assert result == Savings(12 * 3000 - 30000, Decimal("16.67"), "$60")


@pytest.mark.parametrize(
    ("saved", "percent", "currency", "locale", "expected"),
    [
        (20000, Fraction(50, 3), "usd", "en", "16%"),
        (500, Fraction(50), "usd", "en", "$5"),
        (500, Fraction(5), "usd", "en", "$5"),
        (550, Fraction(5), "usd", "en", "5%"),
        (20050, Fraction(16999, 1000), "usd", "en", "16%"),
        (20050, Fraction(99, 100), "usd", "en", "$200.50"),
        (2000, Fraction(50, 3), "jpy", "en", "16%"),
        (5, Fraction(1, 2), "jpy", "en", "¥5"),
        (5000, Fraction(100), "kwd", "en", "KWD5"),
        (5500, Fraction(100), "kwd", "en", "100%"),
        (20000, Fraction(50, 3), "usd", "de", f"16{NBSP}%"),
        (500, Fraction(50), "usd", "de", f"5{NBSP}$"),
        (500, Fraction(5), "usd", "de", f"5{NBSP}$"),
    ],
    ids=[
        "percent-shorter",
        "amount-shorter",
        "tie-goes-to-amount",
        "amount-with-cents-longer",
        "floored-16.999",
        "floored-below-one",
        "jpy-percent",
        "jpy-amount-tie",
        "kwd-zero-fraction-tie",
        "kwd-fraction-kept",
        "de-percent",
        "de-amount-shorter",
        "de-tie-goes-to-amount",
    ],
)
def test_display(saved: int, percent: Fraction, currency: str, locale: str, expected: str) -> None:
    assert display(saved, percent, currency, locale) == expected


def test_display_default_locale_is_en() -> None:
    assert display(20000, Fraction(50, 3), "usd") == "16%"


intervals = st.sampled_from([("day", 1), ("week", 1), ("month", 1), ("month", 3), ("month", 2), ("year", 1)])


@given(
    initial_unit=st.integers(0, 200_000),
    upsell_unit=st.integers(0, 3_000_000),
    quantity=st.integers(0, 50),
    initial_interval=intervals,
    upsell_interval=intervals,
    currency=st.sampled_from(["usd", "jpy", "kwd"]),
    locale=st.sampled_from(["en", "de"]),
)
@example(  # a saving of 0.01 USD on 24,000 USD: below 1 %
    initial_unit=200_000,
    upsell_unit=2_399_999,
    quantity=1,
    initial_interval=("month", 1),
    upsell_interval=("year", 1),
    currency="usd",
    locale="en",
)
def test_savings_properties(
    initial_unit: int,
    upsell_unit: int,
    quantity: int,
    initial_interval: tuple[Interval, int],
    upsell_interval: tuple[Interval, int],
    currency: str,
    locale: str,
) -> None:
    initial = price("i", initial_unit, *initial_interval, currency=currency)
    upsell = price("u", upsell_unit, *upsell_interval, currency=currency)
    result = savings(initial, upsell, quantity, locale)
    assert initial.recurring is not None
    assert upsell.recurring is not None
    count = cycles(initial.recurring, upsell.recurring)
    if result is None:
        if count is not None:
            assert count * amount(initial, quantity) <= amount(upsell, quantity)
        return
    assert count is not None
    baseline = count * amount(initial, quantity)
    assert 0 < result.amount == baseline - amount(upsell, quantity)
    exact = Fraction(result.amount * 100, baseline)
    assert abs(Fraction(result.percent) - exact) <= Fraction(1, 200)
    as_amount = format_money(result.amount, currency, locale, trim_zero_fraction=True)
    shown_percent = exact.numerator // exact.denominator
    as_percent = format_whole_percent(shown_percent, locale)
    assert result.display in (as_amount, as_percent)
    if shown_percent == 0:
        # Below 1 % the amount is shown, never "0%".
        assert result.display == as_amount
        return
    assert len(result.display) <= min(len(as_amount), len(as_percent))
    if result.display != as_amount:
        assert len(as_percent) < len(as_amount)
        assert shown_percent <= exact
        assert Fraction(int(result.display.rstrip("%").strip(f" {NBSP}"))) <= exact
