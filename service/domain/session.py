"""A checkout session with its upsell: state, toggle, totals and completion."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from service.domain import pricing
from service.domain.catalog import Coupon, Price
from service.domain.coupons import discount_lines
from service.domain.savings import Savings, savings

Mode = Literal["subscription", "payment", "setup"]
Status = Literal["open", "complete", "expired"]


class SessionClosed(Exception):
    """The session is complete or expired and refuses changes."""

    def __init__(self, status: str) -> None:
        super().__init__(f"the session is {status}")
        self.status = status


class UpsellUnavailable(Exception):
    """The session is not eligible for an upsell, so there is nothing to select."""


@dataclass(frozen=True, slots=True)
class LineItem:
    price: Price
    quantity: int


@dataclass(frozen=True, slots=True)
class Discount:
    coupon: Coupon
    promotion_code: str | None = None


@dataclass(frozen=True, slots=True)
class Upsell:
    eligible: bool
    reason: str | None = None
    original_price: Price | None = None
    price: Price | None = None
    selected: bool = False


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    id: str
    mode: Mode
    currency: str
    line_items: tuple[LineItem, ...]
    upsell: Upsell
    created_at: datetime
    expires_at: datetime
    customer: str | None = None
    locale: str = "en"
    discounts: tuple[Discount, ...] = ()
    trial_period_days: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    status: Status = "open"
    version: int = 1
    completed_at: datetime | None = None
    payment: str | None = None

    def status_at(self, now: datetime) -> Status:
        if self.status == "open" and now >= self.expires_at:
            return "expired"
        return self.status

    def current_line_items(self, selected: bool | None = None) -> tuple[LineItem, ...]:
        """The line items as the buyer would pay now, or with the upsell `selected` or not: the recurring
        price swapped when the upsell is on."""
        offer = self.upsell
        chosen = offer.selected if selected is None else selected
        if not (chosen and offer.price is not None and offer.original_price is not None):
            return self.line_items
        return tuple(
            LineItem(offer.price, item.quantity) if item.price.id == offer.original_price.id else item
            for item in self.line_items
        )

    def offered_quantity(self) -> int:
        """The quantity of the line item the upsell would replace."""
        original = self.upsell.original_price
        return next(i.quantity for i in self.line_items if original is not None and i.price.id == original.id)

    def savings(self) -> Savings | None:
        offer = self.upsell
        if not offer.eligible or offer.price is None or offer.original_price is None:
            return None
        return savings(offer.original_price, offer.price, self.offered_quantity(), self.locale)


def toggle(session: CheckoutSession, selected: bool, now: datetime) -> CheckoutSession:
    """Selects or unselects the upsell; returns the same session when nothing changes."""
    status = session.status_at(now)
    if status != "open":
        raise SessionClosed(status)
    if not session.upsell.eligible:
        raise UpsellUnavailable(session.upsell.reason or "not eligible")
    if session.upsell.selected == selected:
        return session
    return dataclasses.replace(
        session, upsell=dataclasses.replace(session.upsell, selected=selected), version=session.version + 1
    )


class PaymentMismatch(Exception):
    """A complete session was reported paid again, by another payment: its first one is named."""

    def __init__(self, first: str) -> None:
        super().__init__(f"the session was completed by payment {first!r}")
        self.first = first


class PaymentRequired(Exception):
    """A session that charges today was to complete with no payment reference."""


def complete(
    session: CheckoutSession, now: datetime, payment: str | None, *, reference_required: bool = False
) -> CheckoutSession:
    """Marks a paid session complete; a complete session stays as it is, when it is reported paid by
    the payment that completed it or by none.

    Payment is the source of truth: an open session whose `expires_at` has passed still completes,
    since the buyer has paid. Only a session expired explicitly refuses. With `reference_required`, a
    session that charges today does not complete without its payment's reference.
    """
    if session.status == "complete":
        if payment is not None and session.payment is not None and payment != session.payment:
            raise PaymentMismatch(session.payment)
        return session
    if session.status == "expired":
        raise SessionClosed("expired")
    if reference_required and payment is None and due_today(session) > 0:
        raise PaymentRequired("this session charges today: send the reference of its payment")
    return dataclasses.replace(
        session, status="complete", completed_at=now, payment=payment, version=session.version + 1
    )


def expire(session: CheckoutSession) -> CheckoutSession:
    """Expires an open session; complete or expired sessions stay as they are."""
    if session.status != "open":
        return session
    return dataclasses.replace(session, status="expired", version=session.version + 1)


@dataclass(frozen=True, slots=True)
class LineTotal:
    item: LineItem
    subtotal: int
    discount: int

    @property
    def total(self) -> int:
        return self.subtotal - self.discount


@dataclass(frozen=True, slots=True)
class Invoice:
    """The first invoice of the current line items: each line's amounts and what each discount took."""

    lines: list[LineTotal]
    discount_amounts: list[int]

    @property
    def subtotal(self) -> int:
        return sum(line.subtotal for line in self.lines)

    @property
    def discount(self) -> int:
        return sum(line.discount for line in self.lines)

    @property
    def total(self) -> int:
        return self.subtotal - self.discount


def _metered(price: Price) -> bool:
    return price.recurring is not None and price.recurring.usage_type == "metered"


def invoice(session: CheckoutSession, selected: bool | None = None) -> Invoice:
    """Amounts of each current line item (or of those with the upsell `selected` or not), with the
    discounts applied in order to what is left."""
    items = session.current_line_items(selected)
    # Metered usage is billed in arrears, from what was used: nothing of it is due on the first invoice.
    subtotals = [0 if _metered(item.price) else pricing.amount(item.price, item.quantity) for item in items]
    discounts = [0] * len(items)
    taken = []
    for applied in session.discounts:
        remaining = [(item.price.product, s - d) for item, s, d in zip(items, subtotals, discounts, strict=True)]
        parts = discount_lines(applied.coupon, remaining)
        discounts = [d + p for d, p in zip(discounts, parts, strict=True)]
        taken.append(sum(parts))
    lines = [LineTotal(i, s, d) for i, s, d in zip(items, subtotals, discounts, strict=True)]
    return Invoice(lines, taken)


def upsell_added(session: CheckoutSession) -> int:
    """What the selected upsell adds to the first invoice over the price it replaced (0 when not selected)."""
    if not session.upsell.selected:
        return 0
    return invoice(session).total - invoice(session, selected=False).total


def due_today(session: CheckoutSession) -> int:
    """What the buyer pays at checkout: every line after its discount, but recurring lines under a trial,
    which bill when it ends (one-time lines such as a setup fee are charged today all the same)."""
    trial = bool(session.trial_period_days)
    return sum(line.total for line in invoice(session).lines if not (trial and line.item.price.recurring is not None))
