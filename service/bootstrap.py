"""The composition root: builds the pool, the broker channels, the consumer, the relay and the HTTP app.

Nothing runs at import; `serve` runs until SIGTERM or SIGINT, then stops consuming, finishes the
messages it holds, flushes the outbox and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import os
import signal
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aio_pika
import asyncpg
import structlog
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aiohttp import web

from contracts.events import InboundEvent
from service.adapters.postgres.errors import TRANSIENT_ERRORS
from service.adapters.postgres.leases import Leases
from service.adapters.postgres.listener import API_KEYS_CHANNEL, SESSIONS_CHANNEL, Listener
from service.adapters.postgres.subscription_tables import find_api_key
from service.adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from service.adapters.rabbitmq.deliveries import Deliveries
from service.adapters.rabbitmq.relay import OutboxRelay
from service.adapters.rabbitmq.subscriptions import Subscriptions
from service.adapters.rabbitmq.topology import Declared, Topology, declare, queue_stats
from service.entrypoints.consumer import CheckoutEvents
from service.entrypoints.http.app import init_app
from service.entrypoints.http.auth import Authenticator
from service.entrypoints.http.deps import Deps
from service.entrypoints.http.session_cache import SessionCache
from service.entrypoints.ownership import LEASE_TTL, Ownership
from service.metrics import Metrics
from service.settings import Settings

log = structlog.get_logger(__name__)

PREFETCH = 64
SHUTDOWN_GRACE = 8.5


def utcnow() -> datetime:
    return datetime.now(UTC)


async def _keep_connection(connection: asyncpg.Connection) -> None:
    """Releases a connection as it is: every unit of work ends its transaction (or the connection is
    terminated), locks are transaction-scoped and listeners are removed before release, so asyncpg's
    reset round trip on every release has nothing to undo."""


async def create_pool(url: str) -> asyncpg.Pool:
    """The service's pool; the write baseline of `make bench` uses it too, so both run on one setting."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        url,
        min_size=2,
        max_size=10,
        command_timeout=30,
        reset=_keep_connection,
        # Each statement is planned for its arguments and the tables as they are. A plan cached while the
        # tables were nearly empty is otherwise kept until they are analyzed again (never, where
        # autovacuum is off): a batch's read ran four times slower for the life of its connection.
        server_settings={"plan_cache_mode": "force_custom_plan"},
    )
    return pool


async def connect_database(url: str, attempts: int = 30) -> asyncpg.Pool:
    for attempt in range(1, attempts + 1):
        try:
            return await create_pool(url)
        except (OSError, asyncpg.PostgresError) as exc:
            if attempt == attempts:
                raise
            log.warning("database_not_reachable", attempt=attempt, error=type(exc).__name__)
            await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


async def connect_broker(url: str, attempts: int = 30) -> AbstractRobustConnection:
    """The first connection is retried too: a robust connection only reconnects once it has connected."""
    for attempt in range(1, attempts + 1):
        try:
            # Reconnect a second after a drop (aio-pika waits 5 s by default).
            return await aio_pika.connect_robust(url, reconnect_interval=1)
        except (OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
            if attempt == attempts:
                raise
            log.warning("broker_not_reachable", attempt=attempt, error=type(exc).__name__)
            await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


@dataclass
class Service:
    settings: Settings
    pool: asyncpg.Pool
    connection: AbstractRobustConnection
    channel: AbstractChannel
    ops_channel: AbstractChannel
    declared: Declared
    topology: Topology
    metrics: Metrics
    consumer: Deliveries[InboundEvent]
    relay: OutboxRelay
    subscriptions: Subscriptions
    ownership: Ownership
    app: web.Application
    sessions: SessionCache
    auth: Authenticator
    new_uow: PostgresUnitOfWorkFactory
    _refreshing: asyncio.Task[None] | None = None

    def changes(self) -> Listener:
        """The LISTEN connection that keeps this process's GET answers and API keys current."""

        def listening(now: bool) -> None:
            self.sessions.listening_changed(now)
            self.auth.cache.listening_changed(now)

        channels: dict[str, Callable[[str], None]] = {
            SESSIONS_CHANNEL: self.sessions.changed,
            API_KEYS_CHANNEL: self.auth.cache.changed,
        }
        return Listener(self.pool, channels, listening)

    async def readiness(self) -> dict[str, bool]:
        database = True
        try:
            await asyncio.wait_for(self.pool.fetchval("select 1"), timeout=2.0)
        except Exception:
            database = False
        broker = not self.connection.is_closed and not self.channel.is_closed
        return {"database": database, "broker": broker}

    async def refresh_gauges(self) -> None:
        """Reads the gauges at scrape time; one read at a time, never cancelled half-way.

        A scrape that times out leaves the read running (cancelling an AMQP call mid-flight can
        leave its channel out of step), so the next scrape sees its values.
        """
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._read_gauges(), name="refresh-gauges")
        await asyncio.shield(self._refreshing)

    async def _read_gauges(self) -> None:
        for check, passed in (await self.readiness()).items():
            self.metrics.ready.labels(check).set(1 if passed else 0)
        row = await self.pool.fetchrow(
            "select count(*) as backlog, coalesce(extract(epoch from now() - min(created_at)), 0) as age"
            " from outbox where published_at is null"
        )
        assert row is not None
        self.metrics.outbox_backlog.set(row["backlog"])
        self.metrics.outbox_oldest_age.set(float(row["age"]))
        # Events parked for a session that never came (its `created` was dead-lettered, say) show here.
        parked = await self.pool.fetchrow(
            "select count(*) as waiting, coalesce(extract(epoch from now() - min(received_at)), 0) as age"
            " from parked_events"
        )
        assert parked is not None
        self.metrics.parked_events.set(parked["waiting"])
        self.metrics.parked_oldest_age.set(float(parked["age"]))
        if self.ops_channel.is_closed:
            self.ops_channel = await self.connection.channel(publisher_confirms=False)
        for name in (*self.topology.partition_queues, self.topology.dead_letter_queue):
            messages, consumers = await queue_stats(self.ops_channel, name)
            self.metrics.queue_messages.labels(name).set(messages)
            self.metrics.queue_consumers.labels(name).set(consumers)


