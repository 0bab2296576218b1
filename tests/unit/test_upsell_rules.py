"""Upsell pairs and session eligibility."""

from __future__ import annotations

from dataclasses import replace

import pytest

from service.domain.catalog import Price, Recurring, Tier, TransformQuantity
from service.domain.upsell import Eligibility, evaluate, pair_violations

MONTHLY = Price(
    "price_monthly",
    "prod_pro",
    "usd",
    unit_amount=10000,
    recurring=Recurring("month"),
    tax_behavior="exclusive",
    upsell="price_yearly",
)
YEARLY = Price(
    "price_yearly",
    "prod_pro",
    "usd",
    unit_amount=100000,
    recurring=Recurring("year"),
    tax_behavior="exclusive",
)
SETUP_FEE = Price("price_setup", "prod_setup", "usd", type="one_time", unit_amount=5000)
OTHER_MONTHLY = Price("price_other", "prod_other", "usd", unit_amount=500, recurring=Recurring("month"))
TIERS = (Tier(5, 2000), Tier(None, 1500))


def _codes(initial: Price, upsell: Price) -> list[str]:
    return [v.code for v in pair_violations(initial, upsell).items]


@pytest.mark.parametrize(
    ("initial", "upsell"),
    [
        (MONTHLY, YEARLY),
        (replace(MONTHLY, recurring=Recurring("week")), YEARLY),
        (MONTHLY, replace(YEARLY, recurring=Recurring("month", 3))),
        (
            replace(MONTHLY, billing_scheme="tiered", unit_amount=None, tiers=TIERS, tiers_mode="graduated"),
            replace(YEARLY, billing_scheme="tiered", unit_amount=None, tiers=TIERS, tiers_mode="volume"),
        ),
        (
            replace(MONTHLY, transform_quantity=TransformQuantity(5, "up")),
            replace(YEARLY, transform_quantity=TransformQuantity(5, "up")),
        ),
        (MONTHLY, replace(YEARLY, unit_amount=150000)),
    ],
    ids=[
        "monthly-to-yearly",
        "weekly-to-yearly",
        "monthly-to-quarterly",
        "same-tier-bounds-other-mode",
        "same-transform",
        "upsell-costs-more",
    ],
)
def test_valid_pair_has_no_violations(initial: Price, upsell: Price) -> None:
    problems = pair_violations(initial, upsell)
    assert not problems
    assert problems.items == []


@pytest.mark.parametrize(
    ("initial", "upsell", "code"),
    [
        (MONTHLY, replace(MONTHLY, upsell=None), "same_price"),
        (MONTHLY, replace(YEARLY, product="prod_other"), "different_product"),
        (MONTHLY, replace(YEARLY, currency="eur"), "different_currency"),
        (MONTHLY, replace(YEARLY, type="one_time", recurring=None), "not_recurring"),
        (replace(MONTHLY, type="one_time", recurring=None), YEARLY, "not_recurring"),
        (MONTHLY, replace(YEARLY, recurring=Recurring("year", usage_type="metered")), "metered"),
        (replace(MONTHLY, recurring=Recurring("month", usage_type="metered")), YEARLY, "metered"),
        (MONTHLY, replace(YEARLY, tax_behavior="inclusive"), "tax_behavior_mismatch"),
        (replace(MONTHLY, tax_behavior="unspecified"), YEARLY, "tax_behavior_mismatch"),
        (
            replace(MONTHLY, billing_scheme="tiered", unit_amount=None, tiers=TIERS, tiers_mode="graduated"),
            replace(
                YEARLY,
                billing_scheme="tiered",
                unit_amount=None,
                tiers=(Tier(10, 2000), Tier(None, 1500)),
                tiers_mode="graduated",
            ),
            "tiers_mismatch",
        ),
        (
            replace(MONTHLY, billing_scheme="tiered", unit_amount=None, tiers=TIERS, tiers_mode="graduated"),
            YEARLY,
            "tiers_mismatch",
        ),
        (
            replace(MONTHLY, transform_quantity=TransformQuantity(5, "up")),
            replace(YEARLY, transform_quantity=TransformQuantity(5, "down")),
            "transform_quantity_mismatch",
        ),
        (
            replace(MONTHLY, transform_quantity=TransformQuantity(5, "up")),
            replace(YEARLY, transform_quantity=TransformQuantity(10, "up")),
            "transform_quantity_mismatch",
        ),
        (
            replace(MONTHLY, transform_quantity=TransformQuantity(5, "up")),
            YEARLY,
            "transform_quantity_mismatch",
        ),
        (MONTHLY, replace(YEARLY, active=False), "inactive"),
        (replace(MONTHLY, active=False), YEARLY, "inactive"),
    ],
    ids=[
        "same-price",
        "different-product",
        "different-currency",
        "upsell-one-time",
        "initial-one-time",
        "upsell-metered",
        "initial-metered",
        "tax-behavior-inclusive-vs-exclusive",
        "tax-behavior-unspecified-vs-exclusive",
        "tiers-different-up-to",
        "tiered-vs-per-unit",
        "transform-round-differs",
        "transform-divide-by-differs",
        "transform-only-on-one",
        "upsell-inactive",
        "initial-inactive",
    ],
)
def test_each_rule_has_its_code(initial: Price, upsell: Price, code: str) -> None:
    problems = pair_violations(initial, upsell)
    assert [v.code for v in problems.items] == [code]
    assert problems.items[0].message


