"""`upsell catalog apply FILE`: the whole catalog from YAML or JSON, idempotent, with a dry run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import msgspec
import yaml

from contracts.catalog import CatalogFile
from service.app import catalog
from service.app.errors import InvalidInput
from service.app.mapping import to_domain
from service.app.ports import UnitOfWorkFactory
from service.domain.catalog import Coupon, Price, Product, PromotionCode, Violation
from service.domain.subscriptions import UpgradePath


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    kind: str
    key: str
    change: catalog.Change


class _DryRun(Exception):
    """Raised inside the transaction of a dry run so that nothing it wrote is kept."""


def read_catalog(path: Path) -> CatalogFile:
    """Parses a catalog file; YAML is a superset of JSON, so one reader takes both."""
    raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    return msgspec.convert(raw if raw is not None else {}, CatalogFile)


def _keyed(items: list[Any], key: str, kind: str) -> list[Any]:
    missing = [i for i, item in enumerate(items) if getattr(item, key) is None]
    if missing:
        raise InvalidInput([Violation(f"{key}_required", f"every {kind} needs `{key}`", f"$.{kind}s[{missing[0]}]")])
    return items


async def apply_catalog(new_uow: UnitOfWorkFactory, file: CatalogFile, *, dry_run: bool) -> list[Change]:
    """Applies the file in one transaction: all of it or none; a dry run reports and rolls back.

    Prices are written without their upsell first, then with it, so pairs may point forward.
    """
    changes: list[Change] = []
    try:
        async with new_uow() as uow:
            for product in [to_domain(p, Product) for p in _keyed(file.products, "id", "product")]:
                changes.append(Change("product", product.id, await catalog.put_product(uow, product)))
            for coupon in [to_domain(c, Coupon) for c in _keyed(file.coupons, "id", "coupon")]:
                changes.append(Change("coupon", coupon.id, await catalog.put_coupon(uow, coupon)))
            prices = [to_domain(p, Price) for p in _keyed(file.prices, "id", "price")]
            before = {price.id: await uow.prices.get(price.id) for price in prices}
            # Every price first without its upsell, then with it: pairs are checked against the
            # prices as the file leaves them, whatever their order in the file.
            for price in prices:
                if before[price.id] != price:
                    await catalog.put_price(uow, dataclasses.replace(price, upsell=None))
            for price in prices:
                await catalog.put_price(uow, price)
                changes.append(Change("price", price.id, catalog.change_of(before[price.id], price)))
            for promo in [to_domain(p, PromotionCode) for p in _keyed(file.promotion_codes, "code", "promotion_code")]:
                changes.append(Change("promotion_code", promo.code, await catalog.put_promotion_code(uow, promo)))
            for path in [to_domain(p, UpgradePath) for p in _keyed(file.upgrade_paths, "id", "upgrade_path")]:
                changes.append(Change("upgrade_path", path.id, await catalog.put_upgrade_path(uow, path)))
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return changes
