"""Retries with an Idempotency-Key, completion by one payment only, and request bodies held to their
contract, on the real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from tests.integration.helpers import ADMIN, Clock, http_client, outbox_types

pytestmark = pytest.mark.integration


def session(session_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": session_id,
        "mode": "subscription",
        "currency": "usd",
        "line_items": [{"price": "price_pro_monthly"}],
        **extra,
    }


async def test_a_retried_registration_replays_its_answer_with_the_client_secret(seeded: asyncpg.Pool) -> None:
    async with http_client(seeded, Clock()) as client:
        key = {**ADMIN, "Idempotency-Key": "create-cs_idem_1"}
        first = await client.post("/v1/checkout/sessions", json=session("cs_idem_1"), headers=key)
        assert first.status == 201
        answer = await first.json()
        again = await client.post("/v1/checkout/sessions", json=session("cs_idem_1"), headers=key)
        assert (again.status, again.headers["Idempotent-Replayed"]) == (201, "true")
        assert await again.json() == answer
        # The replayed secret is the one stored: it reads the session.
        reader = {"Authorization": f"Bearer {answer['client_secret']}"}
        assert (await client.get("/v1/checkout/sessions/cs_idem_1", headers=reader)).status == 200
        # Without the key, a retry is the 409 it always was.
        plain = await client.post("/v1/checkout/sessions", json=session("cs_idem_1"), headers=ADMIN)
        assert plain.status == 409
        other = await client.post("/v1/checkout/sessions", json=session("cs_idem_2"), headers=key)
        assert other.status == 422
        assert (await other.json())["code"] == "idempotency_key_reused"
    assert await outbox_types(seeded, "cs_idem_1") == ["checkout.session.upsell_evaluated"]
    assert await seeded.fetchval("select count(*) from checkout_sessions where id = 'cs_idem_2'") == 0
    # The kept answer holds the client secret sealed, never as it was sent.
    sealed = await seeded.fetchval("select sealed from idempotent_answers where key = 'create-cs_idem_1'")
    assert answer["client_secret"].encode() not in bytes(sealed)


async def test_concurrent_retries_place_one_session_and_answer_alike(seeded: asyncpg.Pool) -> None:
    async with http_client(seeded, Clock()) as client:
        key = {**ADMIN, "Idempotency-Key": "race-1"}
        sent = [client.post("/v1/checkout/sessions", json=session("cs_race"), headers=key) for _ in range(5)]
        answers = await asyncio.gather(*sent)
        assert {a.status for a in answers} == {201}
        bodies = [await a.json() for a in answers]
        assert all(body == bodies[0] for body in bodies)
        assert sum("Idempotent-Replayed" in a.headers for a in answers) == 4


async def test_keys_links_and_completions_replay_and_a_key_is_kept_a_day(seeded: asyncpg.Pool) -> None:
    clock = Clock()
    async with http_client(seeded, clock, link_secret="s" * 32) as client:
        key = {**ADMIN, "Idempotency-Key": "ops-key"}
        created = await client.post("/v1/api-keys", json={"name": "ops", "roles": ["operator"]}, headers=key)
        again = await client.post("/v1/api-keys", json={"name": "ops", "roles": ["operator"]}, headers=key)
        assert (created.status, again.status) == (201, 201)
        assert await again.json() == await created.json()
        assert await seeded.fetchval("select count(*) from api_keys where name = 'ops'") == 1

        subscription = {
            "customer": "cus_1",
            "price": "price_pro_monthly",
            "quantity": 1,
            "status": "active",
            "current_period_start": "2026-03-01T00:00:00Z",
            "current_period_end": "2026-04-01T00:00:00Z",
            "payment_method": {"type": "card"},
            "currency": "usd",
        }
        assert (await client.put("/v1/subscriptions/sub_i", json=subscription, headers=ADMIN)).status == 201
        link = {**ADMIN, "Idempotency-Key": "link-1"}
        body = {"subscription": "sub_i"}
        one = await client.post("/v1/upgrade-paths/path_pro_to_team/links", json=body, headers=link)
        two = await client.post("/v1/upgrade-paths/path_pro_to_team/links", json=body, headers=link)
        assert (one.status, two.status) == (201, 201)
        assert (await one.json())["token"] == (await two.json())["token"]

        await client.post("/v1/checkout/sessions", json=session("cs_paid"), headers=ADMIN)
        done = {**ADMIN, "Idempotency-Key": "complete-cs_paid"}
        paid = {"payment": "pi_123"}
        completed = await client.post("/v1/checkout/sessions/cs_paid/complete", json=paid, headers=done)
        replayed = await client.post("/v1/checkout/sessions/cs_paid/complete", json=paid, headers=done)
        assert (completed.status, replayed.status) == (200, 200)
        assert await replayed.json() == await completed.json()

        # A day later the key is free again: the same key and body run anew (a session id taken: 409).
        clock.advance(timedelta(hours=24, seconds=1))
        later = await client.post("/v1/api-keys", json={"name": "ops", "roles": ["operator"]}, headers=key)
        assert later.status == 201
        assert (await later.json())["id"] != (await created.json())["id"]


async def test_completion_records_its_payment_and_refuses_another(seeded: asyncpg.Pool) -> None:
    async with http_client(seeded, Clock()) as client:
        await client.post("/v1/checkout/sessions", json=session("cs_pay"), headers=ADMIN)
        missing = await client.post("/v1/checkout/sessions/cs_pay/complete", json={}, headers=ADMIN)
        assert missing.status == 422
        assert (await missing.json())["code"] == "payment_required"
        first = await client.post("/v1/checkout/sessions/cs_pay/complete", json={"payment": "pi_123"}, headers=ADMIN)
        assert first.status == 200
        assert (await first.json())["payment"] == "pi_123"
        same = await client.post("/v1/checkout/sessions/cs_pay/complete", json={"payment": "pi_123"}, headers=ADMIN)
        assert same.status == 200
        other = await client.post("/v1/checkout/sessions/cs_pay/complete", json={"payment": "pi_999"}, headers=ADMIN)
        assert other.status == 409
        problem = await other.json()
        assert problem["code"] == "payment_mismatch"
        assert "pi_123" in problem["detail"]

        # A trial with nothing else on the invoice charges nothing today: no reference needed.
        trial = session("cs_trial", subscription_data={"trial_period_days": 14})
        await client.post("/v1/checkout/sessions", json=trial, headers=ADMIN)
        free = await client.post("/v1/checkout/sessions/cs_trial/complete", headers=ADMIN)
        assert free.status == 200
    assert await outbox_types(seeded, "cs_pay") == ["checkout.session.upsell_evaluated", "checkout.session.completed"]


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/v1/checkout/sessions", "post"),
        ("/v1/products/p1", "put"),
        ("/v1/checkout/sessions/cs_1/complete", "post"),
        ("/v1/checkout/sessions/cs_1/upsell", "post"),
        ("/v1/subscriptions/sub_1/change-preview", "post"),
        ("/v1/upgrade-links/x/accept", "post"),
    ],
)
async def test_bodies_broken_after_their_first_value_are_400(seeded: asyncpg.Pool, path: str, method: str) -> None:
    async with http_client(seeded, Clock(), link_secret="s" * 32) as client:
        for body in (b"[", b"[1", b"0 0", b'"a" 1', b"6x", b"[" * 200_000 + b"]" * 200_000):
            response = await client.request(method, path, data=body, headers=ADMIN)
            assert response.status == 400, (body[:10], await response.text())
            assert (await response.json())["code"] == "malformed_json"


async def test_unknown_fields_are_named_and_whole_numbers_are_integers(seeded: asyncpg.Pool) -> None:
    async with http_client(seeded, Clock()) as client:
        typo = session(
            "cs_typo", discount=[{"coupon": "welcome"}], line_items=[{"price": "price_pro_monthly", "qty": 2}]
        )
        refused = await client.post("/v1/checkout/sessions", json=typo, headers=ADMIN)
        assert refused.status == 422
        fields = {(e["field"], e["code"]) for e in (await refused.json())["errors"]}
        assert fields == {("$.discount", "unknown_field"), ("$.line_items[0].qty", "unknown_field")}
        whole = await client.post(
            "/v1/checkout/sessions",
            data=b'{"id": "cs_whole", "mode": "subscription", "currency": "usd",'
            b' "line_items": [{"price": "price_pro_monthly", "quantity": 3.0}]}',
            headers=ADMIN,
        )
        assert whole.status == 201
        assert (await whole.json())["line_items"][0]["quantity"] == 3
        # A tag that is no string names no member of its union: refused, not a 500.
        tags: list[object] = [{}, [], 1.5, None]
        for tag in tags:
            order = {"payment": {"method": tag, "card_token": "tok_1"}}
            untagged = await client.post("/v1/subscriptions/sub_1/upgrade-orders", json=order, headers=ADMIN)
            assert untagged.status == 422, await untagged.text()
    assert await seeded.fetchval("select count(*) from checkout_sessions where id = 'cs_typo'") == 0


async def test_a_token_that_is_not_ascii_is_401(seeded: asyncpg.Pool) -> None:
    async with http_client(seeded, Clock()) as client:
        raw = "Bearer \udcff\udcfe".encode("utf-8", "surrogateescape").decode("latin-1")
        response = await client.get("/v1/checkout/sessions/cs_1", headers={"Authorization": raw})
        assert response.status == 401
