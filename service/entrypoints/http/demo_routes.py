"""A reference checkout page (`UPSELL_DEMO=on`, off by default): `GET /demo/checkout` shows the component
beside line items and totals, on a session that the page's own small backend route registers from the
example catalog, as a merchant's backend would with its API key."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

import msgspec
from aiohttp import web

from contracts.sessions import LineItemInput, SessionInput
from service.app.inbound import register
from service.entrypoints.http.auth import new_client_secret
from service.entrypoints.http.deps import deps
from service.entrypoints.http.problems import decode_body
from service.entrypoints.http.responses import json_response

PAGE = Path(__file__).parent / "demo" / "checkout.html"

routes = web.RouteTableDef()


class DemoCart(msgspec.Struct):
    """What the demo page asks its backend for: the buyer's language."""

    locale: Literal["en", "de", "fr", "ja"] = "en"


class DemoSession(msgspec.Struct):
    id: str
    client_secret: str


def _cart(locale: str) -> SessionInput:
    # The example catalog: Pro monthly (upsell: yearly) with the onboarding fee, or Pro in yen for ja.
    items = (
        [LineItemInput("price_pro_monthly_jpy")]
        if locale == "ja"
        else [LineItemInput("price_pro_monthly"), LineItemInput("price_setup")]
    )
    return SessionInput(
        id=f"cs_demo_{secrets.token_hex(8)}",
        mode="subscription",
        currency="jpy" if locale == "ja" else "usd",
        line_items=items,
        locale=locale,
        metadata={"source": "demo"},
    )


@routes.get("/demo/checkout")
async def checkout_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-store"})


@routes.post("/demo/checkout/sessions")
async def demo_session(request: web.Request) -> web.Response:
    """The merchant's backend: registers the cart and hands its page only the id and the client secret."""
    d = deps(request)
    body = await request.read()
    cart = _cart(decode_body(body, DemoCart).locale if body.strip() else "en")
    secret, secret_hash = new_client_secret()
    async with d.new_uow() as uow:
        await register(uow, cart, d.clock(), secret_hash)
    return json_response(DemoSession(cart.id, secret), 201)
