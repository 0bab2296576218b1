"""One instant written in any offset gets one answer, over HTTP on the real PostgreSQL.

The reported case: a monthly subscription (2026-04-15T00:00Z to 2026-05-15T00:00Z) previewed for a
quarterly price at 2026-05-01T10:00:00+14:00, which is 2026-04-30T20:00:00Z: the next billing date is a
quarter after the UTC instant, 2026-07-30T20:00:00Z, whatever offset `at` and the periods are written in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from service.adapters.postgres import migrate
from tests.integration.helpers import ADMIN, Clock, http_client
from tests.integration.test_subscription_changes import Client, build_catalog, put, subscription_body

pytestmark = pytest.mark.integration

# One instant, 2026-04-30T20:00:00Z, as callers in other places write it.
AT = ("2026-04-30T20:00:00Z", "2026-05-01T10:00:00+14:00", "2026-04-30T08:00:00-12:00", "2026-05-01T01:45:00+05:45")
PERIOD_IN_UTC = {"current_period_start": "2026-04-15T00:00:00Z", "current_period_end": "2026-05-15T00:00:00Z"}
# The same period, written at +05:45 and at -12:00.
PERIOD_ELSEWHERE = {
    "current_period_start": "2026-04-15T05:45:00+05:45",
    "current_period_end": "2026-05-14T12:00:00-12:00",
}
QUARTERLY = {"interval": "month", "interval_count": 3}
HALF_YEARLY = {"interval": "month", "interval_count": 6}


async def with_quarters(client: Client) -> None:
    await build_catalog(client)
    for key, recurring, amount in (("price_premium_q", QUARTERLY, 9000), ("price_premium_h", HALF_YEARLY, 17000)):
        body = {"product": "prod_premium", "currency": "usd", "unit_amount": amount, "recurring": recurring}
        await put(client, f"/v1/prices/{key}", body)
    path = {"name": "To quarterly", "from_product": "prod_basic", "to_price": "price_premium_q"}
    await put(client, "/v1/upgrade-paths/path_q", path)


async def answer(client: Client, method: str, path: str, at: str | None = None, body: Any = None) -> Any:
    response = await client.request(method, path, params={} if at is None else {"at": at}, json=body, headers=ADMIN)
    payload = await response.json()
    assert response.status in (200, 201), payload
    return payload


async def test_previews_and_change_options_answer_the_same_in_any_offset(pool: asyncpg.Pool) -> None:
    async with http_client(pool, Clock()) as client:
        await with_quarters(client)
        await put(client, "/v1/subscriptions/sub_z", subscription_body("price_basic_monthly", **PERIOD_IN_UTC))
        await put(client, "/v1/subscriptions/sub_e", subscription_body("price_basic_monthly", **PERIOD_ELSEWHERE))
        mirror = await answer(client, "GET", "/v1/subscriptions/sub_e")
        assert {key: mirror[key] for key in PERIOD_IN_UTC} == PERIOD_IN_UTC

        for price, next_billing in (
            ("price_premium_q", "2026-07-30T20:00:00Z"),
            ("price_premium_h", "2026-10-30T20:00:00Z"),
        ):
            previews = [
                await answer(client, "POST", f"/v1/subscriptions/{sub}/change-preview", at, {"price": price})
                for sub in ("sub_z", "sub_e")
                for at in AT
            ]
            assert previews[0]["next_billing_date"] == next_billing
            assert all(preview == previews[0] for preview in previews), [p for p in previews if p != previews[0]]
        options = [
            {**await answer(client, "GET", f"/v1/subscriptions/{sub}/change-options", at), "subscription": None}
            for sub in ("sub_z", "sub_e")
            for at in AT
        ]
        assert all(found == options[0] for found in options), [o for o in options if o != options[0]]
        dates = {option["next_billing_date"] for option in options[0]["options"]}
        assert "2026-07-30T20:00:00Z" in dates
        assert all(date.endswith("Z") for date in dates)


async def test_orders_and_links_on_a_period_written_elsewhere_answer_in_utc(pool: asyncpg.Pool) -> None:
    clock = Clock(datetime(2026, 4, 30, 20, tzinfo=UTC))
    async with http_client(pool, clock, link_secret="test-link-secret") as client:
        await with_quarters(client)
        placed = []
        for sub, period in (("sub_oz", PERIOD_IN_UTC), ("sub_oe", PERIOD_ELSEWHERE)):
            await put(client, f"/v1/subscriptions/{sub}", subscription_body("price_basic_monthly", **period))
            link = await answer(client, "POST", "/v1/upgrade-paths/path_q/links", body={"subscription": sub})
            assert link["expires_at"] == "2026-05-07T20:00:00Z"
            opened = await client.get(f"/v1/upgrade-links/{link['token']}")
            preview = (await opened.json())["preview"]
            assert preview["next_billing_date"] == "2026-07-30T20:00:00Z"
            body = {"upgrade_path": "path_q", "payment": {"method": "current"}}
            order = await answer(client, "POST", f"/v1/subscriptions/{sub}/upgrade-orders", body=body)
            assert order["amount_due_now"] == preview["amount_due_now"]
            mirror = await answer(client, "GET", f"/v1/subscriptions/{sub}")
            placed.append(
                (
                    order["amount_due_now"],
                    order["created"],
                    mirror["current_period_start"],
                    mirror["current_period_end"],
                )
            )
        assert (
            placed[0]
            == placed[1]
            == (placed[0][0], "2026-04-30T20:00:00Z", "2026-04-30T20:00:00Z", "2026-07-30T20:00:00Z")
        )


async def test_session_and_promotion_code_expiries_and_report_ranges_in_utc(pool: asyncpg.Pool) -> None:
    async with http_client(pool, Clock()) as client:
        await build_catalog(client)
        await put(
            client, "/v1/promotion-codes/LATER", {"coupon": "coupon_10", "expires_at": "2026-03-02T05:30:00+05:30"}
        )
        promo = await answer(client, "GET", "/v1/promotion-codes/LATER")
        assert promo["expires_at"] == "2026-03-02T00:00:00Z"

        session = {
            "id": "cs_offset",
            "mode": "subscription",
            "currency": "usd",
            "line_items": [{"price": "price_basic_monthly"}],
            "expires_at": "2026-03-02T08:00:00+14:00",
        }
        created = await answer(client, "POST", "/v1/checkout/sessions", body=session)
        assert created["expires_at"] == "2026-03-01T18:00:00Z"

        reports = []
        for start, end in (
            ("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"),
            ("2026-03-01T14:00:00+14:00", "2026-03-01T12:00:00-12:00"),
        ):
            response = await client.get("/v1/reports/summary", params={"from": start, "to": end}, headers=ADMIN)
            assert response.status == 200
            reports.append(await response.json())
        assert reports[0] == reports[1]
        assert (reports[1]["from"], reports[1]["to"]) == ("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z")


async def test_documents_stored_with_an_offset_are_rewritten_in_utc(pool: asyncpg.Pool) -> None:
    """Migration 007 on documents written before the service converted instants on the way in."""
    written = {**subscription_body("price_basic_monthly", **PERIOD_ELSEWHERE), "id": "sub_old"}
    sql = (Path(migrate.__file__).parent / "migrations" / "007_instants_in_utc.sql").read_text(encoding="utf-8")
    async with http_client(pool, Clock()) as client:
        await build_catalog(client)
        async with pool.acquire() as conn:
            await conn.execute(
                "insert into subscriptions (id, body) values ('sub_old', $1::jsonb)",
                msgspec.json.encode(written).decode(),
            )
            await conn.execute(
                "insert into promotion_codes (id, coupon, body) values ('OLDER', 'coupon_10', $1::jsonb)",
                '{"code": "OLDER", "coupon": "coupon_10", "expires_at": "2026-03-02T05:30:00+05:30"}',
            )
            async with conn.transaction():
                await conn.execute(sql)
            stored = msgspec.json.decode(
                await conn.fetchval("select body::text from subscriptions where id = 'sub_old'")
            )
        assert (stored["current_period_start"], stored["current_period_end"]) == (
            "2026-04-15T00:00:00.000000Z",
            "2026-05-15T00:00:00.000000Z",
        )
        assert {key: stored[key] for key in written if key not in PERIOD_IN_UTC} == {
            key: value for key, value in written.items() if key not in PERIOD_IN_UTC
        }
        mirror = await answer(client, "GET", "/v1/subscriptions/sub_old")
        assert {key: mirror[key] for key in PERIOD_IN_UTC} == PERIOD_IN_UTC
        promo = await answer(client, "GET", "/v1/promotion-codes/OLDER")
        assert promo["expires_at"] == "2026-03-02T00:00:00Z"
