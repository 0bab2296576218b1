"""The upsell offer as a page shows it: both options with what one cycle costs and the session's total."""

from __future__ import annotations

from dataclasses import dataclass

from service.domain import pricing
from service.domain.catalog import Price, Recurring
from service.domain.session import CheckoutSession, invoice


@dataclass(frozen=True, slots=True)
class Option:
    """One side of the offer: a recurring price, one cycle of it for the session's quantity (tiers and
    transforms applied, before discounts), and the session's total if it is the one selected."""

    price: Price
    recurring: Recurring
    amount: int
    amount_total: int


@dataclass(frozen=True, slots=True)
class Options:
    current: Option
    """Always the session's original price, whichever is selected."""
    upsell: Option


def options(session: CheckoutSession) -> Options | None:
    """Both options of an eligible session; None when the session has no offer."""
    offer = session.upsell
    if not offer.eligible or offer.price is None or offer.original_price is None:
        return None
    quantity = session.offered_quantity()
    return Options(
        _option(session, offer.original_price, quantity, selected=False),
        _option(session, offer.price, quantity, selected=True),
    )


def _option(session: CheckoutSession, price: Price, quantity: int, *, selected: bool) -> Option:
    assert price.recurring is not None, "an eligible pair is recurring"
    total = invoice(session, selected).total
    return Option(price, price.recurring, pricing.amount(price, quantity), total)
