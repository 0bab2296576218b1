"""The fault-injection harness: a checkout backend that publishes at least once, a fulfillment-side
collector that survives broker faults, broker and database controls, and the outcome of a scenario."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage

from tests.broker import envelope

EVENTS = int(os.environ.get("UPSELL_RELIABILITY_EVENTS", "400"))
"""Events in a stream: 400 in `make test`, 5,000 in `make reliability`."""
RESULTS = (
    Path(os.environ.get("UPSELL_RELIABILITY_RESULTS", "")) if os.environ.get("UPSELL_RELIABILITY_RESULTS") else None
)


def created(session: str) -> dict[str, Any]:
    return {
        "id": session,
        "mode": "subscription",
        "currency": "usd",
        "line_items": [{"price": "price_pro_monthly"}, {"price": "price_setup"}],
    }


class Backend:
    """A checkout backend: publishes each event until the broker confirms it, through any fault, with
    the same event id every time (at least once, as publishers of the interface are expected to)."""

    def __init__(self, amqp_url: str) -> None:
        self._url = amqp_url
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def _ready(self) -> aio_pika.abc.AbstractExchange:
        if self._exchange is None or self._connection is None or self._connection.is_closed:
            self._connection = await aio_pika.connect(self._url, timeout=5)
            channel = await self._connection.channel(publisher_confirms=True)
            self._exchange = await channel.declare_exchange("checkout", aio_pika.ExchangeType.TOPIC, durable=True)
        return self._exchange

    async def publish(
        self, body: bytes, routing_key: str, message_id: str, correlation_id: str | None, deadline: float = 120.0
    ) -> None:
        give_up = time.monotonic() + deadline
        while True:
            try:
                exchange = await self._ready()
                message = aio_pika.Message(
                    body,
                    message_id=message_id,
                    correlation_id=correlation_id,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                )
                await asyncio.wait_for(exchange.publish(message, routing_key=routing_key), 10)
                return
            except Exception:
                self._exchange = None
                if self._connection is not None:
                    with contextlib.suppress(Exception):
                        await self._connection.close()
                if time.monotonic() > give_up:
                    raise
                await asyncio.sleep(0.5)

    async def send(self, event_type: str, data: dict[str, Any], event_id: str | None = None) -> str:
        event_id = event_id or str(uuid.uuid4())
        # The session id as `correlation_id`: the events of one session go to one partition.
        session = data["id"] if event_type == "checkout.session.created" else data["session"]
        await self.publish(envelope(event_type, data, event_id), event_type, event_id, session)
        return event_id

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()


@dataclass
class Received:
    type: str
    message_id: str
    correlation_id: str
    body: bytes


class Collector:
    """A fulfillment worker: a durable quorum queue bound to `upsell`, consumed with manual acks and
    reconnected by hand after any fault. A redelivery of something it already holds is its own
    redelivery, not a duplicate of the service's, and is not counted."""

    def __init__(self, amqp_url: str, name: str = "reliability.collector") -> None:
        self._url = amqp_url
        self._name = name
        self.received: list[Received] = []
        self._seen: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._declare()
        self._task = asyncio.create_task(self._run())

    async def _declare(self) -> None:
        connection = await aio_pika.connect(self._url)
        async with connection:
            channel = await connection.channel()
            upsell = await channel.declare_exchange("upsell", aio_pika.ExchangeType.TOPIC, durable=True)
            queue = await channel.declare_queue(self._name, durable=True, arguments={"x-queue-type": "quorum"})
            await queue.bind(upsell, routing_key="#")

    async def _run(self) -> None:
        while True:
            try:
                connection = await aio_pika.connect(self._url, timeout=5)
                async with connection:
                    channel = await connection.channel()
                    await channel.set_qos(prefetch_count=500)
                    queue = await channel.get_queue(self._name)
                    async with queue.iterator() as messages:
                        async for message in messages:
                            self._take(message)
                            await message.ack()
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.5)

    def _take(self, message: AbstractIncomingMessage) -> None:
        key = message.message_id or ""
        if message.redelivered and key in self._seen:
            return
        self._seen.add(key)
        self.received.append(Received(message.type or "", key, message.correlation_id or "", message.body))

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.type == event_type]

    def in_order(self, sessions: set[str], first: str, then: str) -> set[str]:
        """Sessions whose first `first` event came out before their first `then` event."""
        arrived: dict[tuple[str, str], int] = {}
        for index, r in enumerate(self.received):
            arrived.setdefault((r.correlation_id, r.type), index)
        return {
            s
            for s in sessions
            if (s, first) in arrived and (s, then) in arrived and arrived[s, first] < arrived[s, then]
        }

    def ids_kept(self) -> bool:
        """Every copy of an event of a session kept the event id of the first, whatever its type."""
        ids: dict[tuple[str, str], set[str]] = defaultdict(set)
        for r in self.received:
            ids[r.correlation_id, r.type].add(r.message_id)
        return all(len(found) == 1 for found in ids.values())

    async def wait_for(self, event_type: str, sessions: set[str], timeout: float) -> float:
        """Seconds until every session has an event of this type (or the timeout passed)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if sessions <= {r.correlation_id for r in self.of_type(event_type)}:
                break
            await asyncio.sleep(0.2)
        return time.monotonic() - started

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass
class Outcome:
    scenario: str
    events_in: int
    sessions: int
    evaluated: int
    events_out: int
    lost: int
    duplicates: int
    duplicates_kept_id: bool
    recovery_s: float | None
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def outcome(
    scenario: str,
    events_in: int,
    sessions: set[str],
    collector: Collector,
    recovery_s: float | None,
    notes: str = "",
    event_type: str = "checkout.session.upsell_evaluated",
) -> Outcome:
    """Counts, per session, what came out: lost sessions, and duplicates (and whether they kept their id)."""
    per_session: dict[str, list[str]] = defaultdict(list)
    for r in collector.of_type(event_type):
        per_session[r.correlation_id].append(r.message_id)
    evaluated = {s for s in sessions if s in per_session}
    duplicates = sum(len(ids) - 1 for s, ids in per_session.items() if s in sessions)
    kept = all(len(set(ids)) == 1 for ids in per_session.values())
    result = Outcome(
        scenario,
        events_in,
        len(sessions),
        len(evaluated),
        len(collector.received),
        len(sessions - evaluated),
        duplicates,
        kept,
        None if recovery_s is None else round(recovery_s, 2),
        notes,
    )
    record(result)
    return result


def record(result: Outcome) -> None:
    """Appends the outcome to the results file of this run (`make reliability` turns it into a table)."""
    if RESULTS is not None:
        with RESULTS.open("a") as out:
            out.write(json.dumps(asdict(result)) + "\n")
    print(json.dumps(asdict(result)))


# Broker and database controls. Each puts things back as it found them, also when the test fails.


def _rabbitmqctl(*args: str) -> None:
    binary = shutil.which("rabbitmqctl")
    if binary is None:
        raise RuntimeError("rabbitmqctl is needed for broker faults")
    subprocess.run([binary, "-q", *args], check=True, capture_output=True, timeout=120)


def vhost_of(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).path.lstrip("/")) or "/"


def close_connections(amqp_url: str) -> None:
    """What a network cut or a broker-side kill does: every connection of the vhost is closed."""
    _rabbitmqctl("close_all_connections", "--vhost", vhost_of(amqp_url), "reliability test")


@contextlib.asynccontextmanager
async def broker_stopped() -> AsyncIterator[None]:
    """`rabbitmqctl stop_app`, then `start_app` on leaving, however the block ends."""
    await asyncio.to_thread(_rabbitmqctl, "stop_app")
    try:
        yield
    finally:
        await asyncio.to_thread(_rabbitmqctl, "start_app")
        await asyncio.to_thread(_rabbitmqctl, "await_startup")


def _pg(action: str) -> None:
    clusters = sorted(os.listdir("/etc/postgresql"))
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1], "main", action],
        check=True,
        capture_output=True,
        timeout=120,
    )


@contextlib.asynccontextmanager
async def database_stopped() -> AsyncIterator[None]:
    """The local PostgreSQL stopped, and started again on leaving, however the block ends."""
    await asyncio.to_thread(_pg, "stop")
    try:
        yield
    finally:
        await asyncio.to_thread(_pg, "start")


def can_control_database() -> bool:
    return shutil.which("pg_ctlcluster") is not None and os.path.isdir("/etc/postgresql")


@dataclass(frozen=True)
class Ending:
    """How the sessions of a scenario ended, read from the database and the broker."""

    statuses: dict[str, int]
    """Sessions by status (`missing` for those never registered)."""
    complete: frozenset[str]
    parked: int
    """Events still waiting for a session that never came."""
    dead_lettered: int
    """Messages in the dead-letter queue, and refused parked events on their way there."""


async def ending(database_url: str, amqp_url: str, sessions: set[str]) -> Ending:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("select id, status from checkout_sessions where id = any($1::text[])", list(sessions))
        parked = await conn.fetchval("select count(*) from parked_events")
        refused = await conn.fetchval("select count(*) from outbox where dead_letter_reason is not null")
    finally:
        await conn.close()
    statuses: dict[str, int] = defaultdict(int)
    for row in rows:
        statuses[row["status"]] += 1
    if missing := len(sessions) - len(rows):
        statuses["missing"] = missing
    complete = frozenset(row["id"] for row in rows if row["status"] == "complete")
    dead = refused + await queue_depth(amqp_url, "upsell.checkout.dead-letter")
    return Ending(dict(statuses), complete, parked, dead)


async def queue_depth(amqp_url: str, queue: str) -> int:
    """Messages ready in a queue (declared passively: a queue not there fails)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


def parked_sessions(logs: str) -> set[str]:
    """Sessions with an event the service parked: handled before its session was registered."""
    return {
        str(json.loads(line).get("session_id"))
        for line in logs.splitlines()
        if '"event_parked"' in line and line.startswith("{")
    }


Owners = dict[int, str | None]
"""Each partition's owner while its lease runs (None when it has none)."""


async def owners_until(database_url: str, check: Callable[[Owners], bool], timeout: float) -> float | None:
    """Seconds until the partition leases pass the check, read every 0.1 s (None past the timeout)."""
    started = time.monotonic()
    conn = await asyncpg.connect(database_url)
    try:
        while time.monotonic() - started < timeout:
            rows = await conn.fetch(
                "select partition, case when expires_at > now() then owner end as owner from partition_leases"
            )
            if check({r["partition"]: r["owner"] for r in rows}):
                return time.monotonic() - started
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    return None


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True
