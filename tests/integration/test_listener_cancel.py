"""A stop must reach the LISTEN connection's loop: cancelled at any moment, also just as its health check
answers on a busy event loop, `Listener.run` ends (Python 3.11's wait_for could swallow such a cancel,
and `upsell serve` then never began to stop on SIGTERM)."""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg
import pytest

from service.adapters.postgres.listener import HEARTBEAT, Listener

pytestmark = pytest.mark.integration


async def _busy() -> None:
    # A loaded replica: every turn of the loop takes a few milliseconds.
    while True:
        end = time.perf_counter() + 0.004
        while time.perf_counter() < end:
            pass
        await asyncio.sleep(0)


async def _ends_when_cancelled(pool: asyncpg.Pool, after: float) -> bool:
    task = asyncio.create_task(Listener(pool, {"upsell_sessions": lambda _: None}).run())
    await asyncio.sleep(after)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=5)
    return bool(done)


async def test_a_listener_cancelled_around_its_health_check_always_ends(database_url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=40)
    busy = asyncio.create_task(_busy())
    try:
        ended = []
        for _ in range(3):
            # Around the first health check, which runs a heartbeat after listening starts.
            offsets = [HEARTBEAT + random.uniform(0.0, 0.15) for _ in range(30)]
            ended += await asyncio.gather(*(_ends_when_cancelled(pool, offset) for offset in offsets))
    finally:
        busy.cancel()
        await pool.close()
    assert ended.count(False) == 0, f"{ended.count(False)} of {len(ended)} cancels were lost"
