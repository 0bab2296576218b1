"""GET answers kept in memory, on the real PostgreSQL: two processes' caches on one database, each
listening for changes as `upsell serve` does."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.adapters.postgres.listener import HEARTBEAT, SESSIONS_CHANNEL
from service.entrypoints.http.deps import DEPS
from service.entrypoints.http.session_cache import MAX_AGE, SessionCache
from tests.integration.helpers import ADMIN, Clock, eventually, http_client, listening

pytestmark = pytest.mark.integration

SESSION: dict[str, Any] = {
    "id": "cs_cache_1",
    "mode": "subscription",
    "currency": "usd",
    "line_items": [{"price": "price_pro_monthly"}],
    "metadata": {"order": "42"},
}
URL = "/v1/checkout/sessions/cs_cache_1"
Client = TestClient[web.Request, web.Application]


@asynccontextmanager
async def replica(pool: asyncpg.Pool, clock: Clock) -> AsyncIterator[tuple[Client, SessionCache]]:
    """One process's HTTP side: its cache, its unit of work telling the cache of its own changes, and
    its listener."""
    cache = SessionCache()
    channels = {SESSIONS_CHANNEL: cache.changed}
    async with (
        listening(pool, channels, cache.listening_changed, lambda: cache.listening),
        http_client(pool, clock, sessions=cache) as client,
    ):
        yield client, cache


async def _true(value: bool) -> bool:
    return value


def reads(client: Client) -> dict[str, float | None]:
    """The process's GET answers so far, by where they came from."""
    registry = client.app[DEPS].metrics.registry
    return {
        source: registry.get_sample_value("upsell_session_reads_total", {"source": source})
        for source in ("memory", "database")
    }


async def version(client: Client, headers: dict[str, str]) -> int:
    response = await client.get(URL, headers=headers)
    assert response.status == 200
    return int((await response.json())["version"])


async def test_a_change_through_one_process_is_served_by_the_other_once_it_is_notified(seeded: asyncpg.Pool) -> None:
    clock = Clock()
    async with replica(seeded, clock) as (a, cache_a), replica(seeded, clock) as (b, cache_b):
        created = await a.post("/v1/checkout/sessions", json=SESSION, headers=ADMIN)
        frontend = {"Authorization": f"Bearer {(await created.json())['client_secret']}"}
        assert await version(a, frontend) == await version(b, frontend) == 1
        assert cache_a.get("cs_cache_1", clock()) is not None
        assert cache_b.get("cs_cache_1", clock()) is not None

        toggled = await a.post(f"{URL}/upsell", json={"selected": True}, headers=frontend)
        assert (await toggled.json())["version"] == 2
        # The writing process dropped its answer at commit: no wait.
        assert await version(a, frontend) == 2
        # The other one hears of it from PostgreSQL.
        assert await eventually(lambda: _true(cache_b.get("cs_cache_1", clock()) is None), timeout=5)
        assert await version(b, frontend) == 2
        assert cache_b.get("cs_cache_1", clock()) is not None


async def test_the_client_secret_is_checked_on_answers_from_memory(seeded: asyncpg.Pool) -> None:
    clock = Clock()
    async with replica(seeded, clock) as (a, _), replica(seeded, clock) as (b, cache_b):
        created = await a.post("/v1/checkout/sessions", json=SESSION, headers=ADMIN)
        old = {"Authorization": f"Bearer {(await created.json())['client_secret']}"}
        assert await version(b, old) == 1
        assert cache_b.get("cs_cache_1", clock()) is not None
        wrong = await b.get(URL, headers={"Authorization": "Bearer cs_not_this_sessions_secret"})
        assert wrong.status == 403
        assert (await b.get(URL, headers=ADMIN)).status == 200

        rotated = await a.post(f"{URL}/client-secret", headers=ADMIN)
        new = {"Authorization": f"Bearer {(await rotated.json())['client_secret']}"}
        assert await eventually(lambda: _true(cache_b.get("cs_cache_1", clock()) is None), timeout=5)
        assert (await b.get(URL, headers=old)).status == 403
        assert await version(b, new) == 1
        missing = await b.get("/v1/checkout/sessions/cs_cache_none", headers=new)
        assert missing.status == 403


