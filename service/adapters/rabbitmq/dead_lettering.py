"""The one way a message is refused: the same headers wherever it is (the consumer, a parked event the
relay sends on), which `upsell dead-letters` reads back."""

from __future__ import annotations

from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, HeadersType

DETAIL_MOST = 1000
"""Characters of the detail kept in a header."""


def refusal_headers(reason: str, detail: str, routing_key: str | None, at: datetime | None = None) -> HeadersType:
    """`x-upsell-reason` (a stable code), its detail, when, and the routing key a replay sends it with."""
    return {
        "x-upsell-reason": reason,
        "x-upsell-detail": detail[:DETAIL_MOST],
        "x-upsell-dead-lettered-at": (at or datetime.now(UTC)).isoformat(),
        "x-original-routing-key": routing_key or "",
    }


def resent(message: AbstractIncomingMessage, headers: HeadersType, timestamp: datetime | None) -> aio_pika.Message:
    """The same event (body, id, type, session, content) with other headers, persistent: a refused
    message on its way to the dead-letter queue, or a dead letter on its way back."""
    return aio_pika.Message(
        message.body,
        headers=headers,
        message_id=message.message_id,
        type=message.type,
        correlation_id=message.correlation_id,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=timestamp,
    )
