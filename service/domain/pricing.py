"""What a price charges for a quantity: per unit or tiered, after any quantity transform."""

from __future__ import annotations

from service.domain.catalog import Price, TransformQuantity, Violations


def transformed_quantity(quantity: int, transform: TransformQuantity | None) -> int:
    """Applies `transform_quantity`: 10 seats divided by 5 is 2 packs; 11 rounds up to 3 or down to 2."""
    if transform is None:
        return quantity
    whole, rest = divmod(quantity, transform.divide_by)
    return whole + 1 if rest and transform.round == "up" else whole


def amount(price: Price, quantity: int) -> int:
    """Minor units charged for one billing cycle (or once) of `quantity` units of `price`."""
    units = transformed_quantity(quantity, price.transform_quantity)
    if price.billing_scheme == "per_unit":
        return (price.unit_amount or 0) * units
    if price.tiers_mode == "volume":
        return _volume(price, units)
    return _graduated(price, units)


def _volume(price: Price, units: int) -> int:
    if units == 0:
        return 0
    for tier in price.tiers:
        if tier.up_to is None or units <= tier.up_to:
            return tier.unit_amount * units + tier.flat_amount
    raise ValueError(f"price {price.id} has no tier for {units} units")


def _graduated(price: Price, units: int) -> int:
    total = 0
    floor = 0
    for tier in price.tiers:
        if units <= floor:
            break
        ceiling = units if tier.up_to is None else min(units, tier.up_to)
        total += tier.unit_amount * (ceiling - floor) + tier.flat_amount
        floor = ceiling
    return total


def price_violations(price: Price) -> Violations:
    """Checks a price on its own: the shape of its amount, tiers, interval and transform."""
    problems = Violations()
    if price.type == "recurring" and price.recurring is None:
        problems.add("recurring_required", "a recurring price needs `recurring`", "recurring")
    if price.type == "one_time" and price.recurring is not None:
        problems.add("recurring_not_allowed", "a one-time price takes no `recurring`", "recurring")
    if price.recurring is not None and price.recurring.interval_count < 1:
        problems.add("invalid_interval_count", "`interval_count` must be at least 1", "recurring.interval_count")
    if price.billing_scheme == "per_unit":
        if price.unit_amount is None or price.unit_amount < 0:
            problems.add("unit_amount_required", "a per-unit price needs a `unit_amount` >= 0", "unit_amount")
        if price.tiers:
            problems.add("tiers_not_allowed", "a per-unit price takes no `tiers`", "tiers")
    else:
        _tier_violations(price, problems)
    if price.transform_quantity is not None and price.transform_quantity.divide_by < 1:
        problems.add("invalid_divide_by", "`divide_by` must be at least 1", "transform_quantity.divide_by")
    if price.trial_period_days is not None and price.trial_period_days < 0:
        problems.add("invalid_trial", "`trial_period_days` must be >= 0", "trial_period_days")
    return problems


def _tier_violations(price: Price, problems: Violations) -> None:
    if price.tiers_mode is None:
        problems.add("tiers_mode_required", "a tiered price needs `tiers_mode`", "tiers_mode")
    if not price.tiers:
        problems.add("tiers_required", "a tiered price needs `tiers`", "tiers")
        return
    bounds = [tier.up_to for tier in price.tiers]
    if bounds[-1] is not None or None in bounds[:-1]:
        problems.add("tiers_last_unbounded", "only the last tier, and it always, has `up_to: null`", "tiers")
    finite = [b for b in bounds if b is not None]
    if any(b <= 0 for b in finite) or finite != sorted(set(finite)):
        problems.add("tiers_not_increasing", "tier bounds must be positive and increasing", "tiers")
    if any(t.unit_amount < 0 or t.flat_amount < 0 for t in price.tiers):
        problems.add("negative_amount", "tier amounts must be >= 0", "tiers")
    if price.unit_amount is not None:
        problems.add("unit_amount_not_allowed", "a tiered price takes no `unit_amount`", "unit_amount")
