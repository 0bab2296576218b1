"""What a dead letter says, read from each of the three ways into the queue, and how the CLI prints it."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from service.adapters.rabbitmq.dead_letters import describe
from service.entrypoints.dead_letters_cli import table

BODY = msgspec.json.encode(
    {"id": "evt-1", "type": "checkout.session.created", "version": 1, "data": {"id": "cs_1", "mode": "subscription"}}
)


def test_a_refusal_by_the_consumer() -> None:
    letter = describe(
        {
            "x-upsell-reason": "unknown_price",
            "x-upsell-detail": "price 'p' is not in the catalog",
            "x-upsell-dead-lettered-at": "2026-12-02T10:00:00.5+00:00",
            "x-original-routing-key": "checkout.session.created",
        },
        BODY,
        message_id="evt-1",
        type="checkout.session.created",
        correlation_id="cs_1",
        routing_key="checkout.session.created",
    )
    assert (letter.event_id, letter.type, letter.session) == ("evt-1", "checkout.session.created", "cs_1")
    assert (letter.reason, letter.detail, letter.replays) == ("unknown_price", "price 'p' is not in the catalog", 0)
    assert letter.dead_lettered_at == datetime(2026, 12, 2, 10, 0, 0, 500000, tzinfo=UTC)
    assert letter.routing_key == "checkout.session.created"


def test_a_refusal_through_the_outbox_without_amqp_properties_reads_the_body() -> None:
    paid = msgspec.json.encode(
        {"id": "evt-2", "type": "checkout.session.payment_succeeded", "data": {"session": "cs_2"}}
    )
    letter = describe({"x-upsell-reason": "session_expired", "x-upsell-replays": 2}, paid)
    assert (letter.event_id, letter.type, letter.session) == ("evt-2", "checkout.session.payment_succeeded", "cs_2")
    assert letter.routing_key == "checkout.session.payment_succeeded"
    assert letter.replays == 2


def test_the_brokers_own_dead_lettering_past_the_delivery_limit() -> None:
    died = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    letter = describe(
        {
            "x-first-death-reason": "delivery_limit",
            "x-death": [
                {
                    "reason": "delivery_limit",
                    "queue": "upsell.checkout",
                    "time": died,
                    "count": 1,
                    "routing-keys": ["checkout.session.expired"],
                }
            ],
        },
        BODY,
        routing_key="checkout.session.expired",
    )
    assert letter.reason == "delivery_limit"
    assert letter.detail == "dead-lettered by the broker from upsell.checkout (delivery_limit)"
    assert letter.dead_lettered_at == died
    assert letter.routing_key == "checkout.session.expired"


def test_a_body_that_is_no_envelope_keeps_its_message_id() -> None:
    letter = describe({"x-upsell-reason": "malformed_json"}, b"{not json", message_id="m-1", routing_key="k")
    assert (letter.event_id, letter.type, letter.session, letter.routing_key) == ("m-1", None, None, "k")
    assert describe({}, b"[1, 2]").reason == "unknown"


def test_the_table_aligns_columns_and_shortens_details() -> None:
    long = describe({"x-upsell-reason": "invalid_event", "x-upsell-detail": "x" * 200}, BODY)
    short = describe({"x-upsell-reason": "malformed_json"}, b"?", message_id="m-22")
    lines = table([long, short]).splitlines()
    assert lines[0].split() == ["EVENT", "ID", "TYPE", "SESSION", "REASON", "DEAD-LETTERED", "DETAIL"]
    column = lines[0].index("SESSION")
    assert lines[1].index("cs_1") == column
    assert lines[2][column : column + 3] == "-  "
    assert lines[1].endswith("x" * 59 + "…")
    assert len(lines) == 3
