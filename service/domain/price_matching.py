"""Which price of another product a subscription switches to.

Same currency; if the current price has a location, a price with that location first, else one with
no location; if it has none, one with no location. Among several, the same interval first, then the
product's default price, then the lowest id so that the choice is stable.
"""

from __future__ import annotations

from collections.abc import Iterable

from service.domain.catalog import Price
from service.domain.proration import same_interval


def match_price(current: Price, candidates: Iterable[Price]) -> Price | None:
    """The price of the new product that matches `current` most closely, or None when none may."""
    usable = [p for p in candidates if p.active and p.is_recurring and p.currency == current.currency]
    locations = [current.location, None] if current.location is not None else [None]
    for location in locations:
        found = [p for p in usable if p.location == location]
        if found:
            return min(found, key=lambda p: _preference(current, p))
    return None


def _preference(current: Price, candidate: Price) -> tuple[bool, bool, str]:
    assert candidate.recurring is not None
    same = current.recurring is not None and same_interval(current.recurring, candidate.recurring)
    return (not same, not candidate.default, candidate.id)
