"""Subscription changes over HTTP on the real PostgreSQL: API keys, the mirror,
change options and previews, product switches, upgrade orders, upgrade links and the summary report.

The catalog is built through the API. The Clock stands at 2026-03-01T12:00Z; the monthly subscriptions run
from 2026-02-15T00:00Z to 2026-03-15T00:00Z (28 days = 2,419,200 s), so at the Clock 13.5 days are left
(a share of 27/56) and at 2026-03-08T00:00Z 7 days (a share of 1/4).
"""

from __future__ import annotations

import hashlib
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from contracts.events import OutboundEvent, SubscriptionProductSwitched, UpgradeOrderCreated
from tests.integration.helpers import ADMIN, Clock, http_client, outbox_types, seed_example_catalog

pytestmark = pytest.mark.integration

Client = TestClient[web.Request, web.Application]
Headers = dict[str, str]

PERIOD_START = "2026-02-15T00:00:00Z"
PERIOD_END = "2026-03-15T00:00:00Z"
WEEK_LEFT = "2026-03-08T00:00:00Z"

PRODUCTS: dict[str, dict[str, Any]] = {
    "prod_basic": {"name": "Basic", "plan_group": "team-plans", "plan_rank": 1},
    "prod_premium": {"name": "Premium", "plan_group": "team-plans", "plan_rank": 2},
    "prod_extra": {"name": "Extra storage", "kind": "addon", "plan_group": "team-plans"},
    "prod_plus": {"name": "Plus"},
    "prod_local": {"name": "Local"},
}
MONTH = {"interval": "month"}
YEAR = {"interval": "year"}
PRICES: dict[str, dict[str, Any]] = {
    "price_basic_monthly": {"product": "prod_basic", "currency": "usd", "unit_amount": 1002, "recurring": MONTH},
    "price_basic_yearly": {"product": "prod_basic", "currency": "usd", "unit_amount": 12000, "recurring": YEAR},
    "price_premium_monthly": {
        "product": "prod_premium",
        "currency": "usd",
        "unit_amount": 3004,
        "recurring": MONTH,
        "default": True,
    },
    "price_premium_yearly": {"product": "prod_premium", "currency": "usd", "unit_amount": 30000, "recurring": YEAR},
    "price_extra_monthly": {"product": "prod_extra", "currency": "usd", "unit_amount": 500, "recurring": MONTH},
    "price_basic_eur": {"product": "prod_basic", "currency": "eur", "unit_amount": 900, "recurring": MONTH},
    "price_basic_eur_de": {
        "product": "prod_basic",
        "currency": "eur",
        "unit_amount": 950,
        "recurring": MONTH,
        "location": "DE",
    },
    "price_premium_eur": {"product": "prod_premium", "currency": "eur", "unit_amount": 2700, "recurring": MONTH},
    "price_premium_eur_de": {
        "product": "prod_premium",
        "currency": "eur",
        "unit_amount": 2800,
        "recurring": MONTH,
        "location": "DE",
    },
    "price_plus_eur": {"product": "prod_plus", "currency": "eur", "unit_amount": 4000, "recurring": MONTH},
    "price_local_usd_fr": {
        "product": "prod_local",
        "currency": "usd",
        "unit_amount": 2000,
        "recurring": MONTH,
        "location": "FR",
    },
}
PROMOTION_CODES: dict[str, dict[str, Any]] = {
    "SAVE10": {"coupon": "coupon_10", "max_redemptions": 1},
    "OFF": {"coupon": "coupon_10", "active": False},
    "OLD": {"coupon": "coupon_10", "expires_at": "2026-02-01T00:00:00Z"},
}
PATHS: dict[str, dict[str, Any]] = {
    "path_prorate": {"name": "Basic to Premium", "from_product": "prod_basic", "to_price": "price_premium_monthly"},
    "path_fixed": {
        "name": "Basic monthly to Premium yearly for 50.00",
        "from_price": "price_basic_monthly",
        "to_price": "price_premium_yearly",
        "pricing": {"type": "fixed", "amount": 5000},
    },
    "path_quarter_off": {
        "name": "Basic to Premium, 25% off",
        "from_product": "prod_basic",
        "to_price": "price_premium_monthly",
        "pricing": {"type": "percent_off", "percent": 25},
    },
}


