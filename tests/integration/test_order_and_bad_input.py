"""Per-session order under concurrent delivery, concurrent toggles, and input that must never be a 5xx."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg
import msgspec
import pytest

from service.adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from service.app.catalog_file import apply_catalog
from service.bootstrap import Service
from tests.broker import envelope, peer, session_data
from tests.integration.helpers import ADMIN, Clock, http_client, seed_example_catalog

pytestmark = pytest.mark.integration


def created(session: str) -> dict[str, Any]:
    return {"id": session, "mode": "subscription", "currency": "usd", "line_items": [{"price": "price_pro_monthly"}]}


async def test_events_of_a_session_apply_in_delivery_order(service: Service, amqp_url: str) -> None:
    sessions = [f"cs_order_{i}" for i in range(60)]
    async with peer(amqp_url) as broker:
        for session in sessions:
            await broker.send("checkout.session.created", created(session))
            await broker.send("checkout.session.expired", {"session": session})
            await broker.send("checkout.session.payment_succeeded", {"session": session})
        await service.subscriptions.take_all()
        reasons = [(await broker.dead_letter()).headers["x-upsell-reason"] for _ in sessions]
        await service.subscriptions.cancel_all()
        types = []
        while (message := await broker.events.get(no_ack=True, fail=False)) is not None:
            types.append(message.type)
    # Every payment came after its expiry, so each is refused and none completes.
    assert reasons == ["session_expired"] * len(sessions)
    assert "checkout.session.completed" not in types
    statuses = await service.pool.fetch("select distinct status from checkout_sessions")
    assert [r["status"] for r in statuses] == ["expired"]


async def test_a_parked_event_refused_later_is_dead_lettered(service: Service, amqp_url: str) -> None:
    async with peer(amqp_url) as broker:
        await service.subscriptions.take_all()
        await broker.send("checkout.session.expired", {"session": "cs_late"})
        await broker.send("checkout.session.payment_succeeded", {"session": "cs_late"}, event_id="evt-paid")
        await broker.send("checkout.session.created", created("cs_late"))
        dead = await broker.dead_letter()
        await service.subscriptions.cancel_all()
    assert dead.message_id == "evt-paid"
    assert dead.headers["x-upsell-reason"] == "session_expired"
    assert dead.type == "checkout.session.payment_succeeded"


async def test_a_session_consumed_after_its_expiry_still_completes_when_paid(service: Service, amqp_url: str) -> None:
    # A backlog or an outage delays the `created` event past the session's `expires_at`; the payment
    # behind it must still complete the session, not be parked forever behind a dead-lettered `created`.
    late = {**created("cs_backlog"), "expires_at": "2020-01-01T00:00:00Z"}
    async with peer(amqp_url) as broker:
        await broker.send("checkout.session.created", late)
        await broker.send("checkout.session.payment_succeeded", {"session": "cs_backlog", "payment": "pi_1"})
        await service.subscriptions.take_all()
        first, second = await broker.next_event(), await broker.next_event()
        await service.subscriptions.cancel_all()
    assert (first.type, second.type) == ("checkout.session.upsell_evaluated", "checkout.session.completed")
    assert await service.pool.fetchval("select status from checkout_sessions where id = 'cs_backlog'") == "complete"


async def test_concurrent_toggles_publish_each_change_once_in_version_order(pool: asyncpg.Pool) -> None:
    await seed_example_catalog(pool)
    choices = [random.Random(7).random() < 0.5 for _ in range(60)]
    async with http_client(pool, Clock()) as client:
        await client.post("/v1/checkout/sessions", json=created("cs_race"), headers=ADMIN)

        async def toggle(selected: bool) -> dict[str, Any]:
            response = await client.post(
                "/v1/checkout/sessions/cs_race/upsell", json={"selected": selected}, headers=ADMIN
            )
            assert response.status == 200
            body: dict[str, Any] = await response.json()
            return body

        answers = await asyncio.gather(*(toggle(choice) for choice in choices))
        final = await (await client.get("/v1/checkout/sessions/cs_race", headers=ADMIN)).json()
    last = max(answers, key=lambda view: view["version"])
    assert final["version"] == last["version"]
    assert final["upsell"]["selected"] == last["upsell"]["selected"]
    rows = await pool.fetch("select body from outbox where type like '%line_items_updated' order by id")
    versions = [session_data(bytes(r["body"])).version for r in rows]
    assert versions == list(range(2, final["version"] + 1))


HTTP_BAD_INPUT = [
    ("/v1/checkout/sessions", {**created("cs_naive"), "expires_at": "2030-01-01T00:00:00"}, "$.expires_at"),
    ("/v1/checkout/sessions", {**created("cs_nul"), "metadata": {"note": "a\u0000b"}}, "$.metadata"),
    ("/v1/checkout/sessions", {**created("cs_nul2"), "discounts": [{"promotion_code": "X\u0000"}]}, "$.discounts"),
    ("/v1/promotion-codes/NAIVE", {"coupon": "coupon_half_4_months", "expires_at": "2030-01-01T00:00"}, "$.expires_at"),
    ("/v1/coupons/c_nan", {"percent_off": "NaN"}, "percent_off"),
    ("/v1/coupons/c_inf", {"percent_off": "Infinity"}, "percent_off"),
]


@pytest.mark.parametrize(("path", "body", "field"), HTTP_BAD_INPUT, ids=[b[2] + "-" + b[0] for b in HTTP_BAD_INPUT])
async def test_bad_http_input_is_a_4xx_problem(pool: asyncpg.Pool, path: str, body: dict[str, Any], field: str) -> None:
    await seed_example_catalog(pool)
    async with http_client(pool, Clock()) as client:
        method = client.put if path.startswith(("/v1/promotion-codes", "/v1/coupons")) else client.post
        response = await method(path, json=body, headers=ADMIN)
        problem = await response.json(content_type="application/problem+json")
    assert response.status == 422
    assert any(error["field"].startswith(field) for error in problem["errors"]), problem["errors"]


AMQP_BAD_INPUT = [
    envelope("checkout.session.created", {**created("cs_a"), "expires_at": "2030-01-01T00:00:00"}),
    envelope("checkout.session.created", {**created("cs_b"), "customer": "cus\u0000"}),
    envelope("checkout.session.payment_succeeded", {"session": "cs_c", "payment": "pi\u0000"}),
]


async def test_bad_amqp_input_is_dead_lettered_at_once(service: Service, amqp_url: str) -> None:
    async with peer(amqp_url) as broker:
        await service.subscriptions.take_all()
        for body in AMQP_BAD_INPUT:
            await broker.publish(body, "checkout.session.created")
        dead = [await broker.dead_letter() for _ in AMQP_BAD_INPUT]
        await service.subscriptions.cancel_all()
    assert [d.headers["x-upsell-reason"] for d in dead] == ["invalid_event"] * len(AMQP_BAD_INPUT)
    # At once: no message was requeued for a retry first.
    assert service.metrics.messages_consumed.labels("unknown", "dead_lettered")._value.get() == len(AMQP_BAD_INPUT)
    assert service.metrics.messages_consumed.labels("unknown", "requeued")._value.get() == 0


async def test_catalog_file_is_checked_against_its_final_state(pool: asyncpg.Pool) -> None:
    from contracts.catalog import CatalogFile

    def catalog(tax: str) -> CatalogFile:
        return msgspec.convert(
            {
                "products": [{"id": "a", "name": "A"}],
                "prices": [
                    {"id": "m", "product": "a", "currency": "usd", "unit_amount": 100, "tax_behavior": tax,
                     "recurring": {"interval": "month"}, "upsell": "y"},
                    {"id": "y", "product": "a", "currency": "usd", "unit_amount": 1000, "tax_behavior": tax,
                     "recurring": {"interval": "year"}},
                ],
            },
            CatalogFile,
        )  # fmt: skip

    new_uow = PostgresUnitOfWorkFactory(pool)
    await apply_catalog(new_uow, catalog("exclusive"), dry_run=False)
    changes = await apply_catalog(new_uow, catalog("inclusive"), dry_run=False)
    assert [(c.key, c.change) for c in changes if c.kind == "price"] == [("m", "updated"), ("y", "updated")]
    assert await pool.fetchval("select body->>'tax_behavior' from prices where id = 'y'") == "inclusive"


async def test_a_second_payment_for_a_complete_session_is_dead_lettered(service: Service, amqp_url: str) -> None:
    async with peer(amqp_url) as broker:
        await service.subscriptions.take_all()
        await broker.send("checkout.session.created", created("cs_twice"))
        await broker.send("checkout.session.payment_succeeded", {"session": "cs_twice", "payment": "pi_123"})
        await broker.send("checkout.session.payment_succeeded", {"session": "cs_twice", "payment": "pi_123"})
        await broker.send(
            "checkout.session.payment_succeeded", {"session": "cs_twice", "payment": "pi_999"}, event_id="evt-second"
        )
        dead = await broker.dead_letter()
        await service.subscriptions.cancel_all()
    assert msgspec.json.decode(dead.body)["id"] == "evt-second"
    assert dead.headers["x-upsell-reason"] == "payment_mismatch"
    assert "pi_123" in str(dead.headers["x-upsell-detail"])
    completed = await service.pool.fetchval(
        "select count(*) from outbox where correlation_id = 'cs_twice' and type = 'checkout.session.completed'"
    )
    assert completed == 1
