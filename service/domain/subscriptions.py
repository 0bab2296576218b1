"""Subscriptions, upgrade paths and what an upgrade order charges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from service.domain.catalog import Coupon, Price, Product, Violations
from service.domain.coupons import applies
from service.domain.money import round_half_up
from service.domain.proration import Period, Quote, quote

PricingRule = Literal["prorate", "fixed", "percent_off"]


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    type: str


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    customer: str
    price: str
    status: str
    current_period_start: datetime
    current_period_end: datetime
    payment_method: PaymentMethod
    currency: str
    quantity: int = 1
    location: str | None = None

    @property
    def period(self) -> Period:
        return Period(self.current_period_start, self.current_period_end)

    @property
    def paid(self) -> bool:
        """Whether the current period was paid for (a trial was not, so it leaves no credit)."""
        return self.status != "trialing"


CHANGEABLE = frozenset({"active", "trialing"})
"""Statuses in which a subscription may be upgraded; a canceled or unpaid one may not."""


def subscription_violations(subscription: Subscription) -> Violations:
    problems = Violations()
    if subscription.current_period_end <= subscription.current_period_start:
        problems.add(
            "invalid_period", "`current_period_end` must be after `current_period_start`", "current_period_end"
        )
    return problems


@dataclass(frozen=True, slots=True)
class UpgradePricing:
    type: PricingRule = "prorate"
    amount: int | None = None
    percent: Decimal | None = None


@dataclass(frozen=True, slots=True)
class UpgradePath:
    id: str
    name: str
    to_price: str
    from_product: str | None = None
    from_price: str | None = None
    pricing: UpgradePricing = UpgradePricing()
    active: bool = True

    def starts_from(self, price: Price) -> bool:
        return self.from_price == price.id if self.from_price is not None else self.from_product == price.product


def upgrade_path_violations(path: UpgradePath) -> Violations:
    problems = Violations()
    if (path.from_product is None) == (path.from_price is None):
        problems.add("from_required", "give exactly one of `from_product` and `from_price`", "from_product")
    percent = path.pricing.percent
    if path.pricing.type == "percent_off" and not (
        percent is not None and percent.is_finite() and 0 < percent <= 100 and percent == round(percent, 2)
    ):
        problems.add(
            "invalid_percent", "`percent` must be above 0, at most 100, two decimals at most", "pricing.percent"
        )
    return problems


def path_amount(path: UpgradePath, prorated: int) -> int:
    """What the path's pricing rule charges now, given what a prorated change would."""
    if path.pricing.type == "fixed":
        return path.pricing.amount or 0
    if path.pricing.type == "percent_off":
        off = Fraction(path.pricing.percent or 0) / 100
        return round_half_up(prorated * (1 - off))
    return prorated


def coupon_discount(coupon: Coupon, product: str, amount: int) -> int:
    """What a coupon takes off one charge of `product`; never more than the charge."""
    if not applies(coupon, product):
        return 0
    if coupon.percent_off is not None:
        return min(round_half_up(Fraction(amount) * Fraction(coupon.percent_off) / 100), amount)
    return min(coupon.amount_off or 0, amount)


@dataclass(frozen=True, slots=True)
class Charge:
    """A priced change: the quote, then the path rule and the coupon applied to the amount due now."""

    quote: Quote
    amount_due_now: int
    discount: int


def price_change(
    current: tuple[Product, Price, int],
    target: tuple[Product, Price, int],
    period: Period,
    at: datetime,
    path: UpgradePath | None = None,
    coupon: Coupon | None = None,
    *,
    paid: bool = True,
) -> Charge:
    """The one computation behind every preview and every order, so that they always agree.

    With an upgrade path the change is an upgrade, charged now by the path's rule.
    """
    q = quote(current, target, period, at, "upgrade" if path is not None else None, paid=paid)
    due = q.amount_due_now if path is None else path_amount(path, q.amount_due_now)
    discount = 0 if coupon is None else coupon_discount(coupon, target[0].id, due)
    return Charge(q, due - discount, discount)


@dataclass(frozen=True, slots=True)
class UpgradeOrder:
    """An upgrade placed on a customer's behalf: who placed it and what it charged."""

    id: str
    subscription: str
    from_price: str
    to_price: str
    quantity: int
    amount_due_now: int
    discount: int
    placed_by: str
    payment_method: Literal["current", "new"]
    created: datetime
    currency: str
    upgrade_path: str | None = None
    promotion_code: str | None = None


@dataclass(frozen=True, slots=True)
class UpgradeLinkRecord:
    """The stored side of an upgrade link; the token is its id signed."""

    id: str
    upgrade_path: str
    subscription: str
    expires_at: datetime
    used_at: datetime | None = None
    upgrade_order: str | None = None
