"""Subscription-change bodies: API keys, the subscription mirror, change options and
previews, product switches, upgrade paths, upgrade orders, upgrade links and the summary report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from contracts.catalog import Country, Currency, Id, Instant, Text, in_utc

Role = Literal["admin", "backend", "operator", "viewer"]
Quantity = Annotated[int, Meta(ge=1, le=1_000_000)]


class ApiKeyInput(Struct):
    """A new API key: a name for people and the roles it carries."""

    name: Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
    roles: Annotated[list[Role], Meta(min_length=1, max_length=4)]


class ApiKey(Struct):
    """An API key as created; `secret` is shown this once and only its hash is kept."""

    id: str
    name: str
    roles: list[Role]
    secret: str


class PaymentMethod(Struct):
    """How the subscription pays; upgrade orders on behalf need `card`."""

    type: Annotated[str, Meta(min_length=1, max_length=50, pattern=r"^[a-z_]+$")]


class Subscription(Struct):
    """The mirror of a subscription, written by the billing system."""

    customer: Text
    price: Id
    status: Literal["trialing", "active", "past_due", "canceled", "unpaid", "incomplete", "paused"]
    current_period_start: Instant
    current_period_end: Instant
    payment_method: PaymentMethod
    currency: Currency
    quantity: Quantity = 1
    location: Country | None = None
    id: Id | None = None

    def __post_init__(self) -> None:
        self.current_period_start = in_utc(self.current_period_start)
        self.current_period_end = in_utc(self.current_period_end)


class ChangeOption(Struct):
    """One plan to move to, with what moving there costs at the instant asked about."""

    price: str
    product: str
    direction: Literal["upgrade", "downgrade"] | None
    effective: Literal["immediately", "period_end"] | None
    amount_due_now: int
    credit: int
    next_invoice_amount: int
    next_billing_date: datetime
    no_change: bool = False
    message: str | None = None
    quantity: int = 1
    discount: int = 0
    """What a promotion code takes off `amount_due_now` (already deducted)."""


class AddonOption(Struct):
    """An add-on of the plan group, bought beside the plan."""

    product: str
    price: str
    name: str
    unit_amount: int | None
    recurring: bool


class ChangeOptions(Struct):
    """The plans of the subscription's plan group, and its add-ons."""

    subscription: str
    options: list[ChangeOption]
    addons: list[AddonOption]


class ChangePreviewRequest(Struct):
    """A price to move to, and optionally a quantity and a promotion code."""

    price: Id
    quantity: Quantity | None = None
    promotion_code: Text | None = None


class ProductSwitchRequest(Struct):
    """The product to switch the subscription to; its price is matched by currency and location."""

    product: Id


class ProductSwitched(Struct):
    """A product switch: effective at the next billing date, never with a trial."""

    subscription: str
    product: str
    product_name: str
    price: str
    effective_at: datetime
    trial_applied: bool = False


class CurrentCard(Struct, tag_field="method", tag="current"):
    """Charge the card on file."""


class NewCard(Struct, tag_field="method", tag="new"):
    """Charge a new card, given as a token from the payment provider (never a card number)."""

    card_token: Annotated[str, Meta(min_length=1, max_length=255)]


class UpgradeOrderRequest(Struct):
    """An upgrade placed on a customer's behalf, by path or by destination price."""

    payment: CurrentCard | NewCard
    upgrade_path: Id | None = None
    to_price: Id | None = None
    quantity: Quantity | None = None
    promotion_code: Text | None = None


class UpgradeOrder(Struct):
    """An upgrade order as placed, also the data of `upgrade_order.created`."""

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
    currency: str = ""
    upgrade_path: str | None = None
    promotion_code: str | None = None


class UpgradeLinkRequest(Struct):
    """A link for one subscription to take an upgrade path; `expires_in` in seconds."""

    subscription: Id
    expires_in: Annotated[int, Meta(ge=60, le=90 * 24 * 3600)] = 7 * 24 * 3600


class UpgradeLink(Struct):
    """A signed, expiring, single-use upgrade link."""

    token: str
    url: str
    expires_at: datetime


class UpgradeLinkView(Struct):
    """What an upgrade link offers: the destination and what taking it costs now."""

    name: str
    to_price: str
    subscription: str
    expires_at: datetime
    preview: ChangeOption


class UpgradeLinkAccept(Struct):
    """How to pay when accepting an upgrade link (default: the card on file)."""

    payment: CurrentCard | NewCard = msgspec.field(default_factory=CurrentCard)


class Counted(Struct):
    """How many, and for how much in minor units."""

    count: int
    amount: int


class UpsellFigures(Struct):
    """Upsells offered at checkout, taken, and what taking them added."""

    offered: int
    accepted: int
    take_rate: str
    amount: int


class CurrencyReport(Struct):
    """First purchases, upgrades and upsells of one currency, kept apart."""

    first_purchases: Counted
    upgrades: Counted
    upsells: UpsellFigures


class Report(Struct):
    """The summary over `[from, to)`, per currency."""

    from_: datetime = msgspec.field(name="from")
    to: datetime = msgspec.field(name="to")
    currencies: dict[str, CurrencyReport] = msgspec.field(default_factory=dict)
