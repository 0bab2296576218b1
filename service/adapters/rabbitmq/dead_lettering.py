"""The one way a message is refused: the same headers wherever it is (the consumer, a parked event the
relay sends on), which `upsell dead-letters` reads back."""

from __future__ import annotations

from datetime import UTC, datetime

from aio_pika.abc import HeadersType

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
