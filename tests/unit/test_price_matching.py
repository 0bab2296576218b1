"""Price matching for a product switch."""

from __future__ import annotations

from typing import Any

import pytest

from service.domain.catalog import Interval, Price, Recurring
from service.domain.price_matching import match_price


def price(
    price_id: str, currency: str = "usd", location: str | None = None, interval: Interval = "month", **extra: Any
) -> Price:
    return Price(
        price_id, "prod_new", currency, unit_amount=1_000, recurring=Recurring(interval), location=location, **extra
    )


CURRENT_DE = Price("cur", "prod_old", "eur", unit_amount=900, recurring=Recurring("month"), location="DE")
CURRENT_NONE = Price("cur", "prod_old", "usd", unit_amount=900, recurring=Recurring("month"))


@pytest.mark.parametrize(
    ("current", "candidates", "expected"),
    [
        # The same location comes first, even beside a no-location default.
        (CURRENT_DE, [price("eur_any", "eur", default=True), price("eur_de", "eur", "DE")], "eur_de"),
        # No price for the location: the same currency with no location.
        (CURRENT_DE, [price("eur_fr", "eur", "FR"), price("eur_any", "eur")], "eur_any"),
        # A current price with no location never takes a located one.
        (CURRENT_NONE, [price("usd_us", "usd", "US"), price("usd_any", "usd")], "usd_any"),
        (CURRENT_NONE, [price("usd_us", "usd", "US")], None),
        # No price in the currency at all.
        (CURRENT_DE, [price("usd_de", "usd", "DE"), price("usd_any", "usd")], None),
        # Several: the same interval first, then the default price.
        (CURRENT_NONE, [price("usd_y", interval="year", default=True), price("usd_m")], "usd_m"),
        (CURRENT_NONE, [price("usd_m1"), price("usd_m2", default=True), price("usd_y", interval="year")], "usd_m2"),
        # Inactive and one-time prices are never chosen.
        (CURRENT_NONE, [price("usd_off", active=False), Price("usd_once", "prod_new", "usd", type="one_time")], None),
        # Nothing else to tell them apart: the lowest id, so the choice is stable.
        (CURRENT_NONE, [price("usd_b"), price("usd_a")], "usd_a"),
    ],
)
def test_match_price(current: Price, candidates: list[Price], expected: str | None) -> None:
    found = match_price(current, candidates)
    assert (found.id if found else None) == expected
