"""Maps domain sessions to the contract views that HTTP answers and events carry."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from contracts.sessions import (
    CompletedSession,
    DiscountView,
    LineItemView,
    OptionDisplay,
    RecurringView,
    SavingsView,
    SessionView,
    UpsellOption,
    UpsellOptions,
    UpsellView,
)
from service.domain.equivalent import format_equivalent
from service.domain.money import format_money, format_per_interval
from service.domain.offer import Option, options
from service.domain.session import CheckoutSession, Discount, LineItem, LineTotal, Upsell, invoice

V = TypeVar("V", bound=SessionView)


def _line(total: LineTotal) -> LineItemView:
    price = total.item.price
    recurring = price.recurring
    return LineItemView(
        price=price.id,
        product=price.product,
        quantity=total.item.quantity,
        amount_subtotal=total.subtotal,
        amount_discount=total.discount,
        amount_total=total.total,
        recurring=None if recurring is None else RecurringView(recurring.interval, recurring.interval_count),
    )


def _discount(applied: Discount, amount: int) -> DiscountView:
    coupon = applied.coupon
    return DiscountView(
        coupon=coupon.id,
        promotion_code=applied.promotion_code,
        percent_off=None if coupon.percent_off is None else str(coupon.percent_off),
        amount_off=coupon.amount_off,
        duration=coupon.duration,
        duration_in_months=coupon.duration_in_months,
        amount=amount,
    )


def _option(option: Option, other: Option, currency: str, locale: str) -> UpsellOption:
    recurring = option.recurring
    return UpsellOption(
        price=option.price.id,
        interval=recurring.interval,
        interval_count=recurring.interval_count,
        amount=option.amount,
        amount_total=option.amount_total,
        display=OptionDisplay(
            amount=format_money(option.amount, currency, locale),
            per_interval=format_per_interval(
                option.amount, currency, recurring.interval, recurring.interval_count, locale
            ),
            amount_total=format_money(option.amount_total, currency, locale),
            equivalent=format_equivalent(option.amount, currency, recurring, other.recurring, locale),
        ),
    )


def _options(session: CheckoutSession) -> UpsellOptions | None:
    both = options(session)
    if both is None:
        return None
    return UpsellOptions(
        _option(both.current, both.upsell, session.currency, session.locale),
        _option(both.upsell, both.current, session.currency, session.locale),
    )


@dataclass(frozen=True, slots=True)
class _Priced:
    """What a session's view owes to its cart alone."""

    lines: tuple[LineItemView, ...]
    subtotal: int
    discount: int
    total: int
    discounts: tuple[DiscountView, ...]
    upsell: UpsellView


def _priced(session: CheckoutSession) -> _Priced:
    bill = invoice(session)
    offer = session.upsell
    saved = session.savings()
    return _Priced(
        lines=tuple(_line(line) for line in bill.lines),
        subtotal=bill.subtotal,
        discount=bill.discount,
        total=bill.total,
        discounts=tuple(_discount(d, a) for d, a in zip(session.discounts, bill.discount_amounts, strict=True)),
        upsell=UpsellView(
            eligible=offer.eligible,
            reason=offer.reason,
            price=None if offer.price is None else offer.price.id,
            original_price=None if offer.original_price is None else offer.original_price.id,
            selected=offer.selected,
            savings=None if saved is None else SavingsView(saved.amount, str(saved.percent), saved.display),
            options=_options(session),
        ),
    )


_CartKey = tuple[str, str, tuple[LineItem, ...], tuple[Discount, ...], Upsell]
_PRICED_KEPT = 4096
"""Carts whose priced part is kept: checkouts are made of a catalog's few prices, so carts repeat."""
_kept: OrderedDict[_CartKey, _Priced] = OrderedDict()


def _priced_cart(session: CheckoutSession) -> _Priced:
    """`_priced`, kept by the cart's value: the amounts, discounts and offer are a pure function of the
    currency, the locale, the line items, the discounts and the upsell (prices and coupons are frozen
    values, compared field by field), so a page read of a session whose cart was seen before costs
    no invoice, no options and no display strings."""
    key = (session.currency, session.locale, session.line_items, session.discounts, session.upsell)
    found = _kept.get(key)
    if found is None:
        found = _kept[key] = _priced(session)
        if len(_kept) > _PRICED_KEPT:
            _kept.popitem(last=False)
    return found


def session_view(session: CheckoutSession, now: datetime) -> SessionView:
    priced = _priced_cart(session)
    return SessionView(
        id=session.id,
        status=session.status_at(now),
        mode=session.mode,
        currency=session.currency,
        customer=session.customer,
        locale=session.locale,
        line_items=list(priced.lines),
        amount_subtotal=priced.subtotal,
        amount_discount=priced.discount,
        amount_total=priced.total,
        discounts=list(priced.discounts),
        trial_period_days=session.trial_period_days,
        upsell=priced.upsell,
        version=session.version,
        metadata=session.metadata,
        created=session.created_at,
        expires_at=session.expires_at,
    )


def extended(view: SessionView, kind: type[V], **fields: Any) -> V:
    """The view as a subtype with more fields (the completion, the client secret)."""
    return kind(**{name: getattr(view, name) for name in view.__struct_fields__}, **fields)


def completed_view(session: CheckoutSession, now: datetime) -> CompletedSession:
    assert session.completed_at is not None
    return extended(
        session_view(session, now),
        CompletedSession,
        completed_at=session.completed_at,
        payment=session.payment,
        upsell_accepted=session.upsell.selected,
    )