def test_recurring_type_without_recurring_is_not_recurring() -> None:
    assert _codes(MONTHLY, replace(YEARLY, recurring=None)) == ["not_recurring"]


def test_pair_breaking_every_rule_lists_all_codes() -> None:
    initial = replace(
        MONTHLY,
        billing_scheme="tiered",
        unit_amount=None,
        tiers=TIERS,
        tiers_mode="graduated",
        recurring=Recurring("month", usage_type="metered"),
        transform_quantity=TransformQuantity(5, "up"),
    )
    upsell = replace(
        MONTHLY,
        product="prod_other",
        currency="eur",
        type="one_time",
        recurring=None,
        tax_behavior="inclusive",
        active=False,
    )
    assert set(_codes(initial, upsell)) == {
        "same_price",
        "different_product",
        "different_currency",
        "not_recurring",
        "metered",
        "tax_behavior_mismatch",
        "tiers_mismatch",
        "transform_quantity_mismatch",
        "inactive",
    }
    assert len(_codes(initial, upsell)) == 9


def test_pair_breaking_several_rules_lists_each() -> None:
    upsell = replace(YEARLY, product="prod_other", currency="eur", active=False)
    assert _codes(MONTHLY, upsell) == ["different_product", "different_currency", "inactive"]


CATALOG = {"price_monthly": YEARLY}


@pytest.mark.parametrize(
    ("mode", "prices", "upsell_of", "reason"),
    [
        ("payment", [MONTHLY], CATALOG, "not_subscription_mode"),
        ("setup", [MONTHLY], CATALOG, "not_subscription_mode"),
        ("subscription", [SETUP_FEE], CATALOG, "no_recurring_price"),
        ("subscription", [], CATALOG, "no_recurring_price"),
        ("subscription", [MONTHLY, OTHER_MONTHLY], CATALOG, "multiple_recurring_prices"),
        ("subscription", [MONTHLY, SETUP_FEE, MONTHLY], CATALOG, "multiple_recurring_prices"),
        ("subscription", [replace(MONTHLY, upsell=None)], CATALOG, "no_upsell_configured"),
        ("subscription", [MONTHLY], {}, "no_upsell_configured"),
        ("subscription", [MONTHLY], {"price_monthly": replace(YEARLY, active=False)}, "upsell_invalid"),
        ("subscription", [MONTHLY], {"price_monthly": replace(YEARLY, currency="eur")}, "upsell_invalid"),
        ("subscription", [replace(MONTHLY, active=False)], CATALOG, "upsell_invalid"),
    ],
    ids=[
        "payment-mode",
        "setup-mode",
        "only-one-time",
        "no-items",
        "two-recurring",
        "same-recurring-twice",
        "price-has-no-upsell",
        "upsell-missing-from-catalog",
        "upsell-now-inactive",
        "upsell-now-other-currency",
        "initial-now-inactive",
    ],
)
def test_evaluate_ineligible(mode: str, prices: list[Price], upsell_of: dict[str, Price], reason: str) -> None:
    result = evaluate(mode, prices, upsell_of)
    assert not result.eligible
    assert result.reason == reason
    assert result.upsell is None


def test_evaluate_not_subscription_wins_over_other_reasons() -> None:
    assert evaluate("payment", [], {}) == Eligibility(False, "not_subscription_mode")


@pytest.mark.parametrize(
    "prices",
    [[MONTHLY], [MONTHLY, SETUP_FEE], [SETUP_FEE, MONTHLY]],
    ids=["recurring-only", "with-setup-fee-after", "with-setup-fee-before"],
)
def test_evaluate_eligible(prices: list[Price]) -> None:
    result = evaluate("subscription", prices, CATALOG)
    assert result == Eligibility(True, None, initial=MONTHLY, upsell=YEARLY)
