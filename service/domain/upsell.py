"""Upsell pairs: which prices may upsell to which, and which sessions qualify."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from service.domain.catalog import Price, Violations

IneligibleReason = Literal[
    "not_subscription_mode",
    "no_recurring_price",
    "multiple_recurring_prices",
    "no_upsell_configured",
    "upsell_invalid",
]


def pair_violations(initial: Price, upsell: Price) -> Violations:
    """Every rule the pair breaks, with its code; an empty result means the pair is valid."""
    problems = Violations()
    if initial.id == upsell.id:
        problems.add("same_price", "a price cannot upsell to itself")
    if initial.product != upsell.product:
        problems.add("different_product", "both prices must reference the same product")
    if initial.currency != upsell.currency:
        problems.add("different_currency", "both prices must have the same currency")
    if not (initial.is_recurring and upsell.is_recurring):
        problems.add("not_recurring", "both prices must be recurring")
    if any(p.recurring is not None and p.recurring.usage_type == "metered" for p in (initial, upsell)):
        problems.add("metered", "metered prices cannot be upsold")
    if initial.tax_behavior != upsell.tax_behavior:
        problems.add("tax_behavior_mismatch", "both prices must have the same tax_behavior")
    if _tier_bounds(initial) != _tier_bounds(upsell):
        problems.add("tiers_mismatch", "both prices must have identical tier up_to values")
    if initial.transform_quantity != upsell.transform_quantity:
        problems.add("transform_quantity_mismatch", "both prices must have identical transform_quantity")
    if not (initial.active and upsell.active):
        problems.add("inactive", "both prices must be active")
    return problems


def _tier_bounds(price: Price) -> tuple[int | None, ...] | None:
    if price.billing_scheme != "tiered":
        return None
    return tuple(tier.up_to for tier in price.tiers)


@dataclass(frozen=True, slots=True)
class Eligibility:
    eligible: bool
    reason: IneligibleReason | None = None
    initial: Price | None = None
    upsell: Price | None = None


def evaluate(mode: str, prices: list[Price], upsell_of: dict[str, Price]) -> Eligibility:
    """Decides whether a session's prices can be upsold.

    `prices` are the session's line-item prices; `upsell_of` maps a price id to its configured
    upsell price as the catalog holds it now.
    """
    if mode != "subscription":
        return Eligibility(False, "not_subscription_mode")
    recurring = [p for p in prices if p.is_recurring]
    if not recurring:
        return Eligibility(False, "no_recurring_price")
    if len(recurring) > 1:
        return Eligibility(False, "multiple_recurring_prices")
    initial = recurring[0]
    upsell = upsell_of.get(initial.id)
    if initial.upsell is None or upsell is None:
        return Eligibility(False, "no_upsell_configured", initial=initial)
    if pair_violations(initial, upsell):
        return Eligibility(False, "upsell_invalid", initial=initial)
    return Eligibility(True, None, initial=initial, upsell=upsell)
