"""Catalog endpoints (admin): idempotent upserts answering 201 when created, 200 otherwise."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from contracts import catalog as c
from service.app import catalog
from service.app.errors import NotFound
from service.app.mapping import to_contract, to_domain
from service.app.ports import Documents, UnitOfWork
from service.domain import catalog as d
from service.domain.subscriptions import UpgradePath
from service.entrypoints.http.deps import deps
from service.entrypoints.http.problems import ProblemError, decode_body, path_key
from service.entrypoints.http.responses import json_response

routes = web.RouteTableDef()
T = TypeVar("T")


async def _put(
    request: web.Request,
    body_kind: type[msgspec.Struct],
    domain_kind: type[T],
    key_field: str,
    write: Callable[[UnitOfWork, T], Awaitable[catalog.Change]],
    table: Callable[[UnitOfWork], Documents[T]],
) -> web.Response:
    dep = deps(request)
    await dep.auth.require(request, "admin")
    key = path_key(request)
    body = decode_body(await request.read(), body_kind)
    given = getattr(body, key_field)
    if given is not None and given != key:
        raise ProblemError(422, "key_mismatch", f"`{key_field}` in the body is {given!r}, the path says {key!r}")
    item = to_domain(body, domain_kind, **{key_field: key})
    async with dep.new_uow() as uow:
        change = await write(uow, item)
        stored = await table(uow).get(key)
    return json_response(to_contract(stored, body_kind), status=201 if change == "created" else 200)


async def _get(
    request: web.Request, kind: str, body_kind: type[Any], table: Callable[[UnitOfWork], Documents[Any]]
) -> web.Response:
    dep = deps(request)
    await dep.auth.require(request, "admin")
    key = request.match_info["id"]
    async with dep.new_uow() as uow:
        item = await table(uow).get(key)
    if item is None:
        raise NotFound(kind, key)
    return json_response(to_contract(item, body_kind))


@routes.put("/v1/products/{id}")
async def put_product(request: web.Request) -> web.Response:
    return await _put(request, c.Product, d.Product, "id", catalog.put_product, lambda u: u.products)


@routes.get("/v1/products/{id}")
async def get_product(request: web.Request) -> web.Response:
    return await _get(request, "product", c.Product, lambda u: u.products)


@routes.put("/v1/prices/{id}")
async def put_price(request: web.Request) -> web.Response:
    return await _put(request, c.Price, d.Price, "id", catalog.put_price, lambda u: u.prices)


@routes.get("/v1/prices/{id}")
async def get_price(request: web.Request) -> web.Response:
    return await _get(request, "price", c.Price, lambda u: u.prices)


@routes.put("/v1/coupons/{id}")
async def put_coupon(request: web.Request) -> web.Response:
    return await _put(request, c.Coupon, d.Coupon, "id", catalog.put_coupon, lambda u: u.coupons)


@routes.get("/v1/coupons/{id}")
async def get_coupon(request: web.Request) -> web.Response:
    return await _get(request, "coupon", c.Coupon, lambda u: u.coupons)


@routes.put("/v1/promotion-codes/{id}")
async def put_promotion_code(request: web.Request) -> web.Response:
    return await _put(
        request,
        c.PromotionCode,
        d.PromotionCode,
        "code",
        catalog.put_promotion_code,
        lambda u: u.promotion_codes,
    )


@routes.get("/v1/promotion-codes/{id}")
async def get_promotion_code(request: web.Request) -> web.Response:
    return await _get(request, "promotion_code", c.PromotionCode, lambda u: u.promotion_codes)


@routes.put("/v1/upgrade-paths/{id}")
async def put_upgrade_path(request: web.Request) -> web.Response:
    return await _put(request, c.UpgradePath, UpgradePath, "id", catalog.put_upgrade_path, lambda u: u.upgrade_paths)


@routes.get("/v1/upgrade-paths/{id}")
async def get_upgrade_path(request: web.Request) -> web.Response:
    return await _get(request, "upgrade_path", c.UpgradePath, lambda u: u.upgrade_paths)


async def _set_upsell(request: web.Request, upsell: str | None) -> web.Response:
    dep = deps(request)
    async with dep.new_uow() as uow:
        price = await catalog.set_upsell(uow, request.match_info["id"], upsell)
    return json_response(to_contract(price, c.Price))


@routes.put("/v1/prices/{id}/upsell")
async def put_upsell(request: web.Request) -> web.Response:
    await deps(request).auth.require(request, "admin")
    pair = decode_body(await request.read(), c.UpsellPair)
    return await _set_upsell(request, pair.price)


@routes.delete("/v1/prices/{id}/upsell")
async def delete_upsell(request: web.Request) -> web.Response:
    await deps(request).auth.require(request, "admin")
    return await _set_upsell(request, None)