async def put(client: Client, path: str, body: dict[str, Any], status: int = 201) -> Any:
    response = await client.put(path, json=body, headers=ADMIN)
    payload = await response.json(content_type=None)
    assert response.status == status, payload
    return payload


async def build_catalog(client: Client) -> None:
    for key, product in PRODUCTS.items():
        await put(client, f"/v1/products/{key}", product)
    for key, price in PRICES.items():
        await put(client, f"/v1/prices/{key}", price)
    await put(client, "/v1/coupons/coupon_10", {"percent_off": 10, "duration": "once"})
    for code, promo in PROMOTION_CODES.items():
        await put(client, f"/v1/promotion-codes/{code}", promo)
    for key, path in PATHS.items():
        await put(client, f"/v1/upgrade-paths/{key}", path)


def subscription_body(price: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": "cus_1",
        "price": price,
        "quantity": 1,
        "status": "active",
        "current_period_start": PERIOD_START,
        "current_period_end": PERIOD_END,
        "payment_method": {"type": "card"},
        "currency": PRICES[price]["currency"],
    }
    body.update(changes)
    return body


async def put_subscription(client: Client, key: str, price: str, **changes: Any) -> None:
    await put(client, f"/v1/subscriptions/{key}", subscription_body(price, **changes))


async def problem(response: Any, status: int) -> str:
    """The `code` of a problem document, after checking its status and content type."""
    body = await response.json(content_type=None)
    assert response.status == status, body
    assert response.content_type == "application/problem+json"
    code: str = body["code"]
    return code


async def new_key(client: Client, name: str, roles: list[str]) -> tuple[str, Headers]:
    response = await client.post("/v1/api-keys", json={"name": name, "roles": roles}, headers=ADMIN)
    body = await response.json()
    assert response.status == 201, body
    assert body["name"] == name
    assert body["roles"] == sorted(roles)
    assert body["secret"].startswith("uk_")
    return body["id"], {"Authorization": f"Bearer {body['secret']}"}


CURRENT = {"payment": {"method": "current"}}


async def order(client: Client, sub: str, body: dict[str, Any], headers: Headers = ADMIN) -> Any:
    return await client.post(f"/v1/subscriptions/{sub}/upgrade-orders", json=body, headers=headers)


def link_client(pool: asyncpg.Pool, clock: Clock) -> AbstractAsyncContextManager[Client]:
    """helpers.http_client with a link secret, so that upgrade links work."""
    return http_client(pool, clock, link_secret="test-link-secret")


# 1. API keys


async def test_api_keys_roles_revocation_and_hashing(pool: asyncpg.Pool) -> None:
    async with http_client(pool, Clock()) as client:
        await build_catalog(client)
        viewer_id, viewer = await new_key(client, "reports", ["viewer"])
        _, backend = await new_key(client, "billing sync", ["backend"])
        operator_id, operator = await new_key(client, "support desk", ["operator"])

        assert await problem(await client.post("/v1/api-keys", json={"name": "x", "roles": ["admin"]}), 401) == (
            "unauthenticated"
        )
        forbidden = await client.post("/v1/api-keys", json={"name": "x", "roles": ["admin"]}, headers=operator)
        assert await problem(forbidden, 403) == "forbidden"

        body = subscription_body("price_basic_monthly")
        assert await problem(await client.put("/v1/subscriptions/sub_k", json=body, headers=viewer), 403) == (
            "forbidden"
        )
        assert await problem(await client.put("/v1/subscriptions/sub_k", json=body, headers=operator), 403) == (
            "forbidden"
        )
        assert (await client.put("/v1/subscriptions/sub_k", json=body, headers=backend)).status == 201
        assert (await client.get("/v1/subscriptions/sub_k", headers=operator)).status == 403  # backend only
        assert await problem(await client.get("/v1/subscriptions/sub_k", headers=viewer), 403) == "forbidden"

        assert await problem(await order(client, "sub_k", CURRENT, backend), 403) == "forbidden"
        assert await problem(await order(client, "sub_k", CURRENT, viewer), 403) == "forbidden"
        placed = await order(client, "sub_k", {**CURRENT, "upgrade_path": "path_prorate"}, operator)
        placed_body = await placed.json()
        assert placed.status == 201, placed_body
        assert placed_body["placed_by"] == operator_id

        report_path = "/v1/reports/summary?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z"
        assert (await client.get(report_path, headers=viewer)).status == 200
        assert await problem(await client.get(report_path, headers=backend), 403) == "forbidden"
        assert await problem(await client.get(report_path), 401) == "unauthenticated"
        unknown = {"Authorization": "Bearer uk_not-a-real-key"}
        assert await problem(await client.get(report_path, headers=unknown), 401) == "unauthenticated"

        revoked = await client.delete(f"/v1/api-keys/{viewer_id}", headers=ADMIN)
        assert revoked.status == 204
        assert await problem(await client.get(report_path, headers=viewer), 401) == "unauthenticated"
        again = await client.delete(f"/v1/api-keys/{viewer_id}", headers=ADMIN)
        assert await problem(again, 404) == "api_key_not_found"

    secret = viewer["Authorization"].removeprefix("Bearer ")
    rows = await pool.fetch("select * from api_keys")
    assert len(rows) == 3
    for row in rows:
        for value in row.values():
            assert value != secret
            assert value != secret.encode()
            assert not (isinstance(value, str) and secret in value)
    stored = await pool.fetchval("select secret_hash from api_keys where id = $1", viewer_id)
    assert bytes(stored) == hashlib.sha256(secret.encode()).digest()


