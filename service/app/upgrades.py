"""Upgrade orders placed on a customer's behalf and signed upgrade links."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from contracts.events import UpgradeOrderCreated
from contracts.subscriptions import ChangeOption
from contracts.subscriptions import UpgradeOrder as UpgradeOrderBody
from service.app.errors import Conflict, Gone, InvalidInput, NotFound
from service.app.mapping import to_contract
from service.app.outgoing import emit
from service.app.ports import UnitOfWork
from service.app.subscriptions import best_path, get_subscription, holding, option, redeemable_coupon
from service.domain.catalog import Price, Product, Violation
from service.domain.proration import same_interval
from service.domain.subscriptions import (
    CHANGEABLE,
    Subscription,
    UpgradeLinkRecord,
    UpgradeOrder,
    UpgradePath,
    price_change,
)

_CARD_NUMBER = re.compile(r"\d{12,19}")
_LINK_ID = re.compile(r"ul_[0-9a-f]{24}")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    payment: Literal["current", "new"]
    card_token: str | None = None
    upgrade_path: str | None = None
    to_price: str | None = None
    quantity: int | None = None
    promotion_code: str | None = None


def _refuse(code: str, detail: str, field: str | None = None) -> InvalidInput:
    return InvalidInput([Violation(code, detail, field)], detail)


def looks_like_card_number(token: str) -> bool:
    """A primary account number (12 to 19 digits, maybe grouped) where a provider's token belongs."""
    return bool(_CARD_NUMBER.fullmatch(token.replace(" ", "").replace("-", "")))


async def _path_for(uow: UnitOfWork, current: Price, request: OrderRequest) -> UpgradePath:
    """The active upgrade path the order follows: the one named, or the one from here to `to_price`."""
    if request.upgrade_path is not None:
        path = await uow.upgrade_paths.get(request.upgrade_path)
        if path is None or not path.active or not path.starts_from(current):
            raise _refuse("no_upgrade_configured", f"upgrade path {request.upgrade_path!r} does not apply here")
        if request.to_price is not None and request.to_price != path.to_price:
            raise _refuse("to_price_mismatch", f"upgrade path {path.id!r} leads to {path.to_price!r}", "to_price")
        return path
    path = await best_path(uow, current, request.to_price)
    if path is None:
        raise _refuse("no_upgrade_configured", f"no upgrade is configured from price {current.id!r}")
    return path


async def _destination(uow: UnitOfWork, subscription: Subscription, path: UpgradePath) -> tuple[Product, Price]:
    price = await uow.prices.get(path.to_price)
    product = None if price is None else await uow.products.get(price.product)
    if price is None or product is None or not price.active or not price.is_recurring:
        raise _refuse("no_upgrade_configured", f"the destination price {path.to_price!r} is not available")
    if price.currency != subscription.currency:
        raise _refuse("currency_mismatch", f"the destination price is in {price.currency}", "to_price")
    return product, price


async def place_order(
    uow: UnitOfWork,
    subscription_id: str,
    request: OrderRequest,
    placed_by: str,
    now: datetime,
) -> UpgradeOrder:
    """Places an upgrade order, updates the subscription and announces it."""
    await uow.lock_session(f"subscription:{subscription_id}")
    subscription = await get_subscription(uow, subscription_id)
    if subscription.status not in CHANGEABLE:
        raise _refuse("subscription_not_active", f"a {subscription.status} subscription cannot be upgraded")
    if subscription.payment_method.type != "card":
        raise _refuse("payment_method_not_card", "upgrades on behalf need a subscription paid by card")
    if request.payment == "new" and looks_like_card_number(request.card_token or ""):
        raise _refuse("raw_card_data_refused", "send a card token from the payment provider, never a card number")
    current = await holding(uow, subscription)
    path = await _path_for(uow, current[1], request)
    target = await _destination(uow, subscription, path)
    coupon = await redeemable_coupon(uow, request.promotion_code, subscription.currency, now)
    quantity = request.quantity or subscription.quantity
    if (target[1].id, quantity) == (current[1].id, subscription.quantity):
        raise _refuse("no_change", "the subscription has this price and quantity already")
    charge = price_change(
        (*current, subscription.quantity),
        (*target, quantity),
        subscription.period,
        now,
        path,
        coupon,
        paid=subscription.paid,
    )
    order = UpgradeOrder(
        id=f"uo_{uuid.uuid4().hex}",
        subscription=subscription_id,
        from_price=current[1].id,
        to_price=target[1].id,
        quantity=quantity,
        amount_due_now=charge.amount_due_now,
        discount=charge.discount,
        placed_by=placed_by,
        payment_method=request.payment,
        created=now,
        currency=subscription.currency,
        upgrade_path=path.id,
        promotion_code=request.promotion_code,
    )
    await uow.upgrade_orders.add(order)
    # The limit was read before; the count is taken atomically here, and an order that lost the race
    # for the last redemption is refused and rolled back with everything it wrote.
    if request.promotion_code is not None and not await uow.promotion_codes.redeem(request.promotion_code):
        raise _refuse("promotion_code_exhausted", f"promotion code {request.promotion_code!r} is used up")
    assert current[1].recurring is not None
    assert target[1].recurring is not None
    restarted = not same_interval(current[1].recurring, target[1].recurring)
    await uow.subscriptions.put(
        subscription_id,
        dataclasses.replace(
            subscription,
            price=target[1].id,
            quantity=quantity,
            current_period_start=now if restarted else subscription.current_period_start,
            current_period_end=charge.quote.next_billing_date,
        ),
    )
    await emit(uow.outbox, UpgradeOrderCreated, to_contract(order, UpgradeOrderBody), subscription_id, now)
    return order