async def test_nothing_is_served_from_memory_while_the_listener_is_down(seeded: asyncpg.Pool) -> None:
    clock = Clock()
    async with replica(seeded, clock) as (client, cache):
        await client.post("/v1/checkout/sessions", json=SESSION, headers=ADMIN)
        assert await version(client, ADMIN) == 1
        assert cache.kept == 1
        killed = await seeded.fetchval(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity"
            " where datname = current_database() and query = $1",
            f'LISTEN "{SESSIONS_CHANNEL}"',
        )
        assert killed == 1
        assert await eventually(lambda: _true(not cache.listening), timeout=5)
        assert cache.kept == 0
        # A change nobody hears of (the listener is down): served as soon as it is read again.
        await seeded.execute(
            "update checkout_sessions set state = jsonb_set(state, '{metadata}', '{\"order\": \"43\"}')"
            " where id = 'cs_cache_1'"
        )
        read = await client.get(URL, headers=ADMIN)
        assert (await read.json())["metadata"] == {"order": "43"}
        assert cache.kept == 0
        # The listener comes back by itself and answers are kept again.
        assert await eventually(lambda: _true(cache.listening), timeout=10)
        assert await version(client, ADMIN) == 1
        assert cache.kept == 1


async def test_a_process_serves_its_own_change_at_once_without_waiting_for_the_notification(
    seeded: asyncpg.Pool,
) -> None:
    cache = SessionCache()
    cache.listening_changed(True)  # no listener: only the process's own units of work tell of changes
    async with http_client(seeded, Clock(), sessions=cache) as client:
        created = await client.post("/v1/checkout/sessions", json=SESSION, headers=ADMIN)
        frontend = {"Authorization": f"Bearer {(await created.json())['client_secret']}"}
        assert await version(client, frontend) == 1
        assert cache.kept == 1
        assert await version(client, frontend) == 1
        await client.post(f"{URL}/upsell", json={"selected": True}, headers=frontend)
        assert await version(client, frontend) == 2
        assert reads(client) == {"memory": 1.0, "database": 2.0}


async def test_an_answer_is_read_again_after_its_maximum_age(seeded: asyncpg.Pool) -> None:
    cache = SessionCache()
    cache.listening_changed(True)
    clock = Clock()
    async with http_client(seeded, clock, sessions=cache) as client:
        await client.post("/v1/checkout/sessions", json=SESSION, headers=ADMIN)
        for _ in range(2):
            assert await version(client, ADMIN) == 1
        clock.advance(MAX_AGE)
        assert await version(client, ADMIN) == 1
        assert reads(client) == {"memory": 1.0, "database": 2.0}


async def test_a_listener_whose_connection_stops_answering_is_replaced(seeded: asyncpg.Pool) -> None:
    """A connection cut without a word looks open while its notifications are lost: its backend is
    stopped here (SIGSTOP) so that it neither answers nor closes."""
    clock = Clock()
    async with replica(seeded, clock) as (client, cache):
        await client.post("/v1/checkout/sessions", json=SESSION, headers=ADMIN)
        assert await version(client, ADMIN) == 1
        assert cache.kept == 1
        backend = await seeded.fetchval(
            "select pid from pg_stat_activity where datname = current_database() and query = $1",
            f'LISTEN "{SESSIONS_CHANNEL}"',
        )
        os.kill(backend, signal.SIGSTOP)
        try:
            assert await eventually(lambda: _true(not cache.listening), timeout=3 * HEARTBEAT)
            assert cache.kept == 0
        finally:
            os.kill(backend, signal.SIGCONT)
        assert await eventually(lambda: _true(cache.listening), timeout=10)
        assert await version(client, ADMIN) == 1
        assert cache.kept == 1
