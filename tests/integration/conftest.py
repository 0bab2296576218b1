"""Fixtures of the integration tests that need the whole service built on the test's database and vhost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from service.bootstrap import Service, build
from service.settings import Settings
from tests.integration.helpers import seed_example_catalog


@pytest.fixture
async def service(database_url: str, amqp_url: str) -> AsyncIterator[Service]:
    """Built and seeded, but not consuming yet: a test queues its events first."""
    built = await build(Settings(amqp_url=amqp_url, database_url=database_url, admin_token="t"))
    await seed_example_catalog(built.pool)
    # No leases here: this one process relays every partition.
    built.relay.own(range(built.topology.partitions))
    relay = asyncio.create_task(built.relay.run())
    yield built
    relay.cancel()
    await asyncio.gather(relay, return_exceptions=True)
    await built.connection.close()
    await built.pool.close()


@pytest.fixture
async def seeded(pool: asyncpg.Pool) -> asyncpg.Pool:
    """The test's database with the example catalog."""
    await seed_example_catalog(pool)
    return pool