# 2. The subscription mirror


async def test_subscription_mirror_round_trip_and_refusals(pool: asyncpg.Pool) -> None:
    async with http_client(pool, Clock()) as client:
        await build_catalog(client)
        body = subscription_body("price_basic_eur_de", quantity=3, location="DE", customer="cus_42")
        created = await client.put("/v1/subscriptions/sub_m", json=body, headers=ADMIN)
        assert created.status == 201
        read = await client.get("/v1/subscriptions/sub_m", headers=ADMIN)
        assert read.status == 200
        assert await read.json() == {**body, "id": "sub_m"}
        replaced = await client.put("/v1/subscriptions/sub_m", json={**body, "quantity": 4}, headers=ADMIN)
        assert replaced.status == 200
        assert (await (await client.get("/v1/subscriptions/sub_m", headers=ADMIN)).json())["quantity"] == 4

        unknown = await client.put(
            "/v1/subscriptions/sub_x", json={**subscription_body("price_basic_monthly"), "price": "nope"}, headers=ADMIN
        )
        assert await problem(unknown, 422) == "price_not_found"
        backwards = subscription_body(
            "price_basic_monthly", current_period_start=PERIOD_END, current_period_end=PERIOD_START
        )
        response = await client.put("/v1/subscriptions/sub_x", json=backwards, headers=ADMIN)
        assert await problem(response, 422) == "invalid_period"
        mismatch = subscription_body("price_basic_monthly", currency="eur")
        assert await problem(await client.put("/v1/subscriptions/sub_x", json=mismatch, headers=ADMIN), 422) == (
            "currency_mismatch"
        )
        malformed = await client.put(
            "/v1/subscriptions/sub_x",
            data=b'{"customer": ',
            headers={**ADMIN, "Content-Type": "application/json"},
        )
        assert await problem(malformed, 400) == "malformed_json"
        assert await problem(await client.get("/v1/subscriptions/sub_x", headers=ADMIN), 404) == (
            "subscription_not_found"
        )


# 3. Change options and previews


