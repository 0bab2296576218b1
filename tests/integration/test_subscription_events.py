"""Subscription events reach RabbitMQ through the outbox, with their documented AMQP properties."""

from __future__ import annotations

import aio_pika
import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from contracts.events import OutboundEvent, SubscriptionProductSwitched, UpgradeOrderCreated
from service.bootstrap import Service
from tests.broker import peer

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer t"}  # the admin token of the `service` fixture
decode = msgspec.json.Decoder(OutboundEvent).decode


async def test_switch_and_order_events_are_published_once_with_their_properties(
    service: Service, amqp_url: str
) -> None:
    subscription = {
        "customer": "cus_9",
        "price": "price_pro_monthly",
        "status": "active",
        "current_period_start": "2026-03-01T00:00:00Z",
        "current_period_end": "2026-03-31T00:00:00Z",
        "payment_method": {"type": "card"},
        "currency": "usd",
    }
    async with peer(amqp_url) as broker, TestClient(TestServer(service.app)) as http:
        assert (await http.put("/v1/subscriptions/sub_ev", json=subscription, headers=ADMIN)).status == 201
        switched = await http.post(
            "/v1/subscriptions/sub_ev/product-switch", json={"product": "prod_team"}, headers=ADMIN
        )
        assert switched.status == 200
        order = {"upgrade_path": "path_pro_to_team", "payment": {"method": "new", "card_token": "tok_visa_9"}}
        headers = {**ADMIN, "Idempotency-Key": "retry-me"}
        placed = await http.post("/v1/subscriptions/sub_ev/upgrade-orders", json=order, headers=headers)
        assert placed.status == 201
        placed_id = (await placed.json())["id"]
        assert (await http.post("/v1/subscriptions/sub_ev/upgrade-orders", json=order, headers=headers)).status == 201
        first, second = await broker.next_event(), await broker.next_event()
        assert await broker.no_more_events(1.0)

    for message in (first, second):
        assert message.correlation_id == "sub_ev"
        assert message.content_type == "application/json"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.timestamp is not None
    switch_event, order_event = decode(first.body), decode(second.body)
    assert isinstance(switch_event, SubscriptionProductSwitched)
    assert (first.type, first.message_id) == ("subscription.product_switched", switch_event.id)
    assert (switch_event.data.product_name, switch_event.data.price) == ("Team", "price_team_monthly")
    assert switch_event.data.trial_applied is False
    assert isinstance(order_event, UpgradeOrderCreated)
    assert (second.type, second.message_id) == ("upgrade_order.created", order_event.id)
    assert order_event.data.id == placed_id
    assert (order_event.data.payment_method, order_event.data.placed_by) == ("new", "admin-token")
    assert b"tok_visa_9" not in second.body  # a card token is used, never passed on
