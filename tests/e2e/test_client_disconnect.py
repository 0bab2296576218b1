"""`upsell serve` keeps working on a request whose client went away: a toggle waiting for its session's
lock when the client closes is committed, with its event, and counts as no server error."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest

from tests.e2e.conftest import TOKEN
from tests.process import Server

pytestmark = pytest.mark.e2e


async def test_a_toggle_whose_client_went_away_is_committed(server: Server, database_url: str) -> None:
    session = {
        "id": "cs_gone_2",
        "mode": "subscription",
        "currency": "usd",
        "line_items": [{"price": "price_pro_monthly"}],
    }
    url = f"{server.base}/v1/checkout/sessions"
    async with aiohttp.ClientSession() as http, http.post(url, json=session, headers=server.admin) as answer:
        assert answer.status == 201
    holder = await asyncpg.connect(database_url)
    try:
        # The session's lock is held, so the toggle waits in the database once it has read its body.
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("select pg_advisory_xact_lock(1, hashtext($1))", "cs_gone_2")
        port = urlsplit(server.base).port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"selected": true}'
        writer.write(
            b"POST /v1/checkout/sessions/cs_gone_2/upsell HTTP/1.1\r\nHost: test\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.close()
        await writer.wait_closed()
        del reader
        await asyncio.sleep(0.2)
        await transaction.rollback()
        deadline = time.monotonic() + 10
        query = "select (state->>'version')::int from checkout_sessions where id = $1"
        while await holder.fetchval(query, "cs_gone_2") != 2:
            assert time.monotonic() < deadline, "the toggle was not committed"
            await asyncio.sleep(0.05)
        events = await holder.fetchval(
            "select count(*) from outbox where correlation_id = $1 and type = 'checkout.session.line_items_updated'",
            "cs_gone_2",
        )
        assert events == 1
    finally:
        await holder.close()
    async with aiohttp.ClientSession() as http, http.get(f"{server.base}/metrics") as answer:
        metrics = await answer.text()
    assert 'status="500"' not in metrics
    assert "Traceback" not in server.log.read_text()
