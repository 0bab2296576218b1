"""What a plan change costs now and next: direction, proration and the next billing date.

Time is measured in whole seconds. A fraction of a minor unit is rounded half-up once, on the figure
it belongs to. A credit is never larger than what the current period cost.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Literal

from service.domain import pricing
from service.domain.catalog import Price, Product, Recurring
from service.domain.money import round_half_up

Direction = Literal["upgrade", "downgrade"]
Effective = Literal["immediately", "period_end"]

_PER_YEAR = {"day": 365, "week": 52, "month": 12, "year": 1}


def yearly_amount(price: Price, quantity: int) -> Fraction:
    """What a recurring price charges over a year, for ordering plans that bill on different intervals."""
    assert price.recurring is not None
    per_year = Fraction(_PER_YEAR[price.recurring.interval], price.recurring.interval_count)
    return pricing.amount(price, quantity) * per_year


def direction(
    current: tuple[Product, Price, int],
    target: tuple[Product, Price, int],
) -> Direction:
    """`upgrade` when the target ranks higher in the plan group, or, without ranks, costs more a year.

    Ranks decide when both products have one and they differ, so that an annual-to-monthly move to a
    higher-ranked plan is an upgrade although it bills less at once. A change of equal worth is not an
    upgrade: it waits for the period end like a downgrade.
    """
    (current_product, current_price, current_quantity) = current
    (target_product, target_price, target_quantity) = target
    ranks = (current_product.plan_rank, target_product.plan_rank)
    if ranks[0] is not None and ranks[1] is not None and ranks[0] != ranks[1]:
        return "upgrade" if ranks[1] > ranks[0] else "downgrade"
    more = yearly_amount(target_price, target_quantity) > yearly_amount(current_price, current_quantity)
    return "upgrade" if more else "downgrade"


def add_interval(start: datetime, recurring: Recurring) -> datetime:
    """One billing cycle after `start`; a month-end anchor is clamped (Jan 31 + 1 month = Feb 28/29).

    Months and years are counted on the UTC calendar: the same instant written with another offset can
    fall on another day of the month, and would give another billing date.
    """
    if start.utcoffset() != timedelta(0):
        raise ValueError(f"billing cycles are counted in UTC, not at offset {start.utcoffset()}")
    count = recurring.interval_count
    if recurring.interval == "day":
        return start + timedelta(days=count)
    if recurring.interval == "week":
        return start + timedelta(weeks=count)
    months = count * (12 if recurring.interval == "year" else 1)
    year, month0 = divmod(start.month - 1 + months, 12)
    year += start.year
    day = min(start.day, calendar.monthrange(year, month0 + 1)[1])
    return start.replace(year=year, month=month0 + 1, day=day)


def same_interval(a: Recurring, b: Recurring) -> bool:
    return (a.interval, a.interval_count) == (b.interval, b.interval_count)


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime

    def seconds(self) -> int:
        return max(1, int((self.end - self.start).total_seconds()))

    def remaining(self, at: datetime) -> int:
        """Whole seconds left at `at`, between none and the whole period."""
        left = int((self.end - at).total_seconds())
        return min(max(left, 0), self.seconds())


@dataclass(frozen=True, slots=True)
class Quote:
    """What a change charges now, what it credits, and the next invoice."""

    direction: Direction
    effective: Effective
    amount_due_now: int
    credit: int
    next_invoice_amount: int
    next_billing_date: datetime


def quote(
    current: tuple[Product, Price, int],
    target: tuple[Product, Price, int],
    period: Period,
    at: datetime,
    way: Direction | None = None,
    *,
    paid: bool = True,
) -> Quote:
    """Prices a change at `at`: upgrades now with proration, downgrades at the period end.

    `way` overrides the direction the plans imply: an upgrade path is an upgrade by definition, also
    from monthly to a yearly price that costs less a year.

    Same interval: the billing date stays and `due = (new - old) * remaining / period`. Another
    interval: the cycle restarts now, `credit = old * remaining / period`, `due = max(0, new - credit)`,
    and credit left over lowers the next invoice.
    """
    way = way or direction(current, target)
    old = pricing.amount(current[1], current[2])
    new = pricing.amount(target[1], target[2])
    if way == "downgrade":
        return Quote(way, "period_end", 0, 0, new, period.end)
    assert current[1].recurring is not None
    assert target[1].recurring is not None
    share = Fraction(period.remaining(at), period.seconds())
    # A period that was not paid for (a trial) leaves nothing to credit.
    credit = min(round_half_up(old * share), old) if paid else 0
    if same_interval(current[1].recurring, target[1].recurring):
        difference = round_half_up((new - (old if paid else 0)) * share)
        due = max(difference, 0)
        leftover = max(-difference, 0)
        return Quote(way, "immediately", due, credit, max(new - leftover, 0), period.end)
    due = max(new - credit, 0)
    leftover = max(credit - new, 0)
    next_date = add_interval(at, target[1].recurring)
    return Quote(way, "immediately", due, credit, max(new - leftover, 0), next_date)
