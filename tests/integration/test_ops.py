"""Ops figures and recovery on the real services: outbox gauges, queue gauges, database connections cut."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from prometheus_client import Gauge

from service.bootstrap import Service, build
from service.settings import Settings
from tests.broker import peer
from tests.integration.helpers import eventually, seed_example_catalog

pytestmark = pytest.mark.integration


@pytest.fixture
async def idle(database_url: str, amqp_url: str) -> AsyncIterator[Service]:
    """Built and seeded; neither consuming nor relaying."""
    built = await build(Settings(amqp_url=amqp_url, database_url=database_url, admin_token="t"))
    await seed_example_catalog(built.pool)
    # No leases here: this one process relays every partition.
    built.relay.own(range(built.topology.partitions))
    yield built
    await built.connection.close()
    await built.pool.close()


def _queued(service: Service, gauge: Gauge | None = None) -> int:
    """A gauge summed over the partition queues (the events of different sessions spread over them)."""
    gauge = gauge or service.metrics.queue_messages
    return sum(int(gauge.labels(name)._value.get()) for name in service.topology.partition_queues)


async def test_gauges_show_outbox_backlog_and_queue_depth(idle: Service, amqp_url: str) -> None:
    async with idle.pool.acquire() as conn:
        for index in range(3):
            await conn.execute(
                "insert into outbox (event_id, type, correlation_id, body, created_at)"
                " values ($1, 'test.event', 's', '{}', now() - interval '30 seconds')",
                f"e-{index}",
            )
        await conn.execute(
            "insert into parked_events (event_id, session_id, body, received_at)"
            " values ('p-1', 'cs_never', '{}', now() - interval '60 seconds')"
        )
    async with peer(amqp_url) as broker:
        for index in range(4):
            await broker.send("checkout.session.expired", {"session": f"cs_{index}"})

        async def queued() -> bool:
            await idle.refresh_gauges()
            return _queued(idle) == 4

        assert await eventually(queued)
    assert idle.metrics.outbox_backlog._value.get() == 3
    assert idle.metrics.outbox_oldest_age._value.get() >= 30
    assert idle.metrics.parked_events._value.get() == 1
    assert idle.metrics.parked_oldest_age._value.get() >= 60
    assert _queued(idle) == 4
    assert _queued(idle, idle.metrics.queue_consumers) == 0
    assert idle.metrics.queue_messages.labels("upsell.checkout.dead-letter")._value.get() == 0
    # The gauges are read again at each scrape, not kept from the first.
    async with peer(amqp_url) as broker:
        await broker.send("checkout.session.expired", {"session": "cs_4"})

    async def one_more() -> bool:
        await idle.refresh_gauges()
        return _queued(idle) == 5

    assert await eventually(one_more)


async def test_database_connections_cut_during_a_stream_lose_nothing(idle: Service, amqp_url: str) -> None:
    count = 300
    database = await idle.pool.fetchval("select current_database()")
    relay = asyncio.create_task(idle.relay.run())
    await idle.subscriptions.take_all()

    async def cut_connections() -> None:
        # What a database restart does to the service's connections, short of stopping the server.
        async with asyncio.timeout(20):
            for _ in range(15):
                await asyncio.sleep(0.15)
                await idle.pool.fetchval("select 1")  # the cutter's own connection comes back each time
                await idle.pool.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity"
                    " where datname = $1 and pid <> pg_backend_pid()",
                    database,
                )

    try:
        async with peer(amqp_url) as broker:
            cutter = asyncio.create_task(cut_connections())
            for index in range(count):
                await broker.send(
                    "checkout.session.created",
                    {"id": f"cs_{index}", "mode": "subscription", "currency": "usd",
                     "line_items": [{"price": "price_pro_monthly"}]},
                )  # fmt: skip
            await asyncio.gather(cutter, return_exceptions=True)
            # An event published just before its row was marked may be published again after a
            # cut: with the same id, so each session has exactly one event id however often it came.
            ids: dict[str, set[str]] = {}
            while len(ids) < count:
                message = await broker.next_event(timeout=30)
                assert message.correlation_id is not None
                assert message.message_id is not None
                ids.setdefault(message.correlation_id, set()).add(message.message_id)
            assert all(len(event_ids) == 1 for event_ids in ids.values())

            async def all_marked() -> bool:
                return bool(await idle.pool.fetchval("select count(*) from outbox where published_at is null") == 0)

            assert await eventually(all_marked)
    finally:
        await idle.subscriptions.cancel_all()
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
    assert await idle.pool.fetchval("select count(*) from checkout_sessions") == count
