"""Catalog value objects: products, prices, coupons, promotion codes.

Frozen dataclasses with defaults for every optional field, so that adapters can decode stored documents
straight into them with msgspec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

Interval = Literal["day", "week", "month", "year"]
ProductKind = Literal["plan", "addon"]
PriceType = Literal["recurring", "one_time"]
BillingScheme = Literal["per_unit", "tiered"]
TiersMode = Literal["graduated", "volume"]
UsageType = Literal["licensed", "metered"]
TaxBehavior = Literal["inclusive", "exclusive", "unspecified"]
Rounding = Literal["up", "down"]
Duration = Literal["once", "repeating", "forever"]


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    name: str
    kind: ProductKind = "plan"
    plan_group: str | None = None
    plan_rank: int | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Recurring:
    interval: Interval
    interval_count: int = 1
    usage_type: UsageType = "licensed"


@dataclass(frozen=True, slots=True)
class Tier:
    up_to: int | None
    unit_amount: int = 0
    flat_amount: int = 0


@dataclass(frozen=True, slots=True)
class TransformQuantity:
    divide_by: int
    round: Rounding


@dataclass(frozen=True, slots=True)
class Price:
    id: str
    product: str
    currency: str
    type: PriceType = "recurring"
    billing_scheme: BillingScheme = "per_unit"
    unit_amount: int | None = None
    tiers: tuple[Tier, ...] = ()
    tiers_mode: TiersMode | None = None
    recurring: Recurring | None = None
    tax_behavior: TaxBehavior = "unspecified"
    transform_quantity: TransformQuantity | None = None
    location: str | None = None
    trial_period_days: int | None = None
    active: bool = True
    default: bool = False
    upsell: str | None = None

    @property
    def is_recurring(self) -> bool:
        return self.type == "recurring" and self.recurring is not None


@dataclass(frozen=True, slots=True)
class Coupon:
    id: str
    percent_off: Decimal | None = None
    amount_off: int | None = None
    currency: str | None = None
    duration: Duration = "once"
    duration_in_months: int | None = None
    applies_to: tuple[str, ...] | None = None
    name: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class PromotionCode:
    code: str
    coupon: str
    active: bool = True
    expires_at: datetime | None = None
    max_redemptions: int | None = None
    times_redeemed: int = 0


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule, with a stable code and the field it concerns."""

    code: str
    message: str
    field: str | None = None


@dataclass(slots=True)
class Violations:
    """Collects every broken rule instead of stopping at the first."""

    items: list[Violation] = field(default_factory=list)

    def add(self, code: str, message: str, field: str | None = None) -> None:
        self.items.append(Violation(code, message, field))

    def __bool__(self) -> bool:
        return bool(self.items)
