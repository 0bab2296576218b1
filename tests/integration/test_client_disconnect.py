"""A client that goes away mid-request is not a server error: it is counted under 499 (what was committed
stays committed: tests/e2e/test_client_disconnect.py, with the server settings of `upsell serve`)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.entrypoints.http.deps import DEPS
from tests.integration.helpers import ADMIN, Clock, eventually, http_client

pytestmark = pytest.mark.integration

SESSION: dict[str, Any] = {
    "id": "cs_gone_1",
    "mode": "subscription",
    "currency": "usd",
    "line_items": [{"price": "price_pro_monthly"}],
}
Client = TestClient[web.Request, web.Application]


def counted(client: Client, status: str) -> float:
    registry = client.app[DEPS].metrics.registry
    labels = {"method": "POST", "route": "/v1/checkout/sessions/{id}/upsell", "status": status}
    return registry.get_sample_value("upsell_http_requests_total", labels) or 0.0


async def _send_and_close(client: Client, declared_extra: int) -> None:
    """A toggle whose client closes its connection right after sending (part of) its body."""
    body = b'{"selected": true}'
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /v1/checkout/sessions/cs_gone_1/upsell HTTP/1.1\r\nHost: test\r\n"
        + f"Authorization: {ADMIN['Authorization']}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(body) + declared_extra}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    del reader


@pytest.mark.parametrize("declared_extra", [0, 10])
async def test_a_client_gone_before_its_body_is_read_is_a_499(seeded: asyncpg.Pool, declared_extra: int) -> None:
    async with http_client(seeded, Clock()) as client:
        await client.post("/v1/checkout/sessions", json=SESSION, headers=ADMIN)
        for _ in range(5):
            await _send_and_close(client, declared_extra)

        async def answered_all() -> bool:
            return counted(client, "499") + counted(client, "200") == 5

        assert await eventually(answered_all, timeout=5)
        assert counted(client, "500") == 0
        if declared_extra:
            # The body never came whole: none of these can have been served.
            assert counted(client, "499") == 5
