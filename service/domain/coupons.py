"""Coupons on a checkout: percent or amount off, optionally only for some products."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

from service.domain.catalog import Coupon, PromotionCode, Violations
from service.domain.money import allocate, round_half_up


def coupon_violations(coupon: Coupon) -> Violations:
    """Checks a coupon on its own: exactly one of percent or amount off, and a coherent duration."""
    problems = Violations()
    if (coupon.percent_off is None) == (coupon.amount_off is None):
        problems.add("percent_or_amount", "give exactly one of `percent_off` and `amount_off`")
    if coupon.percent_off is not None and not (coupon.percent_off.is_finite() and 0 < coupon.percent_off <= 100):
        problems.add("invalid_percent_off", "`percent_off` must be above 0 and at most 100", "percent_off")
    if coupon.amount_off is not None:
        if coupon.amount_off <= 0:
            problems.add("invalid_amount_off", "`amount_off` must be above 0", "amount_off")
        if coupon.currency is None:
            problems.add("currency_required", "an `amount_off` coupon needs a `currency`", "currency")
    if coupon.duration == "repeating" and not coupon.duration_in_months:
        problems.add("duration_in_months_required", "a repeating coupon needs `duration_in_months`")
    if coupon.duration != "repeating" and coupon.duration_in_months is not None:
        problems.add("duration_in_months_not_allowed", "only repeating coupons take `duration_in_months`")
    return problems


def promotion_code_refusal(promo: PromotionCode, now: datetime) -> str | None:
    """Why a promotion code cannot be redeemed now, as a code, or None when it can."""
    if not promo.active:
        return "promotion_code_inactive"
    if promo.expires_at is not None and now >= promo.expires_at:
        return "promotion_code_expired"
    if promo.max_redemptions is not None and promo.times_redeemed >= promo.max_redemptions:
        return "promotion_code_exhausted"
    return None


def applies(coupon: Coupon, product: str) -> bool:
    return coupon.applies_to is None or product in coupon.applies_to


def discount_lines(coupon: Coupon, lines: list[tuple[str, int]]) -> list[int]:
    """The discount of each line, given `(product, subtotal)` per line.

    The coupon's total is computed once over the lines it applies to and rounded half-up once, then
    split over those lines in proportion to their subtotals; it never exceeds what they cost.
    """
    eligible = [subtotal if applies(coupon, product) else 0 for product, subtotal in lines]
    base = sum(eligible)
    if coupon.percent_off is not None:
        total = round_half_up(Fraction(base) * Fraction(coupon.percent_off) / 100)
    else:
        total = coupon.amount_off or 0
    return allocate(min(total, base), eligible)
