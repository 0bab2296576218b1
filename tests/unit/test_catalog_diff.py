"""What a catalog file changes in one item, field by field, for the plan of `upsell catalog apply`."""

from __future__ import annotations

from dataclasses import replace

import pytest

from service.domain.catalog import Price, Product, Recurring, Tier
from service.domain.catalog_diff import FieldChange, field_changes

MONTHLY = Price("price_monthly", "prod_pro", "usd", unit_amount=1500, recurring=Recurring("month"))


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (MONTHLY, ()),
        (replace(MONTHLY, unit_amount=1900), (FieldChange("unit_amount", 1500, 1900),)),
        (
            replace(MONTHLY, unit_amount=1900, active=False),
            (FieldChange("unit_amount", 1500, 1900), FieldChange("active", True, False)),
        ),
        (
            replace(MONTHLY, recurring=Recurring("year", interval_count=2)),
            (FieldChange("recurring.interval", "month", "year"), FieldChange("recurring.interval_count", 1, 2)),
        ),
        (
            replace(MONTHLY, type="one_time", recurring=None),
            (FieldChange("type", "recurring", "one_time"), FieldChange("recurring", Recurring("month"), None)),
        ),
        (replace(MONTHLY, upsell="price_yearly"), (FieldChange("upsell", None, "price_yearly"),)),
    ],
    ids=["unchanged", "one_field", "in_declaration_order", "nested_fields_dotted", "nested_item_gone", "set"],
)
def test_each_changed_field_with_its_old_and_new_value(after: Price, expected: tuple[FieldChange, ...]) -> None:
    assert field_changes(MONTHLY, after) == expected


def test_tuples_such_as_tiers_are_shown_whole() -> None:
    tiered = replace(MONTHLY, billing_scheme="tiered", unit_amount=None, tiers=(Tier(5, 2000), Tier(None, 1500)))
    cheaper = replace(tiered, tiers=(Tier(5, 1800), Tier(None, 1500)))
    assert field_changes(tiered, cheaper) == (FieldChange("tiers", tiered.tiers, cheaper.tiers),)


def test_a_created_item_has_no_field_changes() -> None:
    assert field_changes(None, MONTHLY) == ()


def test_items_of_two_kinds_are_not_compared() -> None:
    with pytest.raises(TypeError):
        field_changes(Product("prod_pro", "Pro"), MONTHLY)
