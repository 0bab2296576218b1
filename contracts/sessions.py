"""Checkout session bodies: the input a backend registers and the view a frontend reads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from contracts.catalog import Currency, Id, Instant, Text, in_utc

Quantity = Annotated[int, Meta(ge=1, le=1_000_000)]


class LineItemInput(Struct):
    """A price and how many of it."""

    price: Id
    quantity: Quantity = 1


class DiscountInput(Struct):
    """Either a coupon id or a customer-facing promotion code."""

    coupon: Id | None = None
    promotion_code: Text | None = None


class SubscriptionData(Struct):
    """Subscription settings; the trial length is kept when the buyer takes the upsell."""

    trial_period_days: Annotated[int, Meta(ge=0, le=730)] | None = None


class SessionInput(Struct):
    """A checkout session as a backend registers it (event data of `checkout.session.created`)."""

    id: Id
    mode: Literal["subscription", "payment", "setup"]
    currency: Currency
    line_items: Annotated[list[LineItemInput], Meta(min_length=1, max_length=100)]
    customer: Text | None = None
    locale: Annotated[str, Meta(max_length=35, pattern=r"^[A-Za-z0-9_\-]+$")] | None = None
    discounts: Annotated[list[DiscountInput], Meta(max_length=1)] = msgspec.field(default_factory=list)
    subscription_data: SubscriptionData | None = None
    expires_at: Instant | None = None
    """Default: 24 hours after registration."""
    metadata: Annotated[dict[Text, Text], Meta(max_length=50)] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.expires_at is not None:
            self.expires_at = in_utc(self.expires_at)


class RecurringView(Struct):
    """How often a recurring line item bills."""

    interval: Literal["day", "week", "month", "year"]
    interval_count: int


class LineItemView(Struct):
    """A line item with its amounts for the first invoice, in minor units."""

    price: str
    product: str
    quantity: int
    amount_subtotal: int
    amount_discount: int
    amount_total: int
    recurring: RecurringView | None


class DiscountView(Struct):
    """A discount applied to the session, with its duration so fulfillment can bill it later."""

    coupon: str
    promotion_code: str | None
    percent_off: str | None
    amount_off: int | None
    duration: Literal["once", "repeating", "forever"]
    duration_in_months: int | None
    amount: int
    """What it takes off the current line items, in minor units."""


class SavingsView(Struct):
    """Savings over one upsell cycle: raw amount, raw percent (two decimals), and the display string."""

    amount: int
    percent: str
    display: str


class OptionDisplay(Struct):
    """An option's strings, formatted with babel for the session's locale: show them as they are."""

    amount: str
    """One cycle: `$1,000.00`, `￥12,000` in ja."""
    per_interval: str
    """One cycle and how often it bills: `$1,000.00/year`, `$300.00/3 months`, `￥12,000/年`."""
    amount_total: str
    """The session's total if this option is selected: `$1,050.00`."""
    equivalent: str | None = None
    """This option's price per the other option's interval and how often it bills, to compare the two:
    `$83.33/month, billed yearly` on a yearly upsell of a monthly price (rounded half-up to the minor
    unit), `$1,200.00/year, billed monthly` on that monthly price, `83,33 $/Monat, jährlich abgerechnet`
    in de. Null where the two intervals are the same or have no exact ratio (week and month)."""


class UpsellOption(Struct):
    """One side of the offer, with what a page needs to show it without another call."""

    price: str
    interval: Literal["day", "week", "month", "year"]
    interval_count: int
    amount: int
    """One cycle for the session's quantity, tiers and transforms applied, before discounts (minor units)."""
    amount_total: int
    """The session's total if this option is selected, discounts applied (minor units)."""
    display: OptionDisplay


class UpsellOptions(Struct):
    """Both sides of the offer: `current` is always the session's original price, `upsell` the upsell
    price, whichever is selected."""

    current: UpsellOption
    upsell: UpsellOption


class UpsellView(Struct):
    """The upsell offer: whether the session qualifies (else `reason`), the prices, the selection."""

    eligible: bool
    reason: str | None
    price: str | None
    original_price: str | None
    selected: bool
    savings: SavingsView | None
    options: UpsellOptions | None = None
    """Both options as a page renders them; null when the session is not eligible."""


class SessionView(Struct, kw_only=True):
    """What a frontend shows and what the session events carry."""

    id: str
    status: Literal["open", "complete", "expired"]
    mode: Literal["subscription", "payment", "setup"]
    currency: str
    customer: str | None
    locale: str
    line_items: list[LineItemView]
    amount_subtotal: int
    amount_discount: int
    amount_total: int
    discounts: list[DiscountView]
    trial_period_days: int | None
    upsell: UpsellView
    version: int
    """Increases by one on every change."""
    metadata: dict[str, str]
    created: datetime
    expires_at: datetime


class CreatedSession(SessionView, kw_only=True):
    """Answer of `POST /v1/checkout/sessions`: the view and the client secret, shown once."""

    client_secret: str


class ClientSecret(Struct):
    """A new client secret for a session, shown once; the previous one stops working."""

    client_secret: str


class CompletedSession(SessionView, kw_only=True):
    """Data of `checkout.session.completed`: the final view and the completion fields."""

    completed_at: datetime
    payment: str | None
    upsell_accepted: bool


class UpsellToggle(Struct):
    """Body of `POST /v1/checkout/sessions/{id}/upsell`."""

    selected: bool


class CompleteRequest(Struct):
    """Body of `POST /v1/checkout/sessions/{id}/complete` (optional)."""

    payment: Text | None = None
    payment_intent: Text | None = None
    """Stripe's name for the same reference; used when `payment` is absent."""

    @property
    def reference(self) -> str | None:
        return self.payment if self.payment is not None else self.payment_intent