def replica_id() -> str:
    """Unique per process, and telling on a dashboard: the host (the pod's name) and the process."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def build(settings: Settings, topology: Topology | None = None) -> Service:
    topology = topology or Topology(partitions=settings.partitions)
    metrics = Metrics()
    pool = await connect_database(settings.database_url)
    leases = Leases(pool, replica_id(), topology.partitions, LEASE_TTL)
    try:
        await leases.prepare()
    except BaseException:
        await pool.close()
        raise
    connection = await connect_broker(settings.amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=PREFETCH)
    declared = await declare(channel, topology)
    relay_channel = await connection.channel(publisher_confirms=True)
    outbound = await relay_channel.get_exchange(topology.outbound_exchange)
    dead_letter = await relay_channel.get_exchange(topology.dead_letter_exchange)
    ops_channel = await connection.channel(publisher_confirms=False)
    sessions = SessionCache()
    auth = Authenticator(settings.admin_token, functools.partial(find_api_key, pool), metrics)
    new_uow = PostgresUnitOfWorkFactory(pool, sessions_changed=sessions.changed_many, partitions=topology.partitions)
    consumer = Deliveries(CheckoutEvents(new_uow, utcnow), declared.dead_letter, metrics, TRANSIENT_ERRORS)
    # Nothing is relayed until its partition's lease is held.
    relay = OutboxRelay(pool, outbound, dead_letter, metrics, partitions=())
    subscriptions = Subscriptions(declared.partitions, consumer.on_message)
    ownership = Ownership(leases, subscriptions, consumer, relay, metrics)
    service = Service(
        settings,
        pool,
        connection,
        channel,
        ops_channel,
        declared,
        topology,
        metrics,
        consumer,
        relay,
        subscriptions,
        ownership,
        web.Application(),
        sessions,
        auth,
        new_uow,
    )
    service.app = init_app(
        Deps(
            new_uow=new_uow,
            auth=auth,
            metrics=metrics,
            clock=utcnow,
            readiness=service.readiness,
            refresh_gauges=service.refresh_gauges,
            link_secret=settings.link_secret,
            public_url=settings.public_url,
            sessions=sessions,
            cors_origins=settings.cors_origins,
            demo=settings.demo,
        )
    )
    return service


async def serve(settings: Settings) -> None:
    """Runs HTTP, the consumer and the relay in one process until a stop signal."""
    service = await build(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    relay_task = asyncio.create_task(service.relay.run(), name="outbox-relay")
    listener_task = asyncio.create_task(service.changes().run(), name="cache-changes")
    runner = web.AppRunner(service.app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, settings.http_port).start()
    # What start-up made (modules, the catalog, locale data) lives as long as the process: it is kept out
    # of the garbage collector's full collections, which scanned it each time and paused the loop for
    # 18 to 42 ms (every event and request in flight waited that long).
    gc.collect()
    gc.freeze()
    # A young generation of 10,000 objects rather than 700: what a request or a batch makes is mostly
    # gone by the time it is collected, instead of being carried into the older generations, whose
    # collections took 5 to 11 ms each on a busy machine.
    gc.set_threshold(10_000, 10, 10)
    ownership_task = asyncio.create_task(service.ownership.run(), name="partition-ownership")
    log.info(
        "service_started",
        http=f"http://{settings.http_host}:{settings.http_port}",
        replica=service.ownership.replica,
        partitions=service.topology.partitions,
    )
    await stop.wait()
    listener_task.cancel()
    # Bounded: the stop must begin whatever the listener does with its cancel.
    await asyncio.wait([listener_task], timeout=1.0)
    await shutdown(service, runner, relay_task, ownership_task)


async def shutdown(
    service: Service,
    runner: web.AppRunner | None,
    relay_task: asyncio.Task[None],
    ownership_task: asyncio.Task[None],
) -> None:
    """Stops consuming, finishes the messages in hand, lets the relay end its batch and flushes the outbox
    of its partitions, all within SHUTDOWN_GRACE seconds, then gives the partitions back for the other
    replicas to take at once; what is left stays in the outbox for the next owner."""
    log.info("service_stopping")
    deadline = asyncio.get_running_loop().time() + SHUTDOWN_GRACE

    def left() -> float:
        return max(deadline - asyncio.get_running_loop().time(), 0.1)

    service.consumer.stopping = True
    # The heartbeats go on (renewing only) until the partitions are given back.
    await service.ownership.stop_consuming()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(service.consumer.wait_idle(), left() * 0.6)
    if runner is not None:
        await runner.cleanup()
    service.relay.stop()
    try:
        await asyncio.wait_for(asyncio.shield(relay_task), left() * 0.5)
    except TimeoutError:
        relay_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await relay_task
    try:
        flushed = await asyncio.wait_for(service.relay.drain(), left())
        log.info("outbox_flushed", events=flushed)
    except Exception as exc:
        # What is left stays in the outbox and is published by the next owner.
        log.warning("outbox_flush_incomplete", error=type(exc).__name__)
    ownership_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ownership_task
    await service.ownership.leave()
    await service.connection.close()
    await service.pool.close()
    log.info("service_stopped")