async def test_change_options_with_exact_proration(pool: asyncpg.Pool) -> None:
    async with http_client(pool, Clock()) as client:
        await build_catalog(client)
        await put_subscription(client, "sub_o", "price_basic_monthly")
        response = await client.get(f"/v1/subscriptions/sub_o/change-options?at={WEEK_LEFT}", headers=ADMIN)
        body = await response.json()
        assert response.status == 200, body
        assert body["subscription"] == "sub_o"
        options = {o["price"]: o for o in body["options"]}
        # Only the other usd plans of the group: never the current price, eur prices or the add-on.
        assert set(options) == {"price_basic_yearly", "price_premium_monthly", "price_premium_yearly"}
        common = {"no_change": False, "message": None, "quantity": 1, "discount": 0}
        # Same interval, a quarter left: due = (3004 - 1002) / 4 = 500.5 -> 501; credit 1002 / 4 = 250.5 -> 251.
        assert options["price_premium_monthly"] == {
            **common,
            "price": "price_premium_monthly",
            "product": "prod_premium",
            "direction": "upgrade",
            "effective": "immediately",
            "amount_due_now": 501,
            "credit": 251,
            "next_invoice_amount": 3004,
            "next_billing_date": PERIOD_END,
        }
        # Monthly to yearly: the cycle restarts now; due = 30000 - 251 = 29749.
        assert options["price_premium_yearly"] == {
            **common,
            "price": "price_premium_yearly",
            "product": "prod_premium",
            "direction": "upgrade",
            "effective": "immediately",
            "amount_due_now": 29749,
            "credit": 251,
            "next_invoice_amount": 30000,
            "next_billing_date": "2027-03-08T00:00:00Z",
        }
        # Same rank: by the amount a year, 12000 < 12 * 1002 = 12024, a downgrade at the period end.
        assert options["price_basic_yearly"] == {
            **common,
            "price": "price_basic_yearly",
            "product": "prod_basic",
            "direction": "downgrade",
            "effective": "period_end",
            "amount_due_now": 0,
            "credit": 0,
            "next_invoice_amount": 12000,
            "next_billing_date": PERIOD_END,
        }
        assert body["addons"] == [
            {
                "product": "prod_extra",
                "price": "price_extra_monthly",
                "name": "Extra storage",
                "unit_amount": 500,
                "recurring": True,
            }
        ]

        # The preview at the same instant equals the option; at the Clock a share of 27/56 is left.
        at_week = await client.post(
            f"/v1/subscriptions/sub_o/change-preview?at={WEEK_LEFT}",
            json={"price": "price_premium_monthly"},
            headers=ADMIN,
        )
        assert await at_week.json() == options["price_premium_monthly"]
        now = await client.post(
            "/v1/subscriptions/sub_o/change-preview", json={"price": "price_premium_monthly"}, headers=ADMIN
        )
        preview = await now.json()
        assert (preview["amount_due_now"], preview["credit"]) == (965, 483)  # 2002*27/56=965.25, 1002*27/56=483.1

        same = await client.post(
            "/v1/subscriptions/sub_o/change-preview",
            json={"price": "price_basic_monthly", "quantity": 1},
            headers=ADMIN,
        )
        same_body = await same.json()
        assert same.status == 200
        assert same_body["no_change"] is True
        assert same_body["message"]
        assert (same_body["direction"], same_body["amount_due_now"]) == (None, 0)
        more_seats = await client.post(
            "/v1/subscriptions/sub_o/change-preview",
            json={"price": "price_basic_monthly", "quantity": 2},
            headers=ADMIN,
        )
        assert (await more_seats.json())["no_change"] is False

        bad_at = await client.get("/v1/subscriptions/sub_o/change-options?at=tomorrow", headers=ADMIN)
        assert await problem(bad_at, 422) == "invalid_query"
        eur = await client.post(
            "/v1/subscriptions/sub_o/change-preview", json={"price": "price_premium_eur"}, headers=ADMIN
        )
        assert await problem(eur, 422) == "currency_mismatch"


# 4. Product switch


