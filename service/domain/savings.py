"""Savings of an upsell over one of its billing cycles, and how to show them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import lru_cache

from service.domain import pricing
from service.domain.catalog import Price, Recurring
from service.domain.money import format_money, format_whole_percent

# How many of the second unit fit in one of the first, where the ratio is exact by convention.
# Month to day and month to week have no exact ratio and are left out on purpose.
_UNIT_RATIOS: dict[tuple[str, str], int] = {
    ("week", "day"): 7,
    ("year", "month"): 12,
    ("year", "week"): 52,
    ("year", "day"): 365,
}


def ratio(of: Recurring, per: Recurring) -> Fraction | None:
    """How many `per` cycles one `of` cycle lasts, or None when the units have no exact ratio.

    A year is 12 months, 52 weeks or 365 days, a week 7 days: one year lasts 4 cycles of 3 months, one
    month 1/12 of a year; week to month is None.
    """
    if of.interval == per.interval:
        units = Fraction(1)
    elif (of.interval, per.interval) in _UNIT_RATIOS:
        units = Fraction(_UNIT_RATIOS[(of.interval, per.interval)])
    elif (per.interval, of.interval) in _UNIT_RATIOS:
        units = Fraction(1, _UNIT_RATIOS[(per.interval, of.interval)])
    else:
        return None
    return units * of.interval_count / per.interval_count


def cycles(initial: Recurring, upsell: Recurring) -> int | None:
    """How many initial cycles fit in one upsell cycle, or None when there is no exact whole number.

    Month to year is 12, week to year 52, day to year 365, month to 3 months 3; week to month is None.
    """
    count = ratio(upsell, initial)
    return None if count is None or count.denominator != 1 else count.numerator


@dataclass(frozen=True, slots=True)
class Savings:
    amount: int
    percent: Decimal  # of what the initial price would cost over the same time, two decimals, half-up
    display: str


@lru_cache(maxsize=4096)
def savings(initial: Price, upsell: Price, quantity: int, locale: str = "en") -> Savings | None:
    """What the buyer saves in one upsell cycle, or None when there is nothing to show.

    `cycles * amount(initial) - amount(upsell)`; 100 USD monthly to 1000 USD yearly saves 200 USD.
    """
    if initial.recurring is None or upsell.recurring is None:
        return None
    count = cycles(initial.recurring, upsell.recurring)
    if count is None or count < 1:
        return None
    baseline = count * pricing.amount(initial, quantity)
    saved = baseline - pricing.amount(upsell, quantity)
    if saved <= 0:
        return None
    exact = Fraction(saved * 100, baseline)
    percent = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return Savings(saved, percent, display(saved, exact, upsell.currency, locale))


def display(amount: int, percent: Fraction, currency: str, locale: str = "en") -> str:
    """The shorter of the amount (no zero fraction) and the floored percentage; the amount on a tie.

    The percentage is floored from the exact ratio, never from a rounded one, so 16.999% shows 16%.
    Below 1% it would read "save 0%", so the amount is shown instead.
    """
    as_amount = format_money(amount, currency, locale, trim_zero_fraction=True)
    whole = percent.numerator // percent.denominator
    if whole == 0:
        return as_amount
    as_percent = format_whole_percent(whole, locale)
    return as_percent if len(as_percent) < len(as_amount) else as_amount
