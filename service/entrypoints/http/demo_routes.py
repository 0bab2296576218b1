"""A reference checkout page (`UPSELL_DEMO=on`, off by default): `GET /demo/checkout` shows the component
beside line items and totals, on a session that the page's own small backend route registers from the
example catalog, as a merchant's backend would with its API key."""

from __future__ import annotations

import html
import json
import secrets
from functools import cache
from pathlib import Path
from string import Template
from typing import Literal, get_args

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

DemoLocale = Literal["en", "de", "fr", "ja"]

# The page's own words, in every language it offers. `names` and `every` are for the line items, which
# the page writes itself from the session view.
LABELS: dict[str, dict[str, str | dict[str, str]]] = {
    "en": {
        "title": "Checkout · upsell demo",
        "shop": "Demo shop",
        "languages": "Language",
        "order": "Your order",
        "subtotal": "Subtotal",
        "discount": "Discount",
        "total": "Total today",
        "billing": "Billing",
        "pay": "Pay",
        "names": {"prod_pro": "Pro plan", "prod_setup": "Onboarding"},
        "every": {"day": "every day", "week": "every week", "month": "every month", "year": "every year"},
    },
    "de": {
        "title": "Kasse · Upsell-Demo",
        "shop": "Demo-Shop",
        "languages": "Sprache",
        "order": "Ihre Bestellung",
        "subtotal": "Zwischensumme",
        "discount": "Rabatt",
        "total": "Heute fällig",
        "billing": "Abrechnung",
        "pay": "Bezahlen",
        "names": {"prod_pro": "Pro-Tarif", "prod_setup": "Einrichtung"},
        "every": {"day": "täglich", "week": "wöchentlich", "month": "monatlich", "year": "jährlich"},
    },
    "fr": {
        "title": "Paiement · démonstration",
        "shop": "Boutique de démonstration",
        "languages": "Langue",
        "order": "Votre commande",
        "subtotal": "Sous-total",
        "discount": "Remise",
        "total": "Total aujourd\u2019hui",
        "billing": "Facturation",
        "pay": "Payer",
        "names": {"prod_pro": "Forfait Pro", "prod_setup": "Mise en service"},
        "every": {"day": "chaque jour", "week": "chaque semaine", "month": "chaque mois", "year": "chaque année"},
    },
    "ja": {
        "title": "お会計 · デモ",
        "shop": "デモショップ",
        "languages": "言語",
        "order": "ご注文内容",
        "subtotal": "小計",
        "discount": "割引",
        "total": "本日のお支払い",
        "billing": "お支払い",
        "pay": "支払う",
        "names": {"prod_pro": "プロプラン", "prod_setup": "導入サポート"},
        "every": {"day": "毎日", "week": "毎週", "month": "毎月", "year": "毎年"},
    },
}


class DemoCart(msgspec.Struct):
    """What the demo page asks its backend for: the buyer's language."""

    locale: DemoLocale = "en"


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


@cache
def _page(locale: str) -> str:
    """The page in `locale`: its words in place, and those its script writes as JSON beside it."""
    labels = LABELS[locale]
    words = {key: html.escape(value) for key, value in labels.items() if isinstance(value, str)}
    # `<` escaped, so no word can close the script element that holds them.
    script = json.dumps({"names": labels["names"], "every": labels["every"]}, ensure_ascii=False)
    return Template(PAGE.read_text(encoding="utf-8")).substitute(
        words, lang=locale, labels=script.replace("<", "\\u003c")
    )


@routes.get("/demo/checkout")
async def checkout_page(request: web.Request) -> web.Response:
    """The page in the language of `?locale=` (en, de, fr or ja; English for anything else)."""
    asked = request.query.get("locale", "en")
    locale = asked if asked in get_args(DemoLocale) else "en"
    return web.Response(text=_page(locale), content_type="text/html", headers={"Cache-Control": "no-store"})


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
