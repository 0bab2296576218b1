"""Replicas as users run them: `upsell serve` processes sharing the partitions, one killed with SIGKILL,
its partitions taken over by the others within the lease's time."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from service.entrypoints.ownership import HEARTBEAT, LEASE_TTL
from tests.process import Server, apply_example_catalog, free_port, service_env, start, wait_ready

pytestmark = pytest.mark.e2e

TAKEOVER_WITHIN = LEASE_TTL + 2 * HEARTBEAT
"""What docs/scaling.md promises: the lease runs out, and the next heartbeat of a survivor takes it."""


async def _holders(pool: asyncpg.Pool) -> Counter[str]:
    rows = await pool.fetch("select owner from partition_leases where owner is not null and expires_at > now()")
    return Counter(r["owner"] for r in rows)


async def _until(pool: asyncpg.Pool, shares: list[int], timeout: float) -> Counter[str]:
    deadline = time.monotonic() + timeout
    while True:
        holders = await _holders(pool)
        if sorted(holders.values(), reverse=True) == shares:
            return holders
        if time.monotonic() > deadline:
            raise AssertionError(f"partitions held {dict(holders)}, not {shares}, after {timeout} s")
        await asyncio.sleep(0.1)


async def test_a_replica_killed_with_sigkill_loses_its_partitions_to_the_others_within_the_lease(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    env = service_env(database_url, amqp_url, "takeover-admin-token")
    apply_example_catalog(env)
    servers: list[Server] = []
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        for number in range(3):
            servers.append(start({**env, "UPSELL_HTTP_PORT": str(free_port())}, tmp_path / f"serve-{number}.log"))
        for server in servers:
            await wait_ready(server)
        before = await _until(pool, [6, 5, 5], timeout=15)
        servers[0].kill()
        killed_at = time.monotonic()
        after = await _until(pool, [8, 8], timeout=TAKEOVER_WITHIN + 5)
        took = time.monotonic() - killed_at
        print(f"partitions moved {took:.2f} s after the kill")
        assert took <= TAKEOVER_WITHIN
        # The survivors kept what they had and shared out the dead replica's partitions.
        for owner, count in before.items():
            if owner in after:
                assert after[owner] >= count
    finally:
        for server in servers:
            server.kill()
        await pool.close()