async def test_product_switch_price_matching_and_event(pool: asyncpg.Pool) -> None:
    async with http_client(pool, Clock()) as client:
        await build_catalog(client)
        await put_subscription(client, "sub_de", "price_basic_eur_de", location="DE")
        await put_subscription(client, "sub_eur", "price_basic_eur")
        await put_subscription(client, "sub_usd_year", "price_basic_yearly")
        await put_subscription(client, "sub_usd", "price_basic_monthly")

        async def switch(sub: str, product: str) -> Any:
            return await client.post(
                f"/v1/subscriptions/{sub}/product-switch", json={"product": product}, headers=ADMIN
            )

        located = await switch("sub_de", "prod_premium")
        assert located.status == 200
        assert await located.json() == {
            "subscription": "sub_de",
            "product": "prod_premium",
            "product_name": "Premium",
            "price": "price_premium_eur_de",
            "effective_at": PERIOD_END,
            "trial_applied": False,
        }
        fallback = await (await switch("sub_de", "prod_plus")).json()
        assert fallback["price"] == "price_plus_eur"
        no_location = await (await switch("sub_eur", "prod_premium")).json()
        assert no_location["price"] == "price_premium_eur"
        same_interval = await (await switch("sub_usd_year", "prod_premium")).json()
        assert same_interval["price"] == "price_premium_yearly"  # over the default monthly price

        refused = await switch("sub_usd", "prod_local")
        refused_body = await refused.json()
        assert await problem(refused, 422) == "no_matching_price"
        assert "usd" in refused_body["detail"]
        assert await problem(await switch("sub_usd", "prod_basic"), 422) == "same_product"

        # The switch waits for the next billing date: the mirror keeps its price.
        mirror = await (await client.get("/v1/subscriptions/sub_de", headers=ADMIN)).json()
        assert mirror["price"] == "price_basic_eur_de"

    assert await outbox_types(pool, "sub_de") == ["subscription.product_switched"] * 2
    assert await outbox_types(pool, "sub_usd") == []
    raw = await pool.fetchval("select body from outbox where correlation_id = 'sub_de' order by id limit 1")
    event = msgspec.json.decode(bytes(raw), type=OutboundEvent)
    assert isinstance(event, SubscriptionProductSwitched)
    assert msgspec.to_builtins(event.data) == {
        "subscription": "sub_de",
        "product": "prod_premium",
        "product_name": "Premium",
        "price": "price_premium_eur_de",
        "effective_at": PERIOD_END,
        "trial_applied": False,
    }


# 5. Upgrade orders on behalf


async def test_upgrade_order_refusals(pool: asyncpg.Pool) -> None:
    async with http_client(pool, Clock()) as client:
        await build_catalog(client)
        await put_subscription(client, "sub_top", "price_premium_monthly")
        await put_subscription(client, "sub_paypal", "price_basic_monthly", payment_method={"type": "paypal"})
        await put_subscription(client, "sub_r", "price_basic_monthly")

        assert await problem(await order(client, "sub_top", CURRENT), 422) == "no_upgrade_configured"
        path_elsewhere = {**CURRENT, "upgrade_path": "path_fixed"}
        assert await problem(await order(client, "sub_top", path_elsewhere), 422) == "no_upgrade_configured"
        assert await problem(await order(client, "sub_paypal", CURRENT), 422) == "payment_method_not_card"
        raw_card = {"payment": {"method": "new", "card_token": "4242 4242 4242 4242"}}
        assert await problem(await order(client, "sub_r", raw_card), 422) == "raw_card_data_refused"
        codes = {"NOPE": "promotion_code_unknown", "OFF": "promotion_code_inactive", "OLD": "promotion_code_expired"}
        for code, refusal in codes.items():
            response = await order(client, "sub_r", {**CURRENT, "upgrade_path": "path_prorate", "promotion_code": code})
            assert await problem(response, 422) == refusal
        assert await problem(await order(client, "sub_missing", CURRENT), 404) == "subscription_not_found"

        mirror = await (await client.get("/v1/subscriptions/sub_r", headers=ADMIN)).json()
        assert mirror["price"] == "price_basic_monthly"
    assert await outbox_types(pool, "sub_r") == []
    assert await pool.fetchval("select count(*) from upgrade_orders") == 0


