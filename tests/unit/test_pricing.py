"""What a price charges: per unit, graduated and volume tiers, quantity transforms, shape checks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.catalog import Price, Recurring, Tier, TiersMode, TransformQuantity
from service.domain.pricing import amount, price_violations, transformed_quantity

MONTHLY = Recurring("month")


def per_unit(unit_amount: int | None = 2000, **changes: Any) -> Price:
    price = Price("price_unit", "prod_a", "usd", unit_amount=unit_amount, recurring=MONTHLY)
    return replace(price, **changes)


def tiered(mode: TiersMode | None, *tiers: Tier, **changes: Any) -> Price:
    price = Price(
        "price_tiered",
        "prod_a",
        "usd",
        billing_scheme="tiered",
        tiers=tiers,
        tiers_mode=mode,
        recurring=MONTHLY,
    )
    return replace(price, **changes)


TWO_TIERS = (Tier(5, 2000), Tier(None, 1500))
FLAT_TIERS = (Tier(5, 2000, 500), Tier(None, 1500, 1000))
THREE_TIERS = (Tier(10, 1000), Tier(100, 800, 2500), Tier(None, 500, 10000))


@pytest.mark.parametrize(
    ("quantity", "transform", "expected"),
    [
        (10, None, 10),
        (10, TransformQuantity(5, "up"), 2),
        (10, TransformQuantity(5, "down"), 2),
        (11, TransformQuantity(5, "up"), 3),
        (11, TransformQuantity(5, "down"), 2),
        (14, TransformQuantity(5, "down"), 2),
        (1, TransformQuantity(5, "up"), 1),
        (1, TransformQuantity(5, "down"), 0),
        (0, TransformQuantity(5, "up"), 0),
        (7, TransformQuantity(1, "up"), 7),
    ],
    ids=[
        "no-transform",
        "exact-up",
        "exact-down",
        "11-up-3",
        "11-down-2",
        "14-down-2",
        "1-up-1",
        "1-down-0",
        "0-up-0",
        "divide-by-1",
    ],
)
def test_transformed_quantity(quantity: int, transform: TransformQuantity | None, expected: int) -> None:
    assert transformed_quantity(quantity, transform) == expected


@pytest.mark.parametrize(
    ("price", "quantity", "expected"),
    [
        (per_unit(2000), 1, 2000),
        (per_unit(2000), 3, 6000),
        (per_unit(2000), 0, 0),
        (per_unit(0), 5, 0),
        (per_unit(1000, transform_quantity=TransformQuantity(5, "up")), 11, 3000),
        (per_unit(1000, transform_quantity=TransformQuantity(5, "down")), 11, 2000),
    ],
    ids=["one", "three", "zero-quantity", "free", "transform-up", "transform-down"],
)
def test_per_unit_amount(price: Price, quantity: int, expected: int) -> None:
    assert amount(price, quantity) == expected


@pytest.mark.parametrize(
    ("tiers", "quantity", "expected"),
    [
        (TWO_TIERS, 0, 0),
        (TWO_TIERS, 1, 2000),
        (TWO_TIERS, 3, 6000),
        (TWO_TIERS, 5, 10000),
        (TWO_TIERS, 6, 11500),
        (TWO_TIERS, 7, 13000),
        (FLAT_TIERS, 3, 6000 + 500),
        (FLAT_TIERS, 5, 10000 + 500),
        (FLAT_TIERS, 7, 10000 + 500 + 3000 + 1000),
        (THREE_TIERS, 10, 10000),
        (THREE_TIERS, 11, 10000 + 800 + 2500),
        (THREE_TIERS, 150, 10000 + 90 * 800 + 2500 + 50 * 500 + 10000),
    ],
    ids=[
        "zero",
        "one",
        "q3-first-tier",
        "q5-tier-edge",
        "q6-into-second",
        "q7-spans-tiers",
        "flat-first-tier",
        "flat-at-edge",
        "flat-each-tier-reached",
        "three-tiers-edge",
        "three-tiers-enters-second",
        "three-tiers-all",
    ],
)
def test_graduated_amount(tiers: tuple[Tier, ...], quantity: int, expected: int) -> None:
    assert amount(tiered("graduated", *tiers), quantity) == expected


@pytest.mark.parametrize(
    ("tiers", "quantity", "expected"),
    [
        (TWO_TIERS, 0, 0),
        (TWO_TIERS, 3, 6000),
        (TWO_TIERS, 5, 10000),
        (TWO_TIERS, 6, 9000),
        (TWO_TIERS, 7, 10500),
        (FLAT_TIERS, 3, 6000 + 500),
        (FLAT_TIERS, 7, 10500 + 1000),
        (THREE_TIERS, 50, 50 * 800 + 2500),
        (THREE_TIERS, 101, 101 * 500 + 10000),
    ],
    ids=[
        "zero",
        "q3-first-tier",
        "q5-tier-edge",
        "q6-whole-at-second-rate",
        "q7-whole-at-second-rate",
        "flat-first-tier",
        "flat-of-containing-tier-only",
        "middle-tier",
        "last-tier",
    ],
)
def test_volume_amount(tiers: tuple[Tier, ...], quantity: int, expected: int) -> None:
    assert amount(tiered("volume", *tiers), quantity) == expected


def test_tiers_apply_after_transform() -> None:
    price = tiered("graduated", *TWO_TIERS, transform_quantity=TransformQuantity(10, "up"))
    assert amount(price, 61) == 5 * 2000 + 2 * 1500


def _codes(price: Price) -> list[str]:
    return [v.code for v in price_violations(price).items]


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        (per_unit(2000), []),
        (per_unit(0), []),
        (tiered("graduated", *TWO_TIERS), []),
        (tiered("volume", *THREE_TIERS), []),
        (per_unit(2000, type="one_time", recurring=None), []),
        (tiered(None, *TWO_TIERS), ["tiers_mode_required"]),
        (tiered("graduated"), ["tiers_required"]),
        (tiered("graduated", Tier(5, 2000), Tier(10, 1500)), ["tiers_last_unbounded"]),
        (tiered("graduated", Tier(None, 2000), Tier(None, 1500)), ["tiers_last_unbounded"]),
        (tiered("graduated", Tier(10, 2000), Tier(5, 1800), Tier(None, 1500)), ["tiers_not_increasing"]),
        (tiered("graduated", Tier(5, 2000), Tier(5, 1800), Tier(None, 1500)), ["tiers_not_increasing"]),
        (tiered("graduated", Tier(0, 2000), Tier(None, 1500)), ["tiers_not_increasing"]),
        (tiered("graduated", Tier(5, -1), Tier(None, 1500)), ["negative_amount"]),
        (tiered("graduated", *TWO_TIERS, unit_amount=100), ["unit_amount_not_allowed"]),
        (per_unit(None), ["unit_amount_required"]),
        (per_unit(-1), ["unit_amount_required"]),
        (per_unit(2000, tiers=TWO_TIERS), ["tiers_not_allowed"]),
        (per_unit(2000, recurring=None), ["recurring_required"]),
        (per_unit(2000, type="one_time"), ["recurring_not_allowed"]),
        (per_unit(2000, recurring=Recurring("month", 0)), ["invalid_interval_count"]),
        (per_unit(2000, transform_quantity=TransformQuantity(0, "up")), ["invalid_divide_by"]),
        (per_unit(2000, trial_period_days=-1), ["invalid_trial"]),
        (per_unit(2000, trial_period_days=0), []),
    ],
    ids=[
        "valid-per-unit",
        "valid-free",
        "valid-graduated",
        "valid-volume",
        "valid-one-time",
        "tiered-without-tiers-mode",
        "tiered-without-tiers",
        "last-tier-bounded",
        "unbounded-tier-not-last",
        "non-increasing-bounds",
        "duplicate-bounds",
        "zero-bound",
        "negative-tier-amount",
        "tiered-with-unit-amount",
        "per-unit-without-unit-amount",
        "per-unit-negative",
        "per-unit-with-tiers",
        "recurring-without-recurring",
        "one-time-with-recurring",
        "interval-count-zero",
        "divide-by-zero",
        "negative-trial",
        "zero-trial-ok",
    ],
)
def test_price_violations(price: Price, expected: list[str]) -> None:
    assert _codes(price) == expected


def test_price_violations_lists_every_problem() -> None:
    price = tiered(
        None,
        Tier(10, 2000),
        Tier(5, -1),
        type="one_time",
        unit_amount=5,
        transform_quantity=TransformQuantity(0, "down"),
    )
    assert set(_codes(price)) == {
        "recurring_not_allowed",
        "tiers_mode_required",
        "tiers_last_unbounded",
        "tiers_not_increasing",
        "negative_amount",
        "unit_amount_not_allowed",
        "invalid_divide_by",
    }
    assert all(v.message for v in price_violations(price).items)


tier_lists = st.lists(
    st.tuples(st.integers(1, 50), st.integers(0, 10_000), st.integers(0, 10_000)), min_size=1, max_size=5
).map(
    lambda raw: (
        *(Tier(sum(r[0] for r in raw[: i + 1]), r[1], r[2]) for i, r in enumerate(raw[:-1])),
        Tier(None, raw[-1][1], raw[-1][2]),
    )
)


@given(tiers=tier_lists, quantity=st.integers(0, 400))
def test_graduated_is_non_decreasing_in_quantity(tiers: tuple[Tier, ...], quantity: int) -> None:
    price = tiered("graduated", *tiers)
    assert not price_violations(price)
    assert 0 <= amount(price, quantity) <= amount(price, quantity + 1)


@given(tiers=tier_lists, quantity=st.integers(1, 400))
def test_volume_charges_whole_quantity_at_containing_tier(tiers: tuple[Tier, ...], quantity: int) -> None:
    price = tiered("volume", *tiers)
    containing = next(t for t in tiers if t.up_to is None or quantity <= t.up_to)
    assert amount(price, quantity) == containing.unit_amount * quantity + containing.flat_amount


@given(unit=st.integers(0, 100_000), quantity=st.integers(0, 1000), divide_by=st.integers(1, 20))
def test_per_unit_with_transform_brackets_exact_share(unit: int, quantity: int, divide_by: int) -> None:
    up = amount(per_unit(unit, transform_quantity=TransformQuantity(divide_by, "up")), quantity)
    down = amount(per_unit(unit, transform_quantity=TransformQuantity(divide_by, "down")), quantity)
    assert down * divide_by <= unit * quantity <= up * divide_by
    assert up - down in (0, unit)
