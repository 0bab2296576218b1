"""Coupons and promotion codes: shape checks, redemption refusals and per-line discounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.catalog import Coupon, PromotionCode
from service.domain.coupons import applies, coupon_violations, discount_lines, promotion_code_refusal

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HALF = Coupon("half", percent_off=Decimal(50), duration="repeating", duration_in_months=4)


def _codes(coupon: Coupon) -> list[str]:
    return [v.code for v in coupon_violations(coupon).items]


@pytest.mark.parametrize(
    ("coupon", "expected"),
    [
        (HALF, []),
        (Coupon("c", percent_off=Decimal("33.333")), []),
        (Coupon("c", percent_off=Decimal(100), duration="forever"), []),
        (Coupon("c", amount_off=500, currency="usd"), []),
        (Coupon("c"), ["percent_or_amount"]),
        (Coupon("c", percent_off=Decimal(10), amount_off=500, currency="usd"), ["percent_or_amount"]),
        (Coupon("c", percent_off=Decimal(0)), ["invalid_percent_off"]),
        (Coupon("c", percent_off=Decimal(-5)), ["invalid_percent_off"]),
        (Coupon("c", percent_off=Decimal("100.01")), ["invalid_percent_off"]),
        (Coupon("c", amount_off=0, currency="usd"), ["invalid_amount_off"]),
        (Coupon("c", amount_off=-1, currency="usd"), ["invalid_amount_off"]),
        (Coupon("c", amount_off=500), ["currency_required"]),
        (Coupon("c", percent_off=Decimal(10), duration="repeating"), ["duration_in_months_required"]),
        (
            Coupon("c", percent_off=Decimal(10), duration="repeating", duration_in_months=0),
            ["duration_in_months_required"],
        ),
        (
            Coupon("c", percent_off=Decimal(10), duration="once", duration_in_months=3),
            ["duration_in_months_not_allowed"],
        ),
        (
            Coupon("c", percent_off=Decimal(10), duration="forever", duration_in_months=3),
            ["duration_in_months_not_allowed"],
        ),
        (
            Coupon("c", amount_off=-5, duration="repeating"),
            ["invalid_amount_off", "currency_required", "duration_in_months_required"],
        ),
    ],
    ids=[
        "valid-repeating-percent",
        "valid-fractional-percent",
        "valid-100-percent-forever",
        "valid-amount",
        "neither",
        "both",
        "percent-zero",
        "percent-negative",
        "percent-over-100",
        "amount-zero",
        "amount-negative",
        "amount-without-currency",
        "repeating-without-months",
        "repeating-zero-months",
        "once-with-months",
        "forever-with-months",
        "several-at-once",
    ],
)
def test_coupon_violations(coupon: Coupon, expected: list[str]) -> None:
    assert _codes(coupon) == expected


@pytest.mark.parametrize(
    ("promo", "now", "expected"),
    [
        (PromotionCode("SAVE", "half"), NOW, None),
        (PromotionCode("SAVE", "half", active=False), NOW, "promotion_code_inactive"),
        (PromotionCode("SAVE", "half", expires_at=NOW), NOW, "promotion_code_expired"),
        (PromotionCode("SAVE", "half", expires_at=NOW - timedelta(days=1)), NOW, "promotion_code_expired"),
        (PromotionCode("SAVE", "half", expires_at=NOW + timedelta(microseconds=1)), NOW, None),
        (PromotionCode("SAVE", "half", max_redemptions=3, times_redeemed=3), NOW, "promotion_code_exhausted"),
        (PromotionCode("SAVE", "half", max_redemptions=3, times_redeemed=2), NOW, None),
        (PromotionCode("SAVE", "half", max_redemptions=0), NOW, "promotion_code_exhausted"),
        (
            PromotionCode("SAVE", "half", active=False, expires_at=NOW, max_redemptions=1, times_redeemed=1),
            NOW,
            "promotion_code_inactive",
        ),
        (
            PromotionCode("SAVE", "half", expires_at=NOW, max_redemptions=1, times_redeemed=1),
            NOW,
            "promotion_code_expired",
        ),
    ],
    ids=[
        "ok",
        "inactive",
        "expired-at-exactly-expires-at",
        "expired-yesterday",
        "one-microsecond-left",
        "exhausted",
        "one-left",
        "zero-max-redemptions",
        "inactive-reported-first",
        "expired-before-exhausted",
    ],
)
def test_promotion_code_refusal(promo: PromotionCode, now: datetime, expected: str | None) -> None:
    assert promotion_code_refusal(promo, now) == expected


@pytest.mark.parametrize(
    ("applies_to", "product", "expected"),
    [
        (None, "prod_a", True),
        (("prod_a",), "prod_a", True),
        (("prod_b",), "prod_a", False),
        ((), "prod_a", False),
    ],
    ids=["all-products", "listed", "not-listed", "empty-list"],
)
def test_applies(applies_to: tuple[str, ...] | None, product: str, expected: bool) -> None:
    assert applies(Coupon("c", percent_off=Decimal(10), applies_to=applies_to), product) is expected


@pytest.mark.parametrize(
    ("coupon", "lines", "expected"),
    [
        (HALF, [("prod_a", 10000), ("prod_b", 5000)], [5000, 2500]),
        (HALF, [("prod_a", 100000), ("prod_b", 5000)], [50000, 2500]),
        (Coupon("c", percent_off=Decimal(100)), [("prod_a", 999), ("prod_b", 1)], [999, 1]),
        (Coupon("c", amount_off=500, currency="usd"), [("prod_a", 10000)], [500]),
        (Coupon("c", amount_off=3000, currency="usd"), [("prod_a", 10000), ("prod_b", 5000)], [2000, 1000]),
        (Coupon("c", amount_off=20000, currency="usd"), [("prod_a", 10000), ("prod_b", 5000)], [10000, 5000]),
        (
            Coupon("c", percent_off=Decimal(50), applies_to=("prod_a",)),
            [("prod_a", 10000), ("prod_b", 5000)],
            [5000, 0],
        ),
        (
            Coupon("c", amount_off=20000, currency="usd", applies_to=("prod_b",)),
            [("prod_a", 10000), ("prod_b", 5000)],
            [0, 5000],
        ),
        (Coupon("c", percent_off=Decimal(50), applies_to=("prod_z",)), [("prod_a", 10000)], [0]),
        (Coupon("c", percent_off=Decimal("33.333")), [("prod_a", 100)], [33]),
        (Coupon("c", percent_off=Decimal("33.5")), [("prod_a", 100)], [34]),
        (Coupon("c", percent_off=Decimal(50)), [("prod_a", 15001)], [7501]),
        (Coupon("c", percent_off=Decimal(50)), [("a", 1), ("b", 1), ("c", 1)], [1, 1, 0]),
        (Coupon("c", percent_off=Decimal("33.333")), [("a", 100), ("b", 100), ("c", 100)], [34, 33, 33]),
        (HALF, [], []),
        (HALF, [("prod_a", 0)], [0]),
        (Coupon("c", amount_off=500, currency="usd"), [("prod_a", 0)], [0]),
    ],
    ids=[
        "percent-50-of-15000-split",
        "percent-on-yearly-upsell",
        "percent-100",
        "amount-off",
        "amount-off-split-proportionally",
        "amount-off-capped-at-subtotal",
        "applies-to-one-product",
        "amount-off-capped-at-eligible-lines",
        "applies-to-absent-product",
        "33.333-percent-rounds-down",
        "33.5-percent-rounds-half-up",
        "half-unit-rounds-up",
        "rounded-once-on-total-not-per-line",
        "33.333-percent-over-three-lines",
        "no-lines",
        "free-line",
        "amount-off-on-nothing",
    ],
)
def test_discount_lines(coupon: Coupon, lines: list[tuple[str, int]], expected: list[int]) -> None:
    assert discount_lines(coupon, lines) == expected


coupons = st.one_of(
    st.builds(
        lambda p, a: Coupon("c", percent_off=p, applies_to=a),
        st.decimals(min_value=Decimal("0.001"), max_value=Decimal(100), places=3),
        st.none() | st.just(("prod_a",)),
    ),
    st.builds(
        lambda n, a: Coupon("c", amount_off=n, currency="usd", applies_to=a),
        st.integers(1, 10**7),
        st.none() | st.just(("prod_b",)),
    ),
)
line_lists = st.lists(st.tuples(st.sampled_from(["prod_a", "prod_b"]), st.integers(0, 10**7)), max_size=6)


@given(coupon=coupons, lines=line_lists)
def test_discount_lines_properties(coupon: Coupon, lines: list[tuple[str, int]]) -> None:
    parts = discount_lines(coupon, lines)
    assert len(parts) == len(lines)
    base = sum(subtotal for product, subtotal in lines if applies(coupon, product))
    assert 0 <= sum(parts) <= base
    for part, (product, subtotal) in zip(parts, lines, strict=True):
        assert 0 <= part <= subtotal
        if not applies(coupon, product):
            assert part == 0
    if coupon.percent_off is not None:
        exact = base * coupon.percent_off / 100
        assert abs(sum(parts) - exact) <= Decimal("0.5")
    else:
        assert sum(parts) == min(coupon.amount_off or 0, base)