async def test_upgrade_order_matches_preview_and_is_idempotent(pool: asyncpg.Pool) -> None:
    async with http_client(pool, Clock()) as client:
        await build_catalog(client)
        operator_id, operator = await new_key(client, "support", ["operator"])
        await put_subscription(client, "sub_u", "price_basic_monthly")
        await put_subscription(client, "sub_u2", "price_basic_monthly")

        preview = await (
            await client.post(
                "/v1/subscriptions/sub_u/change-preview",
                json={"price": "price_premium_monthly", "promotion_code": "SAVE10"},
                headers=operator,
            )
        ).json()
        # 965 prorated, 10% off is 96.5 -> 97.
        assert (preview["amount_due_now"], preview["discount"]) == (868, 97)

        request = {
            "upgrade_path": "path_prorate",
            "payment": {"method": "new", "card_token": "tok_visa_123"},
            "promotion_code": "SAVE10",
        }
        key = {**operator, "Idempotency-Key": "order-1"}
        first = await order(client, "sub_u", request, key)
        placed = await first.json()
        assert first.status == 201, placed
        assert placed["amount_due_now"] == preview["amount_due_now"] == 868
        assert placed["discount"] == 97
        assert placed["from_price"] == "price_basic_monthly"
        assert placed["to_price"] == "price_premium_monthly"
        assert placed["quantity"] == 1
        assert placed["placed_by"] == operator_id
        assert placed["payment_method"] == "new"
        assert placed["created"] == "2026-03-01T12:00:00Z"
        assert placed["id"].startswith("uo_")

        retry = await order(client, "sub_u", request, key)
        assert retry.status == 201
        assert await retry.json() == placed

        mirror = await (await client.get("/v1/subscriptions/sub_u", headers=ADMIN)).json()
        assert mirror["price"] == "price_premium_monthly"
        assert (mirror["current_period_start"], mirror["current_period_end"]) == (PERIOD_START, PERIOD_END)

        exhausted = await order(
            client, "sub_u2", {**CURRENT, "upgrade_path": "path_prorate", "promotion_code": "SAVE10"}
        )
        assert await problem(exhausted, 422) == "promotion_code_exhausted"
        reused = await order(client, "sub_u2", request, key)
        assert await problem(reused, 422) == "idempotency_key_reused"

    assert await outbox_types(pool, "sub_u") == ["upgrade_order.created"]
    assert await outbox_types(pool, "sub_u2") == []
    assert await pool.fetchval("select times_redeemed from promotion_codes where id = 'SAVE10'") == 1
    raw = await pool.fetchval("select body from outbox where correlation_id = 'sub_u'")
    event = msgspec.json.decode(bytes(raw), type=OutboundEvent)
    assert isinstance(event, UpgradeOrderCreated)
    data = msgspec.to_builtins(event.data)
    assert {k: data[k] for k in placed} == placed


async def test_upgrade_order_quantity_and_path_pricing(pool: asyncpg.Pool) -> None:
    async with http_client(pool, Clock()) as client:
        await build_catalog(client)
        for sub in ("sub_q", "sub_fixed", "sub_pct"):
            await put_subscription(client, sub, "price_basic_monthly")

        # Three seats: (3 * 3004 - 1002) * 27/56 = 216270/56 = 3861.96 -> 3862.
        preview = await client.post(
            "/v1/subscriptions/sub_q/change-preview",
            json={"price": "price_premium_monthly", "quantity": 3},
            headers=ADMIN,
        )
        assert (await preview.json())["amount_due_now"] == 3862
        seats = await order(client, "sub_q", {**CURRENT, "upgrade_path": "path_prorate", "quantity": 3})
        seats_body = await seats.json()
        assert seats.status == 201, seats_body
        assert (seats_body["quantity"], seats_body["amount_due_now"]) == (3, 3862)
        mirror = await (await client.get("/v1/subscriptions/sub_q", headers=ADMIN)).json()
        assert (mirror["price"], mirror["quantity"]) == ("price_premium_monthly", 3)

        fixed = await order(client, "sub_fixed", {**CURRENT, "upgrade_path": "path_fixed"})
        fixed_body = await fixed.json()
        assert fixed.status == 201, fixed_body
        assert (fixed_body["to_price"], fixed_body["amount_due_now"], fixed_body["discount"]) == (
            "price_premium_yearly",
            5000,
            0,
        )
        # Monthly to yearly restarts the cycle now.
        restarted = await (await client.get("/v1/subscriptions/sub_fixed", headers=ADMIN)).json()
        assert restarted["price"] == "price_premium_yearly"
        assert (restarted["current_period_start"], restarted["current_period_end"]) == (
            "2026-03-01T12:00:00Z",
            "2027-03-01T12:00:00Z",
        )

        # 25% off the prorated 965: 723.75 -> 724.
        pct = await order(client, "sub_pct", {**CURRENT, "upgrade_path": "path_quarter_off"})
        pct_body = await pct.json()
        assert pct.status == 201, pct_body
        assert pct_body["amount_due_now"] == 724

        path = await (await client.get("/v1/upgrade-paths/path_quarter_off", headers=ADMIN)).json()
        assert path["pricing"] == {"type": "percent_off", "percent": "25"}
        assert path["from_product"] == "prod_basic"


# 6. Upgrade links


