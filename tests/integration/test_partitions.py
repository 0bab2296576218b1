"""Partitions on the real broker and database: a session's events land in one partition queue, replicas
share the partitions through leases, and a session's events are applied in the order published while
replicas come and go."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import msgspec
import pytest
from aio_pika.abc import AbstractIncomingMessage

from service.adapters.postgres.leases import PartitionCountMismatch, Standing
from service.adapters.rabbitmq.topology import Topology, TopologyMismatch, declare, queue_stats
from service.bootstrap import Service, build, shutdown
from service.settings import Settings
from tests.broker import Peer, peer
from tests.integration.helpers import cli, eventually, seed_example_catalog

pytestmark = pytest.mark.integration


def created(session: str) -> dict[str, object]:
    return {"id": session, "mode": "subscription", "currency": "usd", "line_items": [{"price": "price_pro_monthly"}]}


async def test_the_events_of_a_session_land_in_one_partition(amqp_url: str) -> None:
    async with peer(amqp_url) as broker:
        sessions = [f"cs_part_{n}" for n in range(40)]
        for session in sessions:
            await broker.send("checkout.session.created", created(session))
            await broker.send("checkout.session.expired", {"session": session})
            await broker.send("checkout.session.payment_succeeded", {"session": session})
        # No correlation_id: still routed (to one partition), never dropped.
        await broker.publish(b"{}", "checkout.session.expired")
        where: dict[str, set[str]] = {}
        total = 0

        def taker(name: str) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
            async def take(message: AbstractIncomingMessage) -> None:
                nonlocal total
                total += 1
                where.setdefault(message.correlation_id or "", set()).add(name)

            return take

        # Consumed (a single-active-consumer queue refuses basic.get).
        for name in broker.topology.partition_queues:
            await (await broker.channel.get_queue(name)).consume(taker(name), no_ack=True)
        assert await eventually(lambda: _true(total == 3 * len(sessions) + 1))
    assert all(len(where[session]) == 1 for session in sessions)
    assert len({name for session in sessions for name in where[session]}) > 4, "spread over the partitions"


async def _true(value: bool) -> bool:
    return value


async def test_the_single_queue_of_earlier_versions_is_unbound_and_keeps_what_it_holds(amqp_url: str) -> None:
    async with peer(amqp_url) as broker:
        channel = broker.channel
        checkout = await channel.get_exchange("checkout")
        single = await channel.declare_queue(
            "upsell.checkout", durable=True, arguments={"x-queue-type": "quorum", "x-single-active-consumer": True}
        )
        await single.bind(checkout, routing_key="checkout.session.*")
        await broker.send("checkout.session.expired", {"session": "cs_before"})
        await declare(channel, Topology())
        await broker.send("checkout.session.expired", {"session": "cs_after"})

        async def depth(name: str) -> int:
            return (await queue_stats(channel, name))[0]

        await asyncio.sleep(0.5)
        assert await depth("upsell.checkout") == 1, "the event before stays for the earlier replicas"
        after = sum([await depth(name) for name in broker.topology.partition_queues])
        assert after == 2, "both events in the partitions: the first from the peer's own declare, the second alone"


async def test_a_broker_with_more_partitions_is_refused(amqp_url: str) -> None:
    async with peer(amqp_url, Topology(partitions=4)) as broker:
        with pytest.raises(TopologyMismatch, match="more than UPSELL_PARTITIONS=2"):
            await declare(broker.channel, Topology(partitions=2))


async def test_a_database_set_up_for_another_number_of_partitions_is_refused(database_url: str, amqp_url: str) -> None:
    first = await build(Settings(amqp_url=amqp_url, database_url=database_url, partitions=16))
    await first.connection.close()
    await first.pool.close()
    with pytest.raises(PartitionCountMismatch, match="runs with 16 partitions"):
        await build(Settings(amqp_url=amqp_url, database_url=database_url, partitions=8))


@dataclass
class Replica:
    service: Service
    relay: asyncio.Task[None]
    ownership: asyncio.Task[None]

    async def stop(self) -> None:
        """As `upsell serve` stops on SIGTERM, the HTTP side aside."""
        await shutdown(self.service, None, self.relay, self.ownership)


class Replicas:
    def __init__(self, database_url: str, amqp_url: str) -> None:
        self._settings = Settings(amqp_url=amqp_url, database_url=database_url, admin_token="t")
        self.running: list[Replica] = []

    async def start(self) -> Replica:
        service = await build(self._settings)
        replica = Replica(
            service,
            asyncio.create_task(service.relay.run()),
            asyncio.create_task(service.ownership.run()),
        )
        self.running.append(replica)
        return replica

    async def stop(self, replica: Replica) -> None:
        self.running.remove(replica)
        await replica.stop()


@pytest.fixture
async def replicas(database_url: str, amqp_url: str) -> AsyncIterator[Replicas]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    await seed_example_catalog(pool)
    await pool.close()
    fleet = Replicas(database_url, amqp_url)
    yield fleet
    for replica in list(fleet.running):
        with contextlib.suppress(Exception):
            await fleet.stop(replica)


async def owners(pool: asyncpg.Pool) -> Counter[str]:
    rows = await pool.fetch("select owner from partition_leases where owner is not null and expires_at > now()")
    return Counter(r["owner"] for r in rows)


async def shares_are(pool: asyncpg.Pool, expected: list[int]) -> bool:
    return sorted((await owners(pool)).values(), reverse=True) == expected


async def test_two_then_three_replicas_each_own_a_share_and_one_leaving_gives_its_share_back(
    replicas: Replicas,
) -> None:
    first = await replicas.start()
    pool = first.service.pool
    assert await eventually(lambda: shares_are(pool, [16]), timeout=10)
    second = await replicas.start()
    assert await eventually(lambda: shares_are(pool, [8, 8]), timeout=10)
    third = await replicas.start()
    assert await eventually(lambda: shares_are(pool, [6, 5, 5]), timeout=10)

    async def each_consumes_what_it_holds() -> bool:
        held = await owners(pool)
        return all(
            len(r.service.ownership.owned) == held[r.service.ownership.replica]
            and r.service.subscriptions.consuming == r.service.ownership.owned
            for r in (first, second, third)
        )

    assert await eventually(each_consumes_what_it_holds, timeout=5)
    await replicas.stop(second)
    # Given back at once on a clean stop, not after the lease runs out.
    assert await eventually(lambda: shares_are(pool, [8, 8]), timeout=3)


async def _send_both_orders(broker: Peer, sessions: list[str]) -> dict[str, str]:
    """Even sessions: payment then expiry (complete); odd ones: expiry then payment (expired)."""
    expected = {}
    for number, session in enumerate(sessions):
        await broker.send("checkout.session.created", created(session))
        if number % 2 == 0:
            await broker.send("checkout.session.payment_succeeded", {"session": session})
            await broker.send("checkout.session.expired", {"session": session})
            expected[session] = "complete"
        else:
            await broker.send("checkout.session.expired", {"session": session})
            await broker.send("checkout.session.payment_succeeded", {"session": session})
            expected[session] = "expired"
    return expected


async def test_expiry_and_payment_are_applied_in_the_order_published_while_replicas_join_and_leave(
    replicas: Replicas, amqp_url: str
) -> None:
    first = await replicas.start()
    pool = first.service.pool
    assert await eventually(lambda: shares_are(pool, [16]), timeout=10)
    sessions = [f"cs_order_{n}" for n in range(300)]
    async with peer(amqp_url) as broker:
        sending = asyncio.create_task(_send_both_orders(broker, sessions))
        await asyncio.sleep(0.5)
        second = await replicas.start()
        await asyncio.sleep(0.5)
        await replicas.start()
        expected = await sending
        assert await eventually(lambda: shares_are(pool, [6, 5, 5]), timeout=10)
        await replicas.stop(second)

        async def all_settled() -> bool:
            count = await pool.fetchval("select count(*) from checkout_sessions where status <> 'open'")
            return bool(count == len(sessions))

        assert await eventually(all_settled, timeout=60)
        rows = await pool.fetch("select id, status from checkout_sessions")
        assert {r["id"]: r["status"] for r in rows} == expected
        # Every event once: in the inbox those applied (three per complete session, two per expired one:
        # its refused payment is not), and each refused payment dead-lettered once.
        assert await pool.fetchval("select count(*) from inbox") == 3 * len(sessions) - len(sessions) // 2
        dead = [await broker.dead_letter() for _ in range(len(sessions) // 2)]
        assert sorted(m.correlation_id or "" for m in dead) == sorted(s for s, v in expected.items() if v == "expired")
        assert {m.headers["x-upsell-reason"] for m in dead} == {"session_expired"}


async def test_the_partitions_command_shows_owners_queues_and_outbox(
    replicas: Replicas, database_url: str, amqp_url: str
) -> None:
    first = await replicas.start()
    second = await replicas.start()
    pool = first.service.pool
    assert await eventually(lambda: shares_are(pool, [8, 8]), timeout=10)
    await pool.execute(
        "insert into outbox (event_id, type, correlation_id, body, partition, published_at)"
        " values ('e-shown', 'test.event', 's', '{}', 3, null)"
    )
    code, out, err = await cli(database_url, amqp_url, "partitions", "--json")
    assert code == 0, err
    lines = [msgspec.json.decode(line) for line in out.splitlines()]
    shown = {line["replica"]["id"]: line["replica"]["partitions"] for line in lines if "replica" in line}
    ids = {first.service.ownership.replica, second.service.ownership.replica}
    assert shown == dict.fromkeys(ids, 8)
    partitions = [line for line in lines if "partition" in line]
    assert [p["partition"] for p in partitions] == list(range(16))
    assert {p["owner"] for p in partitions} == ids
    assert all(p["consumers"] == 1 for p in partitions)
    # The row may be published by the time the command reads; the column is there either way.
    assert {p["outbox_waiting"] for p in partitions} <= {0, 1}
    code, table, _ = await cli(database_url, amqp_url, "partitions")
    assert code == 0
    assert "partition owner" in " ".join(table.split())


async def test_the_partitions_command_says_when_a_server_is_unreachable(database_url: str) -> None:
    code, _, err = await cli(database_url, "amqp://guest:guest@127.0.0.1:1/", "partitions")
    assert code == 1
    assert "cannot reach a service" in err


async def test_a_replica_that_cannot_renew_stops_consuming_and_resumes_what_it_still_holds(
    replicas: Replicas,
) -> None:
    replica = await replicas.start()
    ownership = replica.service.ownership
    assert await eventually(lambda: shares_are(replica.service.pool, [16]), timeout=10)
    beat = ownership._leases.beat

    async def cut_off() -> Standing:
        raise ConnectionRefusedError("the database cannot be reached")

    ownership._leases.beat = cut_off  # type: ignore[method-assign]
    # Before its leases can run out (4 s after the last renewal), it takes no more deliveries.
    assert await eventually(lambda: _true(not replica.service.subscriptions.consuming), timeout=5)
    assert ownership.owned == frozenset(range(16))
    ownership._leases.beat = beat  # type: ignore[method-assign]
    # Nobody took them meanwhile: the next heartbeat renews them, and they are consumed again.
    assert await eventually(lambda: _true(replica.service.subscriptions.consuming == frozenset(range(16))), timeout=5)
    assert await shares_are(replica.service.pool, [16])
