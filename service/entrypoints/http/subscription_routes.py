"""Subscription-change endpoints: API keys, the mirror, change options and previews, product switches,
upgrade orders on behalf, upgrade links and the summary report."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Literal

import msgspec
from aiohttp import web

from contracts import subscriptions as s
from contracts.catalog import in_utc
from service.app import subscriptions, upgrades
from service.app.mapping import to_contract, to_domain
from service.app.ports import UnitOfWork
from service.app.reports import summary
from service.domain.subscriptions import Subscription
from service.entrypoints.http.auth import new_api_key_secret
from service.entrypoints.http.deps import Deps, deps
from service.entrypoints.http.idempotency import answered_once
from service.entrypoints.http.problems import ProblemError, decode_body, path_key
from service.entrypoints.http.responses import json_response

routes = web.RouteTableDef()
# Instants a billing question can be about; outside them calendar arithmetic would overflow.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _instant(request: web.Request, name: str, default: datetime | None = None) -> datetime:
    """An RFC 3339 query parameter with a time zone, as the same instant in UTC; 422 when it is not one."""
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise ProblemError(422, "invalid_query", f"`{name}` is required (RFC 3339)")
        return default
    try:
        value = msgspec.convert(raw, datetime)
    except msgspec.ValidationError:
        value = None
    if value is None or value.tzinfo is None:
        raise ProblemError(422, "invalid_query", f"`{name}` must be an RFC 3339 instant with a time zone")
    if not EARLIEST <= value <= LATEST:
        raise ProblemError(422, "invalid_query", f"`{name}` must lie between the years 1970 and 9000")
    return in_utc(value)


def _link_secret(d: Deps) -> str:
    if d.link_secret is None:
        raise ProblemError(503, "links_not_configured", "set UPSELL_LINK_SECRET to use upgrade links")
    return d.link_secret


@routes.post("/v1/api-keys")
async def create_api_key(request: web.Request) -> web.Response:
    d = deps(request)
    principal = await d.auth.require(request, "admin")
    body = decode_body(await request.read(), s.ApiKeyInput)
    key_id = f"key_{secrets.token_hex(8)}"
    secret, secret_hash = new_api_key_secret()
    roles = sorted(set(body.roles))

    async def work(uow: UnitOfWork) -> web.Response:
        await uow.api_keys.add(key_id, body.name, list(roles), secret_hash)
        return json_response(s.ApiKey(key_id, body.name, roles, secret), 201)

    return await answered_once(request, principal.name, work)


@routes.delete("/v1/api-keys/{id}")
async def revoke_api_key(request: web.Request) -> web.Response:
    d = deps(request)
    await d.auth.require(request, "admin")
    key_id = path_key(request)
    try:
        async with d.new_uow() as uow:
            if not await uow.api_keys.revoke(key_id):
                raise ProblemError(404, "api_key_not_found", "no live API key has this id")
    finally:
        # At once in this process, whatever the commit's outcome; the others hear it from PostgreSQL.
        d.auth.cache.changed(key_id)
    return web.Response(status=204)


@routes.put("/v1/subscriptions/{id}")
async def put_subscription(request: web.Request) -> web.Response:
    d = deps(request)
    await d.auth.require(request, "backend")
    key = path_key(request)
    body = decode_body(await request.read(), s.Subscription)
    if body.id is not None and body.id != key:
        raise ProblemError(422, "key_mismatch", f"`id` in the body is {body.id!r}, the path says {key!r}")
    subscription = to_domain(body, Subscription, id=key)
    async with d.new_uow() as uow:
        created = await subscriptions.put_subscription(uow, subscription)
    return json_response(to_contract(subscription, s.Subscription), 201 if created else 200)


@routes.get("/v1/subscriptions/{id}")
async def get_subscription(request: web.Request) -> web.Response:
    d = deps(request)
    await d.auth.require(request, "backend")
    async with d.new_uow() as uow:
        subscription = await subscriptions.get_subscription(uow, path_key(request))
    return json_response(to_contract(subscription, s.Subscription))


@routes.get("/v1/subscriptions/{id}/change-options")
async def change_options(request: web.Request) -> web.Response:
    d = deps(request)
    await d.auth.require(request, "backend", "operator")
    at = _instant(request, "at", d.clock())
    async with d.new_uow() as uow:
        options = await subscriptions.change_options(uow, path_key(request), at)
    return json_response(options)


@routes.post("/v1/subscriptions/{id}/change-preview")
async def change_preview(request: web.Request) -> web.Response:
    d = deps(request)
    await d.auth.require(request, "backend", "operator")
    body = decode_body(await request.read(), s.ChangePreviewRequest)
    at = _instant(request, "at", d.clock())
    # One statement reads all it needs: no transaction around it.
    async with d.new_uow(read_only=True) as uow:
        preview = await subscriptions.change_preview(
            uow, path_key(request), body.price, body.quantity, body.promotion_code, at
        )
    return json_response(preview)


@routes.post("/v1/subscriptions/{id}/product-switch")
async def product_switch(request: web.Request) -> web.Response:
    d = deps(request)
    await d.auth.require(request, "backend", "operator")
    body = decode_body(await request.read(), s.ProductSwitchRequest)
    async with d.new_uow() as uow:
        switched = await subscriptions.switch_product(uow, path_key(request), body.product, d.clock())
    return json_response(switched)


def _order_request(body: s.UpgradeOrderRequest) -> upgrades.OrderRequest:
    card = body.payment
    method: Literal["current", "new"] = "new" if isinstance(card, s.NewCard) else "current"
    token = card.card_token if isinstance(card, s.NewCard) else None
    return upgrades.OrderRequest(method, token, body.upgrade_path, body.to_price, body.quantity, body.promotion_code)


@routes.post("/v1/subscriptions/{id}/upgrade-orders")
async def place_upgrade_order(request: web.Request) -> web.Response:
    d = deps(request)
    principal = await d.auth.require(request, "operator")
    body = decode_body(await request.read(), s.UpgradeOrderRequest)
    subscription = path_key(request)

    async def work(uow: UnitOfWork) -> web.Response:
        order = await upgrades.place_order(uow, subscription, _order_request(body), principal.name, d.clock())
        return json_response(to_contract(order, s.UpgradeOrder), 201)

    return await answered_once(request, principal.name, work)


@routes.post("/v1/upgrade-paths/{id}/links")
async def create_upgrade_link(request: web.Request) -> web.Response:
    d = deps(request)
    principal = await d.auth.require(request, "backend", "operator")
    secret = _link_secret(d)
    body = decode_body(await request.read(), s.UpgradeLinkRequest)
    path = path_key(request)
    base = (d.public_url or f"{request.scheme}://{request.host}").rstrip("/")

    async def work(uow: UnitOfWork) -> web.Response:
        token, expires_at = await upgrades.create_link(uow, path, body.subscription, body.expires_in, secret, d.clock())
        return json_response(s.UpgradeLink(token, f"{base}/v1/upgrade-links/{token}", expires_at), 201)

    return await answered_once(request, principal.name, work)


@routes.get("/v1/upgrade-links/{token}")
async def open_upgrade_link(request: web.Request) -> web.Response:
    d = deps(request)
    secret = _link_secret(d)
    async with d.new_uow() as uow:
        link, path, preview = await upgrades.open_link(uow, request.match_info["token"], secret, d.clock())
    return json_response(s.UpgradeLinkView(path.name, path.to_price, link.subscription, link.expires_at, preview))


@routes.post("/v1/upgrade-links/{token}/accept")
async def accept_upgrade_link(request: web.Request) -> web.Response:
    d = deps(request)
    secret = _link_secret(d)
    raw = await request.read()
    body = decode_body(raw, s.UpgradeLinkAccept) if raw.strip() else s.UpgradeLinkAccept()
    order_request = _order_request(s.UpgradeOrderRequest(payment=body.payment))
    async with d.new_uow() as uow:
        order = await upgrades.accept_link(uow, request.match_info["token"], secret, order_request, d.clock())
    return json_response(to_contract(order, s.UpgradeOrder), 201)


@routes.get("/v1/reports/summary")
async def report_summary(request: web.Request) -> web.Response:
    d = deps(request)
    await d.auth.require(request, "viewer")
    start, end = _instant(request, "from"), _instant(request, "to")
    if end <= start:
        raise ProblemError(422, "invalid_range", "`to` must be after `from`")
    async with d.new_uow() as uow:
        report = await summary(uow, start, end)
    return json_response(report)
