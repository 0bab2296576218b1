"""Two `upsell serve` processes on one database: a backend key revoked through one is refused by both
within a second, while each answers it from memory until then."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.process import Server, apply_example_catalog, service_env, start, wait_ready

pytestmark = pytest.mark.e2e

TOKEN = "e2e-keys-admin-token-81aa"


@pytest.fixture
async def replicas(database_url: str, amqp_url: str, tmp_path: Path) -> AsyncIterator[list[Server]]:
    env = service_env(database_url, amqp_url, TOKEN)
    apply_example_catalog(env)
    servers = [start(service_env(database_url, amqp_url, TOKEN), tmp_path / f"serve-{i}.log") for i in range(2)]
    try:
        for server in servers:
            await wait_ready(server)
        yield servers
    finally:
        for server in servers:
            server.kill()


async def _status(http: aiohttp.ClientSession, server: Server, secret: str) -> int:
    headers = {"Authorization": f"Bearer {secret}"}
    async with http.get(f"{server.base}/v1/subscriptions/sub_none", headers=headers) as answer:
        return answer.status


async def _from_memory(http: aiohttp.ClientSession, server: Server) -> float:
    async with http.get(f"{server.base}/metrics") as answer:
        for line in (await answer.text()).splitlines():
            if line.startswith('upsell_api_key_lookups_total{source="memory"}'):
                return float(line.split()[-1])
    return 0.0


async def test_a_revoked_key_is_refused_by_every_replica_within_a_second(replicas: list[Server]) -> None:
    first, second = replicas
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{first.base}/v1/api-keys", json={"name": "shop-backend", "roles": ["backend"]}, headers=first.admin
        ) as answer:
            key = await answer.json()
        for server in replicas:
            assert [await _status(http, server, key["secret"]) for _ in range(5)] == [404] * 5
            assert await _from_memory(http, server) >= 4

        async with http.delete(f"{first.base}/v1/api-keys/{key['id']}", headers=first.admin) as answer:
            assert answer.status == 204
        revoked = time.monotonic()
        assert await _status(http, first, key["secret"]) == 401
        while await _status(http, second, key["secret"]) != 401:
            assert time.monotonic() - revoked < 1.0, "the other replica still takes the revoked key"
            await asyncio.sleep(0.01)
        refused_after = time.monotonic() - revoked
        print(f"refused by the other replica {refused_after * 1000:.1f} ms after the revocation")
        for server in replicas:
            assert await _status(http, server, key["secret"]) == 401
