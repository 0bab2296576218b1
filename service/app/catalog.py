"""Catalog use cases: idempotent upserts with every broken rule listed, and upsell pairs."""

from __future__ import annotations

import dataclasses
from typing import Literal

from service.app.errors import InvalidInput, NotFound
from service.app.ports import UnitOfWork
from service.domain.catalog import Coupon, Price, Product, PromotionCode, Violation, Violations
from service.domain.coupons import coupon_violations
from service.domain.money import is_known_currency
from service.domain.pricing import price_violations
from service.domain.subscriptions import UpgradePath, upgrade_path_violations
from service.domain.upsell import pair_violations

Change = Literal["created", "updated", "unchanged"]


def change_of(before: object | None, after: object) -> Change:
    if before is None:
        return "created"
    return "unchanged" if before == after else "updated"


async def put_product(uow: UnitOfWork, product: Product) -> Change:
    before = await uow.products.get(product.id)
    if before != product:
        await uow.products.put(product.id, product)
    return change_of(before, product)


async def put_price(uow: UnitOfWork, price: Price) -> Change:
    """Creates or replaces a price; a named upsell must pass every pair rule."""
    problems = price_violations(price)
    if not is_known_currency(price.currency):
        problems.add("unknown_currency", f"{price.currency!r} is not an ISO 4217 currency", "currency")
    before = await uow.prices.get(price.id)
    if before is not None and before.product != price.product:
        problems.add("product_immutable", "a price cannot move to another product", "product")
    if await uow.products.get(price.product) is None:
        problems.add("product_not_found", f"product {price.product!r} does not exist", "product")
    if price.upsell is not None and not problems:
        problems.items.extend((await upsell_problems(uow, price)).items)
    if problems:
        raise InvalidInput(problems.items, f"price {price.id!r} breaks rules")
    if before != price:
        await uow.prices.put(price.id, price)
    return change_of(before, price)


async def upsell_problems(uow: UnitOfWork, price: Price) -> Violations:
    """Every pair rule that the price and the upsell it names break, against the catalog as it is now."""
    if price.upsell is None:
        return Violations()
    target = await uow.prices.get(price.upsell)
    if target is None:
        return Violations([Violation("upsell_price_not_found", f"price {price.upsell!r} does not exist", "upsell")])
    return pair_violations(price, target)


async def set_upsell(uow: UnitOfWork, price_id: str, upsell_id: str | None) -> Price:
    """Sets (or with None removes) the upsell of a price; removal affects new sessions only."""
    price = await uow.prices.get(price_id)
    if price is None:
        raise NotFound("price", price_id)
    changed = dataclasses.replace(price, upsell=upsell_id)
    await put_price(uow, changed)
    return changed


async def put_coupon(uow: UnitOfWork, coupon: Coupon) -> Change:
    problems = coupon_violations(coupon)
    if coupon.currency is not None and not is_known_currency(coupon.currency):
        problems.add("unknown_currency", f"{coupon.currency!r} is not an ISO 4217 currency", "currency")
    if problems:
        raise InvalidInput(problems.items, f"coupon {coupon.id!r} breaks rules")
    before = await uow.coupons.get(coupon.id)
    if before != coupon:
        await uow.coupons.put(coupon.id, coupon)
    return change_of(before, coupon)


async def put_promotion_code(uow: UnitOfWork, promo: PromotionCode) -> Change:
    """Creates or replaces a promotion code; its redemption count is the service's and is kept."""
    problems = Violations()
    if await uow.coupons.get(promo.coupon) is None:
        problems.add("coupon_not_found", f"coupon {promo.coupon!r} does not exist", "coupon")
    if problems:
        raise InvalidInput(problems.items, f"promotion code {promo.code!r} breaks rules")
    before = await uow.promotion_codes.get(promo.code)
    promo = dataclasses.replace(promo, times_redeemed=before.times_redeemed if before else 0)
    if before != promo:
        await uow.promotion_codes.put(promo.code, promo)
    return change_of(before, promo)


async def upgrade_path_problems(uow: UnitOfWork, path: UpgradePath) -> Violations:
    """Every rule the path breaks against the catalog as it is now; empty when it can be taken."""
    problems = upgrade_path_violations(path)
    destination = await uow.prices.get(path.to_price)
    if destination is None:
        problems.add("price_not_found", f"price {path.to_price!r} does not exist", "to_price")
    elif not destination.is_recurring:
        problems.add("not_recurring", f"price {path.to_price!r} is not recurring", "to_price")
    elif path.active and not destination.active:
        # An order on an active path to an inactive price is refused: the path would only mislead.
        problems.add("price_inactive", f"price {path.to_price!r} is not active", "to_price")
    if path.from_product is not None and await uow.products.get(path.from_product) is None:
        problems.add("product_not_found", f"product {path.from_product!r} does not exist", "from_product")
    if path.from_price is not None and await uow.prices.get(path.from_price) is None:
        problems.add("price_not_found", f"price {path.from_price!r} does not exist", "from_price")
    if path.from_price is not None and path.from_price == path.to_price:
        problems.add("same_price", "an upgrade path leads to another price", "to_price")
    return problems


async def put_upgrade_path(uow: UnitOfWork, path: UpgradePath) -> Change:
    """Creates or replaces an upgrade path from a product (or one price) to a destination price."""
    problems = await upgrade_path_problems(uow, path)
    if problems:
        raise InvalidInput(problems.items, f"upgrade path {path.id!r} breaks rules")
    before = await uow.upgrade_paths.get(path.id)
    if before != path:
        await uow.upgrade_paths.put(path.id, path)
    return change_of(before, path)
