"""`upsell catalog apply FILE`: the whole catalog from YAML or JSON, idempotent, with a dry run."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec
import yaml

from contracts.catalog import CatalogFile
from service.app import catalog
from service.app.errors import InvalidInput
from service.app.mapping import to_domain
from service.app.ports import Documents, UnitOfWork, UnitOfWorkFactory
from service.domain.catalog import Coupon, Price, Product, PromotionCode, Violation
from service.domain.catalog_diff import FieldChange, field_changes
from service.domain.subscriptions import UpgradePath

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    kind: str
    key: str
    change: catalog.Change
    differences: tuple[FieldChange, ...] = ()
    """For an update, every field that changes, with its old and new value."""


@dataclasses.dataclass(frozen=True, slots=True)
class Invalidation:
    """An upsell pair or an upgrade path that leads to or from an item the file changes, and that the file
    leaves breaking rules."""

    kind: Literal["upsell_pair", "upgrade_path"]
    key: str
    """The price that names the upsell, or the upgrade path's id."""
    target: str
    """The upsell price, or the upgrade path's destination price."""
    violations: tuple[Violation, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """What a file does to the catalog: its changes, and what they leave broken elsewhere."""

    changes: list[Change]
    invalidations: list[Invalidation]


class CatalogInvalidates(InvalidInput):
    """A file refused because it leaves upsell pairs or upgrade paths broken; the plan says which."""

    def __init__(self, plan: Plan) -> None:
        violations = [
            Violation(f"{i.kind}_invalidated", "; ".join(f"{v.code}: {v.message}" for v in i.violations), i.key)
            for i in plan.invalidations
        ]
        super().__init__(violations, f"the file leaves {len(violations)} upsell pair(s) or upgrade path(s) invalid")
        self.plan = plan


class _DryRun(Exception):
    """Raised inside the transaction of a dry run so that nothing it wrote is kept."""

    def __init__(self, plan: Plan) -> None:
        super().__init__("dry run")
        self.plan = plan


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
    """Applies the file in one transaction (see `apply_catalog_plan`) and returns its changes."""
    return (await apply_catalog_plan(new_uow, file, dry_run=dry_run)).changes


async def apply_catalog_plan(new_uow: UnitOfWorkFactory, file: CatalogFile, *, dry_run: bool) -> Plan:
    """Applies the file in one transaction: all of it or none; a dry run reports and rolls back.

    A file that leaves an upsell pair or an upgrade path it does not fix broken is refused (a dry run
    lists them): a broken pair would silently stop the upsell of every session on that price.
    """
    try:
        async with new_uow() as uow:
            changes = await _write(uow, file)
            plan = Plan(changes, await _invalidations(uow, changes))
            if dry_run:
                raise _DryRun(plan)
            if plan.invalidations:
                raise CatalogInvalidates(plan)
    except _DryRun as dry:
        return dry.plan
    return plan


async def _write(uow: UnitOfWork, file: CatalogFile) -> list[Change]:
    """Prices are written without their upsell first, then with it, so pairs may point forward."""
    changes: list[Change] = []
    for product in [to_domain(p, Product) for p in _keyed(file.products, "id", "product")]:
        put = partial(catalog.put_product, uow, product)
        changes.append(await _recorded("product", product.id, uow.products, put))
    for coupon in [to_domain(c, Coupon) for c in _keyed(file.coupons, "id", "coupon")]:
        put = partial(catalog.put_coupon, uow, coupon)
        changes.append(await _recorded("coupon", coupon.id, uow.coupons, put))
    prices = [to_domain(p, Price) for p in _keyed(file.prices, "id", "price")]
    before = {price.id: await uow.prices.get(price.id) for price in prices}
    # Every price first without its upsell, then with it: pairs are checked against the
    # prices as the file leaves them, whatever their order in the file.
    for price in prices:
        if before[price.id] != price:
            await catalog.put_price(uow, dataclasses.replace(price, upsell=None))
    for price in prices:
        await catalog.put_price(uow, price)
        changes.append(_change("price", price.id, before[price.id], price))
    for promo in [to_domain(p, PromotionCode) for p in _keyed(file.promotion_codes, "code", "promotion_code")]:
        put = partial(catalog.put_promotion_code, uow, promo)
        changes.append(await _recorded("promotion_code", promo.code, uow.promotion_codes, put))
    for path in [to_domain(p, UpgradePath) for p in _keyed(file.upgrade_paths, "id", "upgrade_path")]:
        put = partial(catalog.put_upgrade_path, uow, path)
        changes.append(await _recorded("upgrade_path", path.id, uow.upgrade_paths, put))
    return changes


async def _recorded(kind: str, key: str, table: Documents[T], write: Callable[[], Awaitable[object]]) -> Change:
    """Runs one write and returns what it changed, from the item as stored before and after it (a
    promotion code keeps its redemption count, which the file does not give)."""
    before = await table.get(key)
    await write()
    after = await table.get(key)
    assert after is not None
    return _change(kind, key, before, after)


def _change(kind: str, key: str, before: T | None, after: T) -> Change:
    change = catalog.change_of(before, after)
    return Change(kind, key, change, field_changes(before, after))


async def _invalidations(uow: UnitOfWork, changes: list[Change]) -> list[Invalidation]:
    """The upsell pairs to, and the upgrade paths to or from, what the file changed that now break rules.
    Those the file names itself were checked as they were written."""
    changed = {(c.kind, c.key) for c in changes if c.change != "unchanged"}
    prices = {key for kind, key in changed if kind == "price"}
    products = {key for kind, key in changed if kind == "product"}
    found: list[Invalidation] = []
    for price in await uow.prices.upselling_to(prices) if prices else []:
        if problems := await catalog.upsell_problems(uow, price):
            found.append(Invalidation("upsell_pair", price.id, price.upsell or "", tuple(problems.items)))
    if not (prices or products):
        return found
    for path in await uow.upgrade_paths.all():
        touched = path.to_price in prices or path.from_price in prices or path.from_product in products
        if touched and (problems := await catalog.upgrade_path_problems(uow, path)):
            found.append(Invalidation("upgrade_path", path.id, path.to_price, tuple(problems.items)))
    return found
