"""Subscription changes over HTTP on the real PostgreSQL: keys and roles, previews, orders, links, report."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.integration.helpers import ADMIN, Clock, http_client, outbox_types, seed_example_catalog

pytestmark = pytest.mark.integration

Client = TestClient[web.Request, web.Application]
SUBSCRIPTION: dict[str, Any] = {
    "customer": "cus_1",
    "price": "price_pro_monthly",
    "status": "active",
    "current_period_start": "2026-03-01T00:00:00Z",
    "current_period_end": "2026-03-31T00:00:00Z",
    "payment_method": {"type": "card"},
    "currency": "usd",
}


@pytest.fixture
async def client(pool: asyncpg.Pool) -> AsyncIterator[tuple[Client, Clock]]:
    await seed_example_catalog(pool)
    clock = Clock()  # 2026-03-01T12:00Z
    async with http_client(pool, clock, link_secret="link-secret") as test_client:
        yield test_client, clock


async def _key(client: Client, *roles: str) -> dict[str, str]:
    response = await client.post("/v1/api-keys", json={"name": "-".join(roles), "roles": list(roles)}, headers=ADMIN)
    assert response.status == 201
    return {"Authorization": f"Bearer {(await response.json())['secret']}"}


async def _subscription(client: Client, subscription_id: str, **changes: Any) -> None:
    response = await client.put(f"/v1/subscriptions/{subscription_id}", json={**SUBSCRIPTION, **changes}, headers=ADMIN)
    assert response.status == 201, await response.text()


async def test_roles_are_checked_and_secrets_stored_hashed(client: tuple[Client, Clock], pool: asyncpg.Pool) -> None:
    http, _ = client
    viewer, backend = await _key(http, "viewer"), await _key(http, "backend")
    put = functools.partial(http.put, "/v1/subscriptions/sub_1", json=SUBSCRIPTION)
    assert (await put(headers=viewer)).status == 403
    assert (await put(headers=backend)).status == 201
    order = {"upgrade_path": "path_pro_to_team", "payment": {"method": "current"}}
    assert (await http.post("/v1/subscriptions/sub_1/upgrade-orders", json=order, headers=backend)).status == 403
    report = "/v1/reports/summary?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z"
    assert (await http.get(report, headers=viewer)).status == 200
    assert (await http.get(report, headers=backend)).status == 403
    secret = viewer["Authorization"].removeprefix("Bearer ")
    assert (
        await pool.fetchval("select count(*) from api_keys where secret_hash::text like '%' || $1 || '%'", secret) == 0
    )
    key_id = await pool.fetchval("select id from api_keys where name = 'viewer'")
    assert (await http.delete(f"/v1/api-keys/{key_id}", headers=ADMIN)).status == 204
    assert (await http.get(report, headers=viewer)).status == 401


async def test_preview_equals_the_order_and_a_retry_places_nothing_more(
    client: tuple[Client, Clock], pool: asyncpg.Pool
) -> None:
    http, clock = client
    operator = await _key(http, "operator")
    await _subscription(http, "sub_1", quantity=8)
    clock.advance(timedelta(days=14, hours=12))  # 2026-03-16T00:00Z: 15 of 30 days left
    preview = await http.post(
        "/v1/subscriptions/sub_1/change-preview", json={"price": "price_team_monthly"}, headers=operator
    )
    quoted = await preview.json()
    # Team for 8 seats: 5 * 2,000 + 3 * 1,500 = 14,500 against Pro's 8 * 10,000 = 80,000: an upgrade by rank,
    # same interval, so (14,500 - 80,000) / 2 is a credit and nothing is due now.
    assert (quoted["direction"], quoted["amount_due_now"], quoted["credit"]) == ("upgrade", 0, 40_000)
    order = {"to_price": "price_team_monthly", "payment": {"method": "current"}}
    headers = {**operator, "Idempotency-Key": "ticket-1"}
    placed = await http.post("/v1/subscriptions/sub_1/upgrade-orders", json=order, headers=headers)
    assert placed.status == 201
    first = await placed.json()
    assert first["amount_due_now"] == round(quoted["amount_due_now"] * 0.9)  # the path's 10% off
    again = await http.post("/v1/subscriptions/sub_1/upgrade-orders", json=order, headers=headers)
    assert (again.status, again.headers["Idempotent-Replayed"]) == (201, "true")
    assert await again.json() == first
    assert await outbox_types(pool, "sub_1") == ["upgrade_order.created"]
    stored = await (await http.get("/v1/subscriptions/sub_1", headers=ADMIN)).json()
    assert (stored["price"], stored["quantity"]) == ("price_team_monthly", 8)


@pytest.mark.parametrize(
    ("changes", "body", "code"),
    [
        ({"payment_method": {"type": "paypal"}}, {}, "payment_method_not_card"),
        ({}, {"payment": {"method": "new", "card_token": "4242 4242 4242 4242"}}, "raw_card_data_refused"),
        ({"price": "price_team_monthly"}, {"upgrade_path": None}, "no_upgrade_configured"),
        ({}, {"promotion_code": "NOPE"}, "promotion_code_unknown"),
    ],
)
async def test_order_refusals(
    client: tuple[Client, Clock], changes: dict[str, Any], body: dict[str, Any], code: str
) -> None:
    http, _ = client
    operator = await _key(http, "operator")
    await _subscription(http, "sub_1", **changes)
    order = {"upgrade_path": "path_pro_to_team", "payment": {"method": "current"}, **body}
    refused = await http.post("/v1/subscriptions/sub_1/upgrade-orders", json=order, headers=operator)
    assert refused.status == 422
    assert refused.content_type == "application/problem+json"
    assert (await refused.json())["code"] == code


async def test_upgrade_link_is_signed_single_use_and_expires(client: tuple[Client, Clock], pool: asyncpg.Pool) -> None:
    http, clock = client
    operator = await _key(http, "operator")
    await _subscription(http, "sub_1")
    await _subscription(http, "sub_2")
    made = [
        await (
            await http.post("/v1/upgrade-paths/path_pro_to_team/links", json={"subscription": s}, headers=operator)
        ).json()
        for s in ("sub_1", "sub_2")
    ]
    token = made[0]["token"]
    opened = await http.get(f"/v1/upgrade-links/{token}")
    assert (await opened.json())["to_price"] == "price_team_monthly"
    assert (await http.get(f"/v1/upgrade-links/{token[:-3]}abc")).status == 404
    accepted = await http.post(f"/v1/upgrade-links/{token}/accept")
    assert accepted.status == 201
    assert (await http.post(f"/v1/upgrade-links/{token}/accept")).status == 409
    assert await outbox_types(pool, "sub_1") == ["upgrade_order.created"]
    clock.advance(timedelta(days=8))
    assert (await http.get(f"/v1/upgrade-links/{made[1]['token']}")).status == 410


async def test_product_switch_and_report(client: tuple[Client, Clock], pool: asyncpg.Pool) -> None:
    http, _ = client
    operator = await _key(http, "operator")
    await _subscription(http, "sub_1")
    switched = await http.post(
        "/v1/subscriptions/sub_1/product-switch", json={"product": "prod_team"}, headers=operator
    )
    body = await switched.json()
    assert (body["price"], body["trial_applied"], body["effective_at"]) == (
        "price_team_monthly",
        False,
        "2026-03-31T00:00:00Z",
    )
    assert await outbox_types(pool, "sub_1") == ["subscription.product_switched"]
    await _subscription(http, "sub_2", currency="jpy", price="price_pro_monthly_jpy")
    refused = await http.post("/v1/subscriptions/sub_2/product-switch", json={"product": "prod_team"}, headers=operator)
    assert (await refused.json())["code"] == "no_matching_price"
    order = {"upgrade_path": "path_pro_to_team", "payment": {"method": "current"}}
    assert (await http.post("/v1/subscriptions/sub_1/upgrade-orders", json=order, headers=operator)).status == 201
    report = await http.get("/v1/reports/summary?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z", headers=ADMIN)
    usd = (await report.json())["currencies"]["usd"]
    assert usd["upgrades"]["count"] == 1
    assert usd["first_purchases"] == {"count": 0, "amount": 0}


async def test_a_promotion_code_is_never_redeemed_past_its_limit_by_concurrent_orders(
    client: tuple[Client, Clock], pool: asyncpg.Pool
) -> None:
    http, _ = client
    operator = await _key(http, "operator")
    code = {"coupon": "coupon_half_4_months", "max_redemptions": 1}
    assert (await http.put("/v1/promotion-codes/ONCE", json=code, headers=ADMIN)).status == 201
    subscriptions = [f"sub_{i}" for i in range(6)]
    for subscription in subscriptions:
        await _subscription(http, subscription)
    order = {"upgrade_path": "path_pro_to_team", "payment": {"method": "current"}, "promotion_code": "ONCE"}
    answers = await asyncio.gather(
        *(http.post(f"/v1/subscriptions/{s}/upgrade-orders", json=order, headers=operator) for s in subscriptions)
    )
    statuses = sorted(a.status for a in answers)
    assert statuses == [201] + [422] * 5
    refused = [await a.json() for a in answers if a.status == 422]
    assert {r["code"] for r in refused} == {"promotion_code_exhausted"}
    assert await pool.fetchval("select times_redeemed from promotion_codes where id = 'ONCE'") == 1
    assert await pool.fetchval("select count(*) from upgrade_orders") == 1


async def test_an_interval_change_restarts_the_period_even_when_the_dates_meet(client: tuple[Client, Clock]) -> None:
    http, _ = client
    operator = await _key(http, "operator")
    # Yearly, ending exactly one month after now: moving to monthly restarts the cycle now.
    yearly = {"price": "price_pro_yearly", "current_period_start": "2025-04-01T12:00:00Z"}
    await _subscription(http, "sub_1", **yearly, current_period_end="2026-04-01T12:00:00Z")
    order = {"upgrade_path": "path_pro_to_team", "payment": {"method": "current"}}
    assert (await http.post("/v1/subscriptions/sub_1/upgrade-orders", json=order, headers=operator)).status == 201
    stored = await (await http.get("/v1/subscriptions/sub_1", headers=ADMIN)).json()
    assert (stored["current_period_start"], stored["current_period_end"]) == (
        "2026-03-01T12:00:00Z",
        "2026-04-01T12:00:00Z",
    )


async def test_a_trial_leaves_no_credit_and_closed_subscriptions_are_not_upgraded(client: tuple[Client, Clock]) -> None:
    http, _ = client
    operator = await _key(http, "operator")
    await _subscription(http, "sub_trial", status="trialing")
    await _subscription(http, "sub_gone", status="canceled")
    preview = await http.post(
        "/v1/subscriptions/sub_trial/change-preview", json={"price": "price_team_yearly"}, headers=operator
    )
    assert (await preview.json())["credit"] == 0
    order = {"upgrade_path": "path_pro_to_team", "payment": {"method": "current"}}
    refused = await http.post("/v1/subscriptions/sub_gone/upgrade-orders", json=order, headers=operator)
    assert (refused.status, (await refused.json())["code"]) == (422, "subscription_not_active")


async def test_odd_input_is_a_4xx_never_a_5xx(client: tuple[Client, Clock]) -> None:
    http, _ = client
    operator = await _key(http, "operator")
    await _subscription(http, "sub_1")
    order = {"upgrade_path": "path_pro_to_team", "payment": {"method": "current"}}
    answers = [
        await http.get("/v1/subscriptions/sub_1/change-options?at=9999-12-20T00:00:00Z", headers=operator),
        await http.get("/v1/reports/summary?from=0001-01-01T00:00:00%2B01:00&to=2026-01-01T00:00:00Z", headers=ADMIN),
        await http.get("/v1/upgrade-links/ul_0123456789abcdef01234567.%C3%A9"),
        await http.get("/v1/subscriptions/sub%00x", headers=ADMIN),
        await http.post(
            "/v1/subscriptions/sub_1/upgrade-orders", json=order, headers={**operator, "Idempotency-Key": "k" * 300}
        ),
        await http.post(
            "/v1/subscriptions/sub_1/upgrade-orders",
            json={**order, "payment": {"method": "new", "card_token": "4 2 4 2 4 2 4 2 4 2 4 2 4 2 4 2"}},
            headers=operator,
        ),
        await http.post(
            "/v1/subscriptions/sub_1/upgrade-orders",
            json={**order, "to_price": "price_team_monthly", "upgrade_path": None, "quantity": 1_000_000},
            headers=operator,
        ),
    ]
    assert [a.status for a in answers] == [422, 422, 404, 422, 422, 422, 201]
    assert (await answers[5].json())["code"] == "raw_card_data_refused"
    # A path whose destination is the price the subscription has: ordering it changes nothing.
    same = {"name": "Pro again", "from_product": "prod_pro", "to_price": "price_pro_monthly"}
    assert (await http.put("/v1/upgrade-paths/path_same", json=same, headers=ADMIN)).status == 201
    await _subscription(http, "sub_2")
    again = await http.post(
        "/v1/subscriptions/sub_2/upgrade-orders", json={**order, "upgrade_path": "path_same"}, headers=operator
    )
    assert (again.status, (await again.json())["code"]) == (422, "no_change")