async def test_upgrade_links(pool: asyncpg.Pool) -> None:
    clock = Clock()
    async with http_client(pool, clock) as plain:
        await build_catalog(plain)
        await put_subscription(plain, "sub_l", "price_basic_monthly")
        await put_subscription(plain, "sub_late", "price_basic_monthly")
        unconfigured = await plain.post(
            "/v1/upgrade-paths/path_prorate/links", json={"subscription": "sub_l"}, headers=ADMIN
        )
        assert await problem(unconfigured, 503) == "links_not_configured"

    async with link_client(pool, clock) as client:
        created = await client.post(
            "/v1/upgrade-paths/path_prorate/links", json={"subscription": "sub_l"}, headers=ADMIN
        )
        link = await created.json()
        assert created.status == 201, link
        token = link["token"]
        assert link["expires_at"] == "2026-03-08T12:00:00Z"
        assert link["url"].endswith(f"/v1/upgrade-links/{token}")

        opened = await client.get(f"/v1/upgrade-links/{token}")
        view = await opened.json()
        assert opened.status == 200, view
        assert view["name"] == "Basic to Premium"
        assert view["to_price"] == "price_premium_monthly"
        assert view["subscription"] == "sub_l"
        assert (view["preview"]["direction"], view["preview"]["amount_due_now"]) == ("upgrade", 965)

        link_id, _, signature = token.partition(".")
        tampered = f"{link_id}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
        assert await problem(await client.get(f"/v1/upgrade-links/{tampered}"), 404) == "upgrade_link_not_found"
        assert await problem(await client.post(f"/v1/upgrade-links/{tampered}/accept"), 404) == (
            "upgrade_link_not_found"
        )

        accepted = await client.post(f"/v1/upgrade-links/{token}/accept")
        accepted_body = await accepted.json()
        assert accepted.status == 201, accepted_body
        assert accepted_body["amount_due_now"] == view["preview"]["amount_due_now"]
        assert accepted_body["to_price"] == "price_premium_monthly"
        assert accepted_body["placed_by"] == f"upgrade_link:{link_id}"
        assert await problem(await client.post(f"/v1/upgrade-links/{token}/accept"), 409) == "upgrade_link_used"
        assert await problem(await client.get(f"/v1/upgrade-links/{token}"), 409) == "upgrade_link_used"
        mirror = await (await client.get("/v1/subscriptions/sub_l", headers=ADMIN)).json()
        assert mirror["price"] == "price_premium_monthly"

        short = await client.post(
            "/v1/upgrade-paths/path_prorate/links", json={"subscription": "sub_late", "expires_in": 3600}, headers=ADMIN
        )
        late = (await short.json())["token"]
        assert (await client.get(f"/v1/upgrade-links/{late}")).status == 200
        clock.advance(timedelta(hours=1))
        assert await problem(await client.get(f"/v1/upgrade-links/{late}"), 410) == "upgrade_link_expired"
        assert await problem(await client.post(f"/v1/upgrade-links/{late}/accept"), 410) == "upgrade_link_expired"

    assert await outbox_types(pool, "sub_l") == ["upgrade_order.created"]
    assert await outbox_types(pool, "sub_late") == []


# 7. The summary report


async def test_report_summary(pool: asyncpg.Pool) -> None:
    await seed_example_catalog(pool)
    async with http_client(pool, Clock()) as client:
        await build_catalog(client)
        session = {"mode": "subscription", "currency": "usd", "line_items": [{"price": "price_pro_monthly"}]}
        for key in ("cs_taken", "cs_declined"):
            created = await client.post("/v1/checkout/sessions", json={**session, "id": key}, headers=ADMIN)
            assert created.status == 201
            assert (await created.json())["upsell"]["eligible"] is True
        toggled = await client.post("/v1/checkout/sessions/cs_taken/upsell", json={"selected": True}, headers=ADMIN)
        assert (await toggled.json())["amount_total"] == 100000
        for key in ("cs_taken", "cs_declined"):
            done = await client.post(f"/v1/checkout/sessions/{key}/complete", json={"payment": "pi"}, headers=ADMIN)
            assert done.status == 200

        await put_subscription(client, "sub_rep", "price_basic_monthly")
        upgraded = await order(client, "sub_rep", {**CURRENT, "upgrade_path": "path_prorate"})
        assert upgraded.status == 201

        _, viewer = await new_key(client, "finance", ["viewer"])
        response = await client.get(
            "/v1/reports/summary?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z", headers=viewer
        )
        report = await response.json()
        assert response.status == 200, report
        assert report == {
            "from": "2026-03-01T00:00:00Z",
            "to": "2026-03-02T00:00:00Z",
            "currencies": {
                "usd": {
                    "first_purchases": {"count": 2, "amount": 100000 + 10000},
                    "upgrades": {"count": 1, "amount": 965},
                    "upsells": {"offered": 2, "accepted": 1, "take_rate": "0.5000", "amount": 90000},
                }
            },
        }

        before = await (
            await client.get("/v1/reports/summary?from=2026-02-01T00:00:00Z&to=2026-03-01T00:00:00Z", headers=viewer)
        ).json()
        assert before["currencies"] == {}
        backwards = await client.get(
            "/v1/reports/summary?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", headers=viewer
        )
        assert await problem(backwards, 422) == "invalid_range"


