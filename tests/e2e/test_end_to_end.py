"""The service as users run it: `upsell serve` in its own process, driven over RabbitMQ and HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import msgspec
import pytest

from contracts.events import OutboundEvent
from service.adapters.rabbitmq.topology import Topology
from tests.broker import peer, session_data
from tests.e2e.conftest import TOKEN
from tests.process import Server

pytestmark = pytest.mark.e2e

decode_outbound = msgspec.json.Decoder(OutboundEvent).decode


SESSION: dict[str, Any] = {
    "id": "cs_e2e_1",
    "mode": "subscription",
    "currency": "usd",
    "customer": "cus_1",
    "line_items": [{"price": "price_pro_monthly"}, {"price": "price_setup"}],
    "subscription_data": {"trial_period_days": 7},
    "metadata": {"cart": "c-9"},
}


async def test_checkout_backend_frontend_and_fulfillment(server: Server, amqp_url: str) -> None:
    async with peer(amqp_url) as broker, aiohttp.ClientSession() as http:
        await broker.send("checkout.session.created", SESSION)
        evaluated = await broker.next_event()
        assert evaluated.type == "checkout.session.upsell_evaluated"
        view = session_data(evaluated.body)
        assert view.upsell.eligible
        assert view.upsell.savings is not None
        assert view.upsell.savings.display == "16%"

        url = f"{server.base}/v1/checkout/sessions/cs_e2e_1"
        async with http.post(f"{url}/client-secret", headers=server.admin) as response:
            secret = (await response.json())["client_secret"]
        frontend = {"Authorization": f"Bearer {secret}"}
        async with http.get(url, headers=frontend) as response:
            assert response.status == 200
            assert (await response.json())["upsell"]["selected"] is False
        async with http.post(f"{url}/upsell", json={"selected": True}, headers=frontend) as response:
            assert response.status == 200
            toggled = await response.json()
        updated = await broker.next_event()
        assert updated.type == "checkout.session.line_items_updated"
        assert session_data(updated.body).version == toggled["version"] == 2

        await broker.send("checkout.session.payment_succeeded", {"session": "cs_e2e_1", "payment_intent": "pi_42"})
        await broker.send("checkout.session.payment_succeeded", {"session": "cs_e2e_1", "payment": "pi_42"})
        completed = await broker.next_event()
        assert completed.type == "checkout.session.completed"
        assert completed.correlation_id == "cs_e2e_1"
        done = session_data(completed.body)
        assert [(i.price, i.amount_total) for i in done.line_items] == [
            ("price_pro_yearly", 100000),
            ("price_setup", 5000),
        ]
        assert done.trial_period_days == 7
        assert done.customer == "cus_1"
        assert getattr(done, "payment") == "pi_42"  # noqa: B009 - CompletedSession field
        assert done.metadata == {"cart": "c-9"}
        assert getattr(done, "upsell_accepted") is True  # noqa: B009 - CompletedSession field
        assert await broker.no_more_events(1.5)

        async with http.post(f"{url}/upsell", json={"selected": False}, headers=frontend) as response:
            assert response.status == 409

        async with http.get(f"{server.base}/metrics") as response:
            metrics = await response.text()
        assert 'upsell_messages_consumed_total{outcome="processed",type="checkout.session.created"} 1.0' in metrics
        # The only replica owns every partition, and consumes each partition queue, once its leases are taken.
        for queue in Topology().partition_queues:
            assert await _metric_reaches(server, f'upsell_queue_consumers{{queue="{queue}"}} 1.0', timeout=10.0)

    assert server.stop() < 10
    assert server.process.returncode == 0
    log = server.log.read_text()
    assert TOKEN not in log
    assert secret not in log
    lines = [json.loads(line) for line in log.splitlines()]
    work = [line for line in lines if line["event"] in ("message_handled", "http_request")]
    session_work = [line for line in work if line.get("route", "/v1/checkout/sessions/{id}").startswith("/v1/checkout")]
    assert len(session_work) >= 6
    assert all(line["session_id"] == "cs_e2e_1" for line in session_work), session_work
    assert all("event_id" in line for line in session_work if line["event"] == "message_handled")


async def test_poison_messages_go_to_the_dead_letter_queue(server: Server, amqp_url: str) -> None:
    async with peer(amqp_url) as broker:
        await broker.publish(b"\x00not json", "checkout.session.created")
        await broker.send("checkout.session.unknown", {"session": "x"})
        await broker.send("checkout.session.created", {"id": "cs_bad"})
        await broker.send("checkout.session.created", {**SESSION, "line_items": [{"price": "price_missing"}]})
        await broker.send("checkout.session.created", SESSION)
        # The dead-letter queue itself is the evidence; its depth gauge is covered in tests/integration/test_ops.py
        # (a quorum queue's passive-declare count can lag on a loaded broker).
        reasons = sorted([str((await broker.dead_letter()).headers["x-upsell-reason"]) for _ in range(4)])
        assert reasons == ["invalid_event", "malformed_json", "unknown_event_type", "unknown_price"]
        assert (await broker.next_event()).type == "checkout.session.upsell_evaluated"
        assert await _metric_reaches(
            server, 'upsell_messages_consumed_total{outcome="dead_lettered",type="unknown"} 3.0'
        )
        assert await _metric_reaches(
            server, 'upsell_messages_consumed_total{outcome="dead_lettered",type="checkout.session.created"} 1.0'
        )
    assert server.stop() < 10


async def _metric_reaches(server: Server, line: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            async with http.get(f"{server.base}/metrics") as response:
                text = await response.text()
                if line in text:
                    return True
                print([x for x in text.splitlines() if x.startswith("upsell_queue")])
            await asyncio.sleep(0.2)
    return False


async def test_readyz_and_problem_documents(server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.base}/livez") as response:
            assert response.status == 200
        async with http.get(f"{server.base}/openapi.json") as response:
            assert "/v1/checkout/sessions" in (await response.json())["paths"]
        async with http.post(
            f"{server.base}/v1/checkout/sessions",
            data=b"{",
            headers={**server.admin, "Content-Type": "application/json"},
        ) as response:
            assert response.status == 400
            assert response.content_type == "application/problem+json"
