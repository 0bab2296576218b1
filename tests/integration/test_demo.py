"""The reference checkout page's routes on the real database: off unless switched on."""

from __future__ import annotations

import asyncpg
import pytest

from tests.integration.helpers import Clock, http_client

pytestmark = pytest.mark.integration


async def test_demo_is_off_by_default(seeded: asyncpg.Pool) -> None:
    async with http_client(seeded, Clock()) as client:
        assert (await client.get("/demo/checkout")).status == 404
        assert (await client.post("/demo/checkout/sessions", json={})).status == 404
    assert await seeded.fetchval("select count(*) from checkout_sessions") == 0


@pytest.mark.parametrize(("locale", "currency", "prices"), [("en", "usd", 2), ("ja", "jpy", 1), ("fr", "usd", 2)])
async def test_demo_registers_a_cart_and_hands_out_only_its_id_and_secret(
    seeded: asyncpg.Pool, locale: str, currency: str, prices: int
) -> None:
    async with http_client(seeded, Clock(), demo=True) as client:
        page = await client.get("/demo/checkout")
        assert page.status == 200
        assert "/v1/elements/upsell.js" in await page.text()
        created = await client.post("/demo/checkout/sessions", json={"locale": locale})
        assert created.status == 201
        body = await created.json()
        assert set(body) == {"id", "client_secret"}
        view = await client.get(
            f"/v1/checkout/sessions/{body['id']}", headers={"Authorization": f"Bearer {body['client_secret']}"}
        )
        session = await view.json()
        assert (session["currency"], session["locale"], len(session["line_items"])) == (currency, locale, prices)
        assert session["upsell"]["eligible"] is True
        assert session["upsell"]["options"]["upsell"]["interval"] == "year"
        refused = await client.post("/demo/checkout/sessions", json={"locale": "xx"})
        assert refused.status == 422
