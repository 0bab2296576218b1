"""Subscription use cases: the mirror, change options and previews, product switch."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from contracts.events import SubscriptionProductSwitched
from contracts.subscriptions import AddonOption, ChangeOption, ChangeOptions, ProductSwitched
from service.app.errors import InvalidInput, NotFound, UseCaseError
from service.app.outgoing import emit
from service.app.ports import UnitOfWork
from service.domain.catalog import Coupon, Price, Product, PromotionCode, Violation, Violations
from service.domain.coupons import promotion_code_refusal
from service.domain.price_matching import match_price
from service.domain.subscriptions import Subscription, UpgradePath, price_change, subscription_violations

NO_CHANGE = "This is the plan and quantity the subscription has now; nothing would change."


async def put_subscription(uow: UnitOfWork, subscription: Subscription) -> bool:
    """Creates or replaces the mirror of a subscription; True when it was created."""
    problems = subscription_violations(subscription)
    price = await uow.prices.get(subscription.price)
    if price is None:
        problems.add("price_not_found", f"price {subscription.price!r} does not exist", "price")
    elif not price.is_recurring:
        problems.add("not_recurring", f"price {subscription.price!r} is not recurring", "price")
    elif price.currency != subscription.currency:
        problems.add("currency_mismatch", f"price {subscription.price!r} is in {price.currency}", "currency")
    if problems:
        raise InvalidInput(problems.items, f"subscription {subscription.id!r} breaks rules")
    created = await uow.subscriptions.get(subscription.id) is None
    await uow.subscriptions.put(subscription.id, subscription)
    return created


async def get_subscription(uow: UnitOfWork, subscription_id: str) -> Subscription:
    subscription = await uow.subscriptions.get(subscription_id)
    if subscription is None:
        raise NotFound("subscription", subscription_id)
    return subscription


async def holding(uow: UnitOfWork, subscription: Subscription) -> tuple[Product, Price]:
    """The product and price the subscription is on now."""
    price = await uow.prices.get(subscription.price)
    product = None if price is None else await uow.products.get(price.product)
    return _held(subscription, product, price)


def _held(subscription: Subscription, product: Product | None, price: Price | None) -> tuple[Product, Price]:
    if price is None or product is None:
        raise UseCaseError(f"the price {subscription.price!r} of the subscription is gone", "price_not_found")
    return product, price


async def redeemable_coupon(uow: UnitOfWork, code: str | None, currency: str, now: datetime) -> Coupon | None:
    """The coupon of a promotion code that may be used now on a charge in `currency`; each refusal has its
    own code, as at checkout."""
    if code is None:
        return None
    promo = await uow.promotion_codes.get(code)
    coupon = None if promo is None else await uow.coupons.get(promo.coupon)
    return _redeemable(code, promo, coupon, currency, now)


def _redeemable(code: str, promo: PromotionCode | None, coupon: Coupon | None, currency: str, now: datetime) -> Coupon:
    refusal = "promotion_code_unknown" if promo is None else promotion_code_refusal(promo, now)
    if refusal is None and (coupon is None or not coupon.active):
        refusal = "promotion_code_inactive"
    if refusal is None and coupon is not None and coupon.amount_off is not None and coupon.currency != currency:
        refusal = "coupon_currency_mismatch"
    if refusal is not None or coupon is None:
        reason = refusal or "promotion_code_unknown"
        raise InvalidInput([Violation(reason, f"promotion code {code!r} cannot be used", "promotion_code")])
    return coupon


def option(
    subscription: Subscription,
    current: tuple[Product, Price],
    target: tuple[Product, Price],
    quantity: int,
    at: datetime,
    path: UpgradePath | None = None,
    coupon: Coupon | None = None,
) -> ChangeOption:
    """One priced option; the current price at the current quantity is `no_change`."""
    if target[1].id == current[1].id and quantity == subscription.quantity:
        return ChangeOption(
            target[1].id, target[0].id, None, None, 0, 0, 0, subscription.current_period_end, True, NO_CHANGE, quantity
        )
    charge = price_change(
        (*current, subscription.quantity),
        (*target, quantity),
        subscription.period,
        at,
        path,
        coupon,
        paid=subscription.paid,
    )
    q = charge.quote
    return ChangeOption(
        price=target[1].id,
        product=target[0].id,
        direction=q.direction,
        effective=q.effective,
        amount_due_now=charge.amount_due_now,
        credit=q.credit,
        next_invoice_amount=q.next_invoice_amount,
        next_billing_date=q.next_billing_date,
        quantity=quantity,
        discount=charge.discount,
    )


async def change_options(uow: UnitOfWork, subscription_id: str, at: datetime) -> ChangeOptions:
    """The other plans of the subscription's plan group in its currency, each priced, and the group's add-ons."""
    subscription = await get_subscription(uow, subscription_id)
    product, price = await holding(uow, subscription)
    options: list[ChangeOption] = []
    addons: list[AddonOption] = []
    if product.plan_group is not None:
        for member, prices in await _group(uow, product.plan_group, subscription.currency):
            for candidate in prices:
                if member.kind == "addon":
                    addons.append(
                        AddonOption(member.id, candidate.id, member.name, candidate.unit_amount, candidate.is_recurring)
                    )
                elif candidate.is_recurring and candidate.id != price.id:
                    options.append(
                        option(subscription, (product, price), (member, candidate), subscription.quantity, at)
                    )
    return ChangeOptions(subscription_id, options, addons)


async def best_path(uow: UnitOfWork, current: Price, to_price: str | None) -> UpgradePath | None:
    """The active upgrade path from `current` (to `to_price` when given) that an order would follow: one
    for this very price wins over one for its whole product."""
    return _best_path(await uow.upgrade_paths.all(), current, to_price)


def _best_path(all_paths: Iterable[UpgradePath], current: Price, to_price: str | None) -> UpgradePath | None:
    paths = [p for p in all_paths if p.active and p.starts_from(current)]
    if to_price is not None:
        paths = [p for p in paths if p.to_price == to_price]
    return min(paths, key=lambda p: (p.from_price is None, p.id)) if paths else None


async def _group(uow: UnitOfWork, group: str, currency: str) -> list[tuple[Product, list[Price]]]:
    members = await uow.products.in_group(group)
    found = []
    for member in sorted(members, key=lambda p: (p.plan_rank or 0, p.id)):
        prices = [p for p in await uow.prices.of_product(member.id) if p.active and p.currency == currency]
        if member.active and prices:
            found.append((member, sorted(prices, key=lambda p: p.id)))
    return found


async def change_preview(
    uow: UnitOfWork, subscription_id: str, price_id: str, quantity: int | None, code: str | None, at: datetime
) -> ChangeOption:
    """What moving to one price would cost at `at`; the same numbers an order at `at` charges. Everything
    it reads comes in one statement."""
    read = await uow.change_read(subscription_id, price_id, code)
    subscription = read.subscription
    if subscription is None:
        raise NotFound("subscription", subscription_id)
    current = _held(subscription, read.product, read.price)
    target_price, target_product = read.target_price, read.target_product
    problems = Violations()
    if target_price is None or target_product is None:
        raise NotFound("price", price_id)
    if not target_price.is_recurring or not target_price.active:
        problems.add("price_not_available", f"price {price_id!r} is not an active recurring price", "price")
    if target_price.currency != subscription.currency:
        problems.add("currency_mismatch", f"price {price_id!r} is in {target_price.currency}", "price")
    if problems:
        raise InvalidInput(problems.items)
    coupon = None if code is None else _redeemable(code, read.promotion_code, read.coupon, subscription.currency, at)
    # Priced as an order at `at` would charge it: by the upgrade path to this price when there is one.
    path = _best_path(read.upgrade_paths, current[1], price_id)
    target = (target_product, target_price)
    return option(subscription, current, target, quantity or subscription.quantity, at, path, coupon)


async def switch_product(uow: UnitOfWork, subscription_id: str, product_id: str, now: datetime) -> ProductSwitched:
    """Switches to another product at the next billing date, at its best-matching price, with no trial."""
    subscription = await get_subscription(uow, subscription_id)
    _, current = await holding(uow, subscription)
    product = await uow.products.get(product_id)
    if product is None:
        raise NotFound("product", product_id)
    if product.id == current.product or not product.active:
        code, why = ("same_product", "is the product it has") if product.active else ("product_inactive", "is inactive")
        raise InvalidInput([Violation(code, f"product {product_id!r} {why}", "product")])
    matched = match_price(current, await uow.prices.of_product(product_id))
    if matched is None:
        where = f" and location {current.location}" if current.location else " and no location"
        raise UseCaseError(
            f"product {product_id!r} has no active price in {current.currency}{where}", "no_matching_price"
        )
    switched = ProductSwitched(subscription_id, product.id, product.name, matched.id, subscription.current_period_end)
    await emit(uow.outbox, SubscriptionProductSwitched, switched, subscription_id, now)
    return switched