# Upgrade links: the token is `<id>.<signature>`, the signature an HMAC-SHA256 over the id, the path,
# the subscription and the expiry, so that a changed token is simply not found.


def _signature(secret: str, link: UpgradeLinkRecord) -> str:
    message = f"{link.id}|{link.upgrade_path}|{link.subscription}|{int(link.expires_at.timestamp())}"
    mac = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


async def create_link(
    uow: UnitOfWork, path_id: str, subscription_id: str, expires_in: int, secret: str, now: datetime
) -> tuple[str, datetime]:
    """A signed, single-use link for one subscription to take one upgrade path; returns token and expiry."""
    path = await uow.upgrade_paths.get(path_id)
    if path is None:
        raise NotFound("upgrade_path", path_id)
    subscription = await get_subscription(uow, subscription_id)
    _, current = await holding(uow, subscription)
    if not path.active or not path.starts_from(current):
        raise _refuse("no_upgrade_configured", f"upgrade path {path_id!r} does not apply to this subscription")
    expires_at = (now + timedelta(seconds=expires_in)).replace(microsecond=0)
    link = UpgradeLinkRecord(f"ul_{secrets.token_hex(12)}", path_id, subscription_id, expires_at)
    await uow.upgrade_links.add(link)
    return f"{link.id}.{_signature(secret, link)}", expires_at


async def _link(uow: UnitOfWork, token: str, secret: str, now: datetime, *, for_update: bool) -> UpgradeLinkRecord:
    link_id, _, signature = token.partition(".")
    known = _LINK_ID.fullmatch(link_id) and signature.isascii()
    link = await uow.upgrade_links.get(link_id, for_update=for_update) if known else None
    if link is None or not hmac.compare_digest(signature.encode(), _signature(secret, link).encode()):
        raise NotFound("upgrade_link", link_id)
    if link.used_at is not None:
        raise Conflict("this upgrade link was used already", "upgrade_link_used")
    if now >= link.expires_at:
        raise Gone("this upgrade link has expired", "upgrade_link_expired")
    return link


async def open_link(
    uow: UnitOfWork, token: str, secret: str, now: datetime
) -> tuple[UpgradeLinkRecord, UpgradePath, ChangeOption]:
    """What the link offers now: its path and a preview priced by the path's rule."""
    link = await _link(uow, token, secret, now, for_update=False)
    path = await uow.upgrade_paths.get(link.upgrade_path)
    if path is None:
        raise NotFound("upgrade_path", link.upgrade_path)
    subscription = await get_subscription(uow, link.subscription)
    current = await holding(uow, subscription)
    if not path.active or not path.starts_from(current[1]):
        raise _refuse("no_upgrade_configured", "the upgrade path no longer applies to this subscription")
    target = await _destination(uow, subscription, path)
    return link, path, option(subscription, current, target, subscription.quantity, now, path)


async def accept_link(uow: UnitOfWork, token: str, secret: str, request: OrderRequest, now: datetime) -> UpgradeOrder:
    """Places the link's upgrade order and uses the link up, in one transaction."""
    link = await _link(uow, token, secret, now, for_update=True)
    path_request = dataclasses.replace(request, upgrade_path=link.upgrade_path, to_price=None, quantity=None)
    order = await place_order(uow, link.subscription, path_request, f"upgrade_link:{link.id}", now)
    await uow.upgrade_links.use(link.id, order.id, now)
    return order
