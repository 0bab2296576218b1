"""Checkout sessions over HTTP on the real PostgreSQL: views, toggles, completion, auth, problems."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
import structlog
from structlog.testing import capture_logs

from tests.broker import session_data
from tests.integration.helpers import ADMIN, Clock, http_client, outbox_types

pytestmark = pytest.mark.integration

SESSION: dict[str, Any] = {
    "id": "cs_http_1",
    "mode": "subscription",
    "currency": "usd",
    "line_items": [{"price": "price_pro_monthly", "quantity": 2}, {"price": "price_setup"}],
    "discounts": [{"promotion_code": "WELCOME50"}],
    "subscription_data": {"trial_period_days": 14},
    "metadata": {"order": "42"},
}


async def test_create_read_toggle_complete(seeded: asyncpg.Pool) -> None:
    clock = Clock()
    async with http_client(seeded, clock) as client:
        created = await client.post("/v1/checkout/sessions", json=SESSION, headers=ADMIN)
        assert created.status == 201
        body = await created.json()
        secret = body["client_secret"]
        assert secret.startswith("cs_")
        assert body["upsell"] == {
            "eligible": True,
            "reason": None,
            "price": "price_pro_yearly",
            "original_price": "price_pro_monthly",
            "selected": False,
            "savings": {"amount": 40000, "percent": "16.67", "display": "16%"},
            "options": {
                "current": {
                    "price": "price_pro_monthly",
                    "interval": "month",
                    "interval_count": 1,
                    "amount": 20000,
                    "amount_total": 12500,
                    "display": {
                        "amount": "$200.00",
                        "per_interval": "$200.00/month",
                        "amount_total": "$125.00",
                        "equivalent": "$2,400.00/year, billed monthly",
                    },
                },
                "upsell": {
                    "price": "price_pro_yearly",
                    "interval": "year",
                    "interval_count": 1,
                    "amount": 200000,
                    "amount_total": 102500,
                    "display": {
                        "amount": "$2,000.00",
                        "per_interval": "$2,000.00/year",
                        "amount_total": "$1,025.00",
                        "equivalent": "$166.67/month, billed yearly",
                    },
                },
            },
        }
        assert body["amount_subtotal"] == 2 * 10000 + 5000
        assert body["amount_discount"] == 12500
        assert body["trial_period_days"] == 14
        assert body["version"] == 1

        frontend = {"Authorization": f"Bearer {secret}"}
        read = await client.get("/v1/checkout/sessions/cs_http_1", headers=frontend)
        assert read.status == 200
        assert (await read.json())["version"] == 1

        toggled = await client.post("/v1/checkout/sessions/cs_http_1/upsell", json={"selected": True}, headers=frontend)
        view = await toggled.json()
        assert toggled.status == 200
        assert view["version"] == 2
        assert [i["price"] for i in view["line_items"]] == ["price_pro_yearly", "price_setup"]
        assert view["line_items"][0]["quantity"] == 2
        assert view["line_items"][0]["amount_subtotal"] == 200000
        assert view["line_items"][0]["amount_discount"] == 100000
        assert view["trial_period_days"] == 14
        assert view["discounts"][0]["duration_in_months"] == 4
        offered = view["upsell"]["options"]
        assert offered["current"]["price"] == "price_pro_monthly"
        assert offered["upsell"]["amount_total"] == view["amount_total"]
        assert offered == body["upsell"]["options"]

        again = await client.post("/v1/checkout/sessions/cs_http_1/upsell", json={"selected": True}, headers=frontend)
        assert (await again.json())["version"] == 2

        done = await client.post("/v1/checkout/sessions/cs_http_1/complete", json={"payment": "pi_1"}, headers=ADMIN)
        completed = await done.json()
        assert done.status == 200
        assert completed["status"] == "complete"
        assert completed["upsell_accepted"] is True
        assert completed["payment"] == "pi_1"
        repeat = await client.post("/v1/checkout/sessions/cs_http_1/complete", headers=ADMIN)
        assert repeat.status == 200
        assert (await repeat.json())["version"] == completed["version"]

        refused = await client.post(
            "/v1/checkout/sessions/cs_http_1/upsell", json={"selected": False}, headers=frontend
        )
        assert refused.status == 409
        assert (await refused.json())["code"] == "session_complete"

    assert await outbox_types(seeded, "cs_http_1") == [
        "checkout.session.upsell_evaluated",
        "checkout.session.line_items_updated",
        "checkout.session.completed",
    ]
    bodies = await seeded.fetch("select body from outbox where correlation_id = 'cs_http_1' order by id")
    assert session_data(bytes(bodies[-1]["body"])).line_items[0].price == "price_pro_yearly"
    promo = await seeded.fetchval("select times_redeemed from promotion_codes where id = 'WELCOME50'")
    assert promo == 1


async def test_expired_session_refuses_toggles(seeded: asyncpg.Pool) -> None:
    clock = Clock()
    async with http_client(seeded, clock) as client:
        await client.post("/v1/checkout/sessions", json=SESSION, headers=ADMIN)
        clock.advance(timedelta(hours=25))
        response = await client.post("/v1/checkout/sessions/cs_http_1/upsell", json={"selected": True}, headers=ADMIN)
        assert response.status == 409
        assert (await response.json())["code"] == "session_expired"
        view = await (await client.get("/v1/checkout/sessions/cs_http_1", headers=ADMIN)).json()
        assert view["status"] == "expired"


async def test_ineligible_session_has_reason_and_refuses_toggle(seeded: asyncpg.Pool) -> None:
    async with http_client(seeded, Clock()) as client:
        body = {**SESSION, "id": "cs_pay", "mode": "payment", "discounts": []}
        view = await (await client.post("/v1/checkout/sessions", json=body, headers=ADMIN)).json()
        assert view["upsell"]["eligible"] is False
        assert view["upsell"]["reason"] == "not_subscription_mode"
        toggled = await client.post("/v1/checkout/sessions/cs_pay/upsell", json={"selected": True}, headers=ADMIN)
        assert toggled.status == 409
        assert (await toggled.json())["code"] == "upsell_not_available"


async def test_auth(seeded: asyncpg.Pool) -> None:
    async with http_client(seeded, Clock()) as client:
        created = await (await client.post("/v1/checkout/sessions", json=SESSION, headers=ADMIN)).json()
        other = {**SESSION, "id": "cs_other"}
        other_secret = (await (await client.post("/v1/checkout/sessions", json=other, headers=ADMIN)).json())[
            "client_secret"
        ]
        missing = await client.get("/v1/checkout/sessions/cs_http_1")
        assert missing.status == 401
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        assert missing.content_type == "application/problem+json"
        wrong_key = await client.get("/v1/checkout/sessions/cs_http_1", headers={"Authorization": "Bearer nope"})
        assert wrong_key.status == 401
        foreign = await client.get(
            "/v1/checkout/sessions/cs_http_1", headers={"Authorization": f"Bearer {other_secret}"}
        )
        assert foreign.status == 403
        # A client secret cannot complete a session or register one.
        secret = {"Authorization": f"Bearer {created['client_secret']}"}
        assert (await client.post("/v1/checkout/sessions/cs_http_1/complete", headers=secret)).status == 401
        rotated = await (await client.post("/v1/checkout/sessions/cs_http_1/client-secret", headers=ADMIN)).json()
        assert (await client.get("/v1/checkout/sessions/cs_http_1", headers=secret)).status == 403
        fresh = {"Authorization": f"Bearer {rotated['client_secret']}"}
        assert (await client.get("/v1/checkout/sessions/cs_http_1", headers=fresh)).status == 200
    stored = await seeded.fetchval("select client_secret_hash from checkout_sessions where id = 'cs_http_1'")
    assert rotated["client_secret"].encode() not in bytes(stored)


@pytest.mark.parametrize(
    ("body", "status", "code", "fields"),
    [
        (b"{not json", 400, "malformed_json", None),
        (b"[]", 422, "invalid_body", ["$"]),
        (
            b'{"id": "bad id", "mode": "rent", "line_items": [{"price": 3}]}',
            422,
            "invalid_body",
            ["$.id", "$.mode", "$.currency", "$.line_items[0].price"],
        ),
    ],
    ids=["malformed", "not-an-object", "every-field-listed"],
)
async def test_bad_bodies_get_problem_documents(
    seeded: asyncpg.Pool, body: bytes, status: int, code: str, fields: list[str] | None
) -> None:
    async with http_client(seeded, Clock()) as client:
        response = await client.post(
            "/v1/checkout/sessions", data=body, headers={**ADMIN, "Content-Type": "application/json"}
        )
        problem = await response.json(content_type="application/problem+json")
        assert response.status == status
        assert problem["code"] == code
        assert problem["status"] == status
        if fields is not None:
            assert [e["field"] for e in problem["errors"]] == fields


async def test_unknown_price_and_rules_listed(seeded: asyncpg.Pool) -> None:
    body = {
        **SESSION,
        "currency": "jpy",
        "line_items": [{"price": "price_nope"}, {"price": "price_setup"}],
        "locale": "xx-nowhere",
    }
    async with http_client(seeded, Clock()) as client:
        response = await client.post("/v1/checkout/sessions", json=body, headers=ADMIN)
        problem = await response.json(content_type="application/problem+json")
    assert response.status == 422
    assert [e["code"] for e in problem["errors"]] == ["unknown_price", "currency_mismatch", "invalid_locale"]
    assert await outbox_types(seeded, "cs_http_1") == []


async def test_conflicts_and_limits(seeded: asyncpg.Pool) -> None:
    async with http_client(seeded, Clock()) as client:
        assert (await client.post("/v1/checkout/sessions", json=SESSION, headers=ADMIN)).status == 201
        duplicate = await client.post("/v1/checkout/sessions", json=SESSION, headers=ADMIN)
        assert duplicate.status == 409
        assert (await duplicate.json())["code"] == "session_exists"
        unknown = await client.get("/v1/checkout/sessions/cs_missing", headers=ADMIN)
        assert unknown.status == 404
        assert (await unknown.json())["code"] == "session_not_found"
        huge = await client.post(
            "/v1/checkout/sessions",
            data=io.BytesIO(b"x" * (2 * 1024 * 1024)),
            headers={**ADMIN, "Content-Type": "application/json"},
        )
        assert huge.status == 413
        assert (await huge.json(content_type="application/problem+json"))["code"] == "body_too_large"
        assert (await client.get("/v1/nowhere")).status == 404
        wrong = await client.delete("/v1/checkout/sessions/cs_http_1", headers=ADMIN)
        assert wrong.status == 405
        assert wrong.headers["Allow"] == "GET,HEAD,OPTIONS"
        assert (await wrong.json(content_type="application/problem+json"))["code"] == "method_not_allowed"


async def test_a_write_logs_its_session_and_the_next_request_does_not(seeded: asyncpg.Pool) -> None:
    # A write binds its session for what it logs; the request after it, on the same connection, must not
    # carry it.
    async with http_client(seeded, Clock()) as client:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as lines:
            assert (await client.post("/v1/checkout/sessions", json=SESSION, headers=ADMIN)).status == 201
            toggled = await client.post(
                "/v1/checkout/sessions/cs_http_1/upsell", json={"selected": True}, headers=ADMIN
            )
            assert toggled.status == 200
            assert (await client.get("/v1/checkout/sessions/cs_missing", headers=ADMIN)).status == 404
            assert (await client.get("/v1/nowhere")).status == 404
    requests = [line for line in lines if line["event"] == "http_request"]
    assert [(line["route"], line.get("session_id")) for line in requests] == [
        ("/v1/checkout/sessions", "cs_http_1"),
        ("/v1/checkout/sessions/{id}/upsell", "cs_http_1"),
        ("/v1/checkout/sessions/{id}", "cs_missing"),
        ("unmatched", None),
    ]
