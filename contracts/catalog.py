"""Catalog bodies: products, prices, coupons, promotion codes, upsell pairs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

Id = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Currency = Annotated[str, Meta(pattern=r"^[a-z]{3}$", description="ISO 4217 code, lower case")]
MinorUnits = Annotated[int, Meta(ge=0, le=10**15, description="Amount in the currency's minor unit")]
Text = Annotated[str, Meta(max_length=500, pattern=r"^[^\x00]*$", description="Free text, no NUL characters")]
Instant = Annotated[
    datetime, Meta(tz=True, description="RFC 3339 with a time zone offset; kept, computed with and answered in UTC")
]
Country = Annotated[str, Meta(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 country code")]


def in_utc(value: datetime) -> datetime:
    """The same instant written in UTC. Every instant from outside is converted on the way in, so that
    calendar arithmetic (one month later, one year later) does not depend on the offset a caller wrote,
    and answers are written with `Z`."""
    return value.astimezone(UTC)


class Product(Struct):
    """A product: a plan or an add-on, optionally in a plan group with a rank (higher is more)."""

    name: Annotated[str, Meta(min_length=1, max_length=500, pattern=r"^[^\x00]*$")]
    id: Id | None = None
    kind: Literal["plan", "addon"] = "plan"
    plan_group: Text | None = None
    plan_rank: int | None = None
    active: bool = True


class Recurring(Struct):
    """How often a recurring price bills."""

    interval: Literal["day", "week", "month", "year"]
    interval_count: Annotated[int, Meta(ge=1, le=1000)] = 1
    usage_type: Literal["licensed", "metered"] = "licensed"


class Tier(Struct):
    """One tier of a tiered price; `up_to: null` is the last, unbounded tier."""

    up_to: Annotated[int, Meta(ge=1)] | None
    unit_amount: MinorUnits = 0
    flat_amount: MinorUnits = 0


class TransformQuantity(Struct):
    """Divides the quantity before pricing, rounding `up` or `down` (for example per pack of 5)."""

    divide_by: Annotated[int, Meta(ge=1)]
    round: Literal["up", "down"]


class Price(Struct):
    """A price of a product, per unit or tiered, one-time or recurring."""

    product: Id
    currency: Currency
    id: Id | None = None
    type: Literal["recurring", "one_time"] = "recurring"
    billing_scheme: Literal["per_unit", "tiered"] = "per_unit"
    unit_amount: MinorUnits | None = None
    tiers: list[Tier] = msgspec.field(default_factory=list)
    tiers_mode: Literal["graduated", "volume"] | None = None
    recurring: Recurring | None = None
    tax_behavior: Literal["inclusive", "exclusive", "unspecified"] = "unspecified"
    transform_quantity: TransformQuantity | None = None
    location: Country | None = None
    trial_period_days: Annotated[int, Meta(ge=0, le=730)] | None = None
    active: bool = True
    default: bool = False
    upsell: Id | None = None
    """The price this one upsells to; set through `PUT /v1/prices/{id}/upsell` or here."""


class UpsellPair(Struct):
    """Body of `PUT /v1/prices/{id}/upsell`: the upsell price."""

    price: Id


class Coupon(Struct):
    """A discount: `percent_off` or `amount_off` with `currency`, once, repeating or forever."""

    id: Id | None = None
    name: Text | None = None
    percent_off: Annotated[Decimal, Meta(description="Above 0, at most 100; a number or a decimal string")] | None = (
        None
    )
    amount_off: Annotated[int, Meta(gt=0, le=10**15)] | None = None
    currency: Currency | None = None
    duration: Literal["once", "repeating", "forever"] = "once"
    duration_in_months: Annotated[int, Meta(ge=1, le=1200)] | None = None
    applies_to: list[Id] | None = None
    """Product ids the coupon is limited to; null for every product."""
    active: bool = True


class PromotionCode(Struct):
    """A customer-facing code bound to a coupon."""

    coupon: Id
    code: Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[^\x00]*$")] | None = None
    active: bool = True
    expires_at: Instant | None = None
    max_redemptions: Annotated[int, Meta(ge=1)] | None = None
    times_redeemed: Annotated[int, Meta(ge=0)] = 0
    """Kept by the service; ignored on writes."""

    def __post_init__(self) -> None:
        if self.expires_at is not None:
            self.expires_at = in_utc(self.expires_at)


class ProratePricing(Struct, tag_field="type", tag="prorate"):
    """Charge the prorated difference, as a self-service change would."""


class FixedPricing(Struct, tag_field="type", tag="fixed"):
    """Charge a fixed amount now, in the destination price's currency."""

    amount: MinorUnits


class PercentOffPricing(Struct, tag_field="type", tag="percent_off"):
    """Take a percentage off the prorated amount."""

    percent: Decimal
    """Above 0 and at most 100."""


class UpgradePath(Struct):
    """An upgrade from a product (or one price) to a destination price, with its pricing rule."""

    name: Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
    to_price: Id
    from_product: Id | None = None
    from_price: Id | None = None
    pricing: ProratePricing | FixedPricing | PercentOffPricing = msgspec.field(default_factory=ProratePricing)
    active: bool = True
    id: Id | None = None


class CatalogFile(Struct, forbid_unknown_fields=True):
    """A whole catalog, applied by `upsell catalog apply FILE` (YAML or JSON)."""

    products: list[Product] = msgspec.field(default_factory=list)
    prices: list[Price] = msgspec.field(default_factory=list)
    coupons: list[Coupon] = msgspec.field(default_factory=list)
    promotion_codes: list[PromotionCode] = msgspec.field(default_factory=list)
    upgrade_paths: list[UpgradePath] = msgspec.field(default_factory=list)
