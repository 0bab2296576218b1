"""Live API keys kept in memory, on the real PostgreSQL: a revocation made anywhere reaches the cache
through the trigger and the listener, and nothing is kept while the listener is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.adapters.postgres.listener import API_KEYS_CHANNEL
from service.entrypoints.http.auth import KeyCache
from service.entrypoints.http.deps import DEPS
from tests.integration.helpers import ADMIN, Clock, eventually, http_client, listening

pytestmark = pytest.mark.integration

Client = TestClient[web.Request, web.Application]


@asynccontextmanager
async def replica(pool: asyncpg.Pool) -> AsyncIterator[tuple[Client, KeyCache]]:
    keys = KeyCache()
    channels = {API_KEYS_CHANNEL: keys.changed}
    async with (
        listening(pool, channels, keys.listening_changed, lambda: keys.listening),
        http_client(pool, Clock(), keys=keys) as client,
    ):
        yield client, keys


async def _true(value: bool) -> bool:
    return value


def lookups(client: Client) -> dict[str, float]:
    registry = client.app[DEPS].metrics.registry
    return {
        source: registry.get_sample_value("upsell_api_key_lookups_total", {"source": source}) or 0.0
        for source in ("memory", "database")
    }


async def new_key(client: Client) -> tuple[str, dict[str, str]]:
    created = await client.post("/v1/api-keys", json={"name": "backend", "roles": ["backend"]}, headers=ADMIN)
    body = await created.json()
    return body["id"], {"Authorization": f"Bearer {body['secret']}"}


async def status(client: Client, headers: dict[str, str]) -> int:
    return (await client.get("/v1/subscriptions/sub_none", headers=headers)).status


async def test_a_key_is_read_once_and_dropped_when_revoked_elsewhere(seeded: asyncpg.Pool) -> None:
    async with replica(seeded) as (client, keys):
        key_id, backend = await new_key(client)
        assert [await status(client, backend) for _ in range(3)] == [404, 404, 404]
        assert lookups(client) == {"memory": 2.0, "database": 1.0}
        assert keys.kept == 1
        # Revoked by another replica (here, straight in the table): the trigger tells this one.
        await seeded.execute("update api_keys set revoked_at = now() where id = $1", key_id)
        assert await eventually(lambda: _true(keys.kept == 0), timeout=1.0)
        assert await status(client, backend) == 401


async def test_revoking_through_a_process_refuses_the_key_there_at_once(seeded: asyncpg.Pool) -> None:
    # No listener: only the revocation route itself can drop the key before its answer.
    keys = KeyCache()
    keys.listening = True
    async with http_client(seeded, Clock(), keys=keys) as client:
        key_id, backend = await new_key(client)
        assert await status(client, backend) == 404
        assert keys.kept == 1
        revoked = await client.delete(f"/v1/api-keys/{key_id}", headers=ADMIN)
        assert revoked.status == 204
        assert await status(client, backend) == 401


async def test_nothing_is_kept_while_the_listener_is_down(seeded: asyncpg.Pool) -> None:
    async with replica(seeded) as (client, keys):
        _, backend = await new_key(client)
        assert await status(client, backend) == 404
        assert keys.kept == 1
        killed = await seeded.fetchval(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity"
            " where datname = current_database() and query like 'LISTEN %'"
        )
        assert killed == 1
        assert await eventually(lambda: _true(not keys.listening), timeout=5)
        assert keys.kept == 0
        before = lookups(client)["database"]
        revoked_meanwhile = await seeded.fetchval(
            "update api_keys set revoked_at = now() where name = 'backend' returning id"
        )
        assert revoked_meanwhile is not None
        # Heard of or not, the revocation holds: nothing was kept to hide it.
        assert await status(client, backend) == 401
        assert lookups(client)["database"] == before + 1
        # The listener comes back by itself, and keys are kept again.
        assert await eventually(lambda: _true(keys.listening), timeout=10)
        _, other = await new_key(client)
        assert [await status(client, other) for _ in range(2)] == [404, 404]
        assert keys.kept == 1