async def test_yearly_to_higher_ranked_monthly_carries_credit(pool: asyncpg.Pool) -> None:
    async with http_client(pool, Clock()) as client:
        await build_catalog(client)
        year = {"current_period_start": "2026-01-01T00:00:00Z", "current_period_end": "2027-01-01T00:00:00Z"}
        await put_subscription(client, "sub_y", "price_basic_yearly", **year)
        response = await client.post(
            "/v1/subscriptions/sub_y/change-preview", json={"price": "price_premium_monthly"}, headers=ADMIN
        )
        preview = await response.json()
        assert response.status == 200, preview
        # Ranks decide: an upgrade although it bills less a year. 305.5 of 365 days left:
        # credit = 12000 * 305.5 / 365 = 10043.8 -> 10044; due = max(0, 3004 - 10044) = 0.
        assert preview["direction"] == "upgrade"
        assert preview["effective"] == "immediately"
        assert (preview["credit"], preview["amount_due_now"], preview["next_invoice_amount"]) == (10044, 0, 0)
        assert preview["next_billing_date"] == "2026-04-01T12:00:00Z"


async def test_amount_off_coupon_in_another_currency_is_not_taken_off(pool: asyncpg.Pool) -> None:
    async with http_client(pool, Clock()) as client:
        await build_catalog(client)
        await put(client, "/v1/coupons/coupon_eur_5", {"amount_off": 500, "currency": "eur", "duration": "once"})
        await put(client, "/v1/promotion-codes/EURO5", {"coupon": "coupon_eur_5"})
        await put_subscription(client, "sub_c", "price_basic_monthly")
        response = await order(client, "sub_c", {**CURRENT, "upgrade_path": "path_prorate", "promotion_code": "EURO5"})
        body = await response.json()
        # As at checkout, an amount in euros is never taken off a charge in dollars.
        assert response.status == 422, body
        assert body["code"] == "coupon_currency_mismatch"


async def test_a_preview_is_one_statement(database_url: str, pool: asyncpg.Pool) -> None:
    # Its subscription, both prices and products, the promotion code with its coupon and the upgrade
    # paths, read in one round trip outside a transaction (a backend asks before every upgrade page).
    statements: list[str] = []

    def record(query: asyncpg.connection.LoggedQuery) -> None:
        statements.append(query.query)

    async def logged(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(record)

    async def kept(conn: asyncpg.Connection) -> None:
        """As the service's pool: a connection goes back without a reset statement."""

    watched = await asyncpg.create_pool(database_url, min_size=1, max_size=1, init=logged, reset=kept)
    try:
        async with http_client(pool, Clock()) as setup:
            await build_catalog(setup)
            await put_subscription(setup, "sub_p", "price_basic_monthly")
        async with http_client(watched, Clock()) as client:
            preview = {"price": "price_premium_monthly", "promotion_code": "SAVE10"}
            # The first use of a connection reads the types it decodes: that is asyncpg's, once.
            await client.post("/v1/subscriptions/sub_p/change-preview", json=preview, headers=ADMIN)
            statements.clear()
            response = await client.post("/v1/subscriptions/sub_p/change-preview", json=preview, headers=ADMIN)
            body = await response.json()
    finally:
        await watched.close()
    assert response.status == 200, body
    assert (body["amount_due_now"], body["discount"]) == (868, 97)
    assert len(statements) == 1, statements
