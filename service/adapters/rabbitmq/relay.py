"""The outbox relay: publishes committed events in order, with publisher confirms, then marks them.

Woken by LISTEN/NOTIFY on `upsell_outbox` and by a polling fallback, so a lost notification or a
restart only delays an event. Each replica's relay publishes the outbox partitions its replica owns (a
session's events are all in one partition, so one relay publishes them, in the order they were
committed); the ownership moves with the partition leases, after the relay let go of what it had on its
way. A crash between the confirm and the mark re-sends the event with the same id; consumers drop it by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

import aio_pika
import aiormq
import asyncpg
import pamqp.frame
import structlog
from aio_pika.abc import AbstractExchange, HeadersType
from aio_pika.exceptions import ChannelInvalidStateError
from aiormq.abc import ChannelFrame
from asyncpg.pool import PoolConnectionProxy
from pamqp.body import ContentBody
from pamqp.commands import Basic
from pamqp.header import ContentHeader

from service.adapters.postgres.listener import Listener
from service.adapters.rabbitmq.dead_lettering import refusal_headers
from service.domain.partitions import PARTITIONS
from service.metrics import Metrics

log = structlog.get_logger(__name__)

CHANNEL = "upsell_outbox"


def outbox_properties(
    event_id: str, event_type: str, correlation_id: str, created: datetime, headers: HeadersType | None = None
) -> Basic.Properties:
    """An event's AMQP properties: its id, type and session, JSON, persistent, stamped with its creation."""
    return Basic.Properties(
        headers=headers,
        message_id=event_id,
        message_type=event_type,
        correlation_id=correlation_id,
        content_type="application/json",
        delivery_mode=2,
        timestamp=created,
    )


CHANNEL_WAIT = 5.0
"""Seconds the relay waits for a reconnecting broker's channel before it backs off and tries again."""


async def _underlay(exchange: AbstractExchange) -> aiormq.Channel:
    """The channel an exchange publishes on, as it is now (a robust connection replaces it after a drop).
    The relay publishes there itself (`publish_together`). A closed channel raises at once, and one whose
    connection is coming back is waited for a few seconds at most, as aio-pika's own publish would."""
    if not isinstance(exchange, aio_pika.Exchange):
        raise TypeError(f"the relay publishes through an aio-pika exchange, not {exchange!r}")
    if exchange.channel.is_closed:
        raise ChannelInvalidStateError(f"{exchange.channel!r} closed")
    async with asyncio.timeout(CHANNEL_WAIT):
        channel = await exchange.channel.get_underlay_channel()
    if not isinstance(channel, aiormq.Channel) or not channel.publisher_confirms:
        raise TypeError(f"the relay publishes on an aiormq channel with publisher confirms, not {channel!r}")
    return channel


Message = tuple[str, str, Basic.Properties, bytes]
"""What `publish_together` sends: exchange, routing key, properties and body."""


async def publish_together(
    channel: aiormq.Channel, messages: list[Message], confirm_within: float
) -> list[asyncio.Future[Any]]:
    """Publishes `messages` on `channel` in one write and returns their confirmations, in order: each ends
    with the broker's ack, or fails with its nack, with the channel's closing, or after `confirm_within`
    seconds. A connection that does not take the frames within CHANNEL_WAIT seconds raises TimeoutError.

    This is what aiormq's `basic_publish` does for one message (a delivery tag and a confirmation future
    each, registered under the channel's lock; the frames through the connection's write queue), done
    for a batch at once. One task, lock, timeout and socket write per message were a third of a
    confirmed publish's CPU in the relay."""
    number, most = channel.number, channel.max_content_size
    frames = bytearray()
    for exchange, routing_key, properties, body in messages:
        frames += _publish_frame(exchange, routing_key, number)
        frames += pamqp.frame.marshal(ContentHeader(0, len(body), properties), number)
        for start in range(0, len(body), most):
            frames += pamqp.frame.marshal(ContentBody(body[start : start + most]), number)
    confirmations: list[asyncio.Future[Any]] = []
    async with channel.lock:
        first = channel.delivery_tag + 1
        for _ in messages:
            channel.delivery_tag += 1
            confirmation = channel.create_future()
            channel.confirmations[channel.delivery_tag] = confirmation
            confirmations.append(confirmation)
        try:
            async with asyncio.timeout(CHANNEL_WAIT):
                await channel.write_queue.put(ChannelFrame(payload=bytes(frames), should_close=False))
        except BaseException:
            # Not handed to the connection: the broker has not seen these tags, which go to the next.
            for tag in range(first, channel.delivery_tag + 1):
                channel.confirmations.pop(tag, None)
            channel.delivery_tag = first - 1
            for confirmation in confirmations:
                confirmation.cancel()
            raise
    _expire_later(confirmations, confirm_within)
    return confirmations


def _expire_later(confirmations: list[asyncio.Future[Any]], within: float) -> None:
    """Fails what is not confirmed `within` seconds from now; the timer goes once all are (it would keep
    every confirmation of the last half minute)."""
    timer = asyncio.get_running_loop().call_later(within, _expire, confirmations)
    left = len(confirmations)

    def ended(_: asyncio.Future[Any]) -> None:
        nonlocal left
        left -= 1
        if not left:
            timer.cancel()

    for confirmation in confirmations:
        confirmation.add_done_callback(ended)


Publish = Callable[[aiormq.Channel, list[Message], float], Awaitable[list[asyncio.Future[Any]]]]
"""How the relay publishes a batch on a channel: `publish_together`, or a test's stand-in around it."""


@functools.lru_cache(maxsize=256)
def _publish_frame(exchange: str, routing_key: str, channel: int) -> bytes:
    return pamqp.frame.marshal(Basic.Publish(exchange=exchange, routing_key=routing_key), channel)


def _expire(confirmations: list[asyncio.Future[Any]]) -> None:
    for confirmation in confirmations:
        if not confirmation.done():
            confirmation.set_exception(TimeoutError("the broker did not confirm the publish in time"))


MAX_IN_FLIGHT = 1000
"""Events published and not yet confirmed, at most."""
PUBLISH_TIMEOUT = 30.0
"""Seconds a publish may wait for its confirm before it counts as refused (and is published again)."""
SETTLE_BEFORE_LETTING_GO = 5.0
"""Seconds a relay letting a partition go waits for its confirms under way, so that it can mark them."""
# Unpublished events of the relay's partitions, those on their way and the other events of their
# sessions aside.
# (An index scan in id order that stops at the limit: migration 010.)
_COLUMNS = "id, event_id, type, correlation_id, body, created_at, dead_letter_reason, dead_letter_detail, partition"
_UNPUBLISHED = "unpublished_outbox($1, $2::bigint[], $3::text[], $4::smallint[])"
_READ = f"select {_COLUMNS} from {_UNPUBLISHED}"


def _marking(ids: str) -> str:
    return (
        f"update outbox set published_at = now() where id = any({ids}::bigint[])"
        " returning type, dead_letter_reason, extract(epoch from published_at - created_at)::float8 as seconds"
    )


_MARK = _marking("$1")
# The confirmed rows marked and the next rows read in one round trip. The read runs on the statement's
# snapshot, from before the mark, so the rows being marked are passed among those on their way ($2).
MARK_AND_READ = (
    f"with marked as ({_marking('$5')})"
    f" select 'read' as kind, {_COLUMNS}, null::float8 as seconds from {_UNPUBLISHED}"
    " union all select 'marked', null, null, type, null, null, null, dead_letter_reason, null, null, seconds"
    " from marked order by kind desc, id"
)


class OutboxRelay:
    """Publishes without waiting for the confirms of what it published before: a slow confirm holds up
    only its own event's mark. One event of a session is on its way at a time, and the next one is
    published once the broker confirmed it, so a refused publish never leaves a session's later event
    confirmed before an earlier one."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        exchange: AbstractExchange,
        dead_letter: AbstractExchange,
        metrics: Metrics,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        max_in_flight: int = MAX_IN_FLIGHT,
        partitions: Iterable[int] = range(PARTITIONS),
        publish: Publish = publish_together,
    ) -> None:
        self._pool = pool
        self._publish_on = publish
        self._exchange = exchange
        self._dead_letter = dead_letter
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_in_flight = max_in_flight
        self._wake = asyncio.Event()
        self._stopping = False
        self._partitions = frozenset(partitions)
        self._turn = asyncio.Lock()
        """One batch (or a let-go's mark) at a time."""
        self._publishes: list[tuple[asyncpg.Record, asyncio.Future[Any]]] = []
        """Publishes under way with their rows, in the order they started."""
        self._marked = False
        """Whether a confirmed event was marked since `run` last looked."""

    def wake(self, *_: object) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Lets `run` return once what it published is confirmed and marked: an event cut off between its
        publish and its mark would be published again at the next start."""
        self._stopping = True
        self._wake.set()

    @property
    def partitions(self) -> frozenset[int]:
        return self._partitions

    def own(self, partitions: Iterable[int]) -> None:
        """Publishes these partitions from now on too."""
        self._partitions |= frozenset(partitions)
        self._wake.set()

    async def let_go(self, partitions: Iterable[int], within: float = SETTLE_BEFORE_LETTING_GO) -> None:
        """Stops publishing these partitions, once what of them is on its way is confirmed and marked
        (for `within` seconds at most: what is left is published again by the next owner, same ids)."""
        gone = frozenset(partitions)
        self._partitions -= gone
        async with self._turn:
            # A batch read before the line above may be publishing rows of these partitions: they count.
            under_way = [publish for row, publish in self._publishes if row["partition"] in gone]
        if under_way:
            await asyncio.wait(under_way, timeout=within)
        with contextlib.suppress(Exception):
            async with self._turn, self._pool.acquire() as conn:
                await self._mark_confirmed(conn)
        self._publishes = [(row, p) for row, p in self._publishes if row["partition"] not in gone]

    async def publish_batch(self) -> int:
        """Marks what the broker confirmed, then publishes up to one batch of what is new (not waiting for
        its confirms); returns how many it published. Raises the first refusal among the confirms it marked."""
        if not self._partitions and not self._publishes:
            return 0
        # Before the database connection: a broker coming back is not waited for holding one.
        channels = (await _underlay(self._exchange), await _underlay(self._dead_letter))
        async with self._turn, self._pool.acquire() as conn:
            confirmed, refused = self._take_ended()
            if refused is None:
                published = await self._read_and_publish(conn, channels, confirmed)
            else:
                published = 0
                await self._mark(conn, confirmed)
        if refused is not None:
            # Published again after the caller's backoff.
            raise refused
        return published

    async def _read_and_publish(
        self,
        conn: PoolConnectionProxy,
        channels: tuple[aiormq.Channel, aiormq.Channel],
        confirmed: list[asyncpg.Record],
    ) -> int:
        """Marks `confirmed` with the first read, and publishes what it reads."""
        published = 0
        while (room := min(self._batch_size - published, self._max_in_flight - len(self._publishes))) > 0:
            on_their_way = [row for row, _ in self._publishes]
            read = (
                room,
                [row["id"] for row in (*on_their_way, *confirmed)],
                list({row["correlation_id"] for row in on_their_way}),
                sorted(self._partitions),
            )
            if confirmed:
                rows = await conn.fetch(MARK_AND_READ, *read, [row["id"] for row in confirmed])
                self._count([row for row in rows if row["kind"] == "marked"])
                rows = [row for row in rows if row["kind"] == "read"]
                confirmed = []
            else:
                rows = await conn.fetch(_READ, *read)
            first = _first_of_each_session(rows)
            await self._publish(first, *channels)
            published += len(first)
            if len(rows) < room or len(first) == len(rows):
                break
            # Some rows wait for an earlier event of their session: read on past that session (now on its
            # way), so that a session with a backlog does not hold the others up.
        # No room to read (as many publishes under way as allowed): the mark goes alone.
        await self._mark(conn, confirmed)
        return published

    async def _publish(self, rows: list[asyncpg.Record], events: aiormq.Channel, refusals: aiormq.Channel) -> None:
        """Publishes in commit order, events and refusals each in one write, without waiting for confirms."""
        batches: dict[int, tuple[aiormq.Channel, list[asyncpg.Record], list[Message]]] = {}
        for row in rows:
            reason = row["dead_letter_reason"]
            if reason is None:
                channel, exchange, headers = events, self._exchange.name, None
            else:
                channel, exchange = refusals, self._dead_letter.name
                headers = refusal_headers(reason, row["dead_letter_detail"], row["type"], row["created_at"])
            properties = outbox_properties(
                row["event_id"], row["type"], row["correlation_id"], row["created_at"], headers
            )
            # Not mandatory: an event type no worker has bound a queue for is dropped by the broker.
            batch = batches.setdefault(id(channel), (channel, [], []))
            batch[1].append(row)
            batch[2].append((exchange, row["type"], properties, bytes(row["body"])))
        started: list[asyncio.Future[Any]] = []
        for channel, batch_rows, messages in batches.values():
            confirmations = await self._publish_on(channel, messages, PUBLISH_TIMEOUT)
            self._publishes.extend(zip(batch_rows, confirmations, strict=True))
            started.extend(confirmations)
        if started:
            # Woken once the batch's publishes have all ended, not at each confirm: a mark is a statement.
            asyncio.gather(*started, return_exceptions=True).add_done_callback(self.wake)

    def _take_ended(self) -> tuple[list[asyncpg.Record], BaseException | None]:
        """Takes the publishes that ended off those under way: the rows the broker confirmed, and the first
        refusal (the rows refused are published again)."""
        confirmed: list[asyncpg.Record] = []
        refused: BaseException | None = None
        under_way = []
        for row, publish in self._publishes:
            if not publish.done():
                under_way.append((row, publish))
                continue
            failed = publish.exception() if not publish.cancelled() else RuntimeError("the publish was cancelled")
            if failed is None:
                confirmed.append(row)
            else:
                refused = refused or failed
        self._publishes = under_way
        return confirmed, refused

    async def _mark(self, conn: PoolConnectionProxy, confirmed: list[asyncpg.Record]) -> None:
        if confirmed:
            self._count(await conn.fetch(_MARK, [row["id"] for row in confirmed]))

    def _count(self, marked: list[asyncpg.Record]) -> None:
        self._marked = self._marked or bool(marked)
        for row in marked:
            reason = row["dead_letter_reason"]
            if reason is None:
                self._metrics.events_published.labels(row["type"]).inc()
                self._metrics.event_latency.labels(row["type"]).observe(row["seconds"])
            else:
                self._metrics.dead_letters.labels(reason).inc()

    async def _mark_confirmed(self, conn: PoolConnectionProxy) -> BaseException | None:
        """Marks the rows whose publishes the broker confirmed; those refused are published again (the
        first refusal is returned)."""
        confirmed, refused = self._take_ended()
        await self._mark(conn, confirmed)
        return refused

    async def _confirmed(self, within: float | None = None) -> None:
        """Waits for every publish under way to end (for `within` seconds at most)."""
        if self._publishes:
            await asyncio.wait([publish for _, publish in self._publishes], timeout=within)

    async def _settle(self, within: float | None) -> None:
        """Waits for the publishes under way and marks what was confirmed; what is left unmarked is
        published again later, with the same ids."""
        await self._confirmed(within)
        try:
            async with self._turn, self._pool.acquire() as conn:
                await self._mark_confirmed(conn)
        except Exception as exc:
            log.warning("outbox_mark_failed", error=type(exc).__name__, detail=str(exc))

    async def drain(self) -> int:
        """Publishes until the outbox is empty and everything published is marked; used at shutdown."""
        total = 0
        while True:
            published = await self.publish_batch()
            total += published
            if not published and not self._publishes:
                return total
            await self._confirmed()

    async def run(self) -> None:
        """Publishes forever; failures (broker or database away) are retried with backoff."""
        listener = asyncio.create_task(Listener(self._pool, {CHANNEL: self.wake}).run())
        backoff = 0.1
        try:
            while not self._stopping:
                self._wake.clear()
                self._marked = False
                try:
                    published = await self.publish_batch()
                    if self._marked or not self._publishes:
                        # Working again only once the broker confirms (a publish fails only at its confirm).
                        backoff = 0.1
                except Exception as exc:
                    # Broker or database away, or anything else: the relay must outlive it, and
                    # what was not marked published is sent again with the same ids.
                    log.warning("outbox_relay_retry", error=type(exc).__name__, detail=str(exc), backoff=backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if published < self._batch_size and not self._stopping:
                    # New rows (a notification) or a confirm wake it; the poll is the fallback.
                    # asyncio.timeout, not wait_for, which on Python 3.11 can swallow a cancel.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._poll_interval):
                            await self._wake.wait()
            # Stopping: what was published is marked before the partitions go.
            await self._settle(None)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


def _first_of_each_session(rows: list[asyncpg.Record]) -> list[asyncpg.Record]:
    """A session's first row only (rows come in id order): its next one waits until this one is
    confirmed, so that a refused publish never leaves a later event of the session confirmed first."""
    seen: set[str] = set()
    first = []
    for row in rows:
        if row["correlation_id"] not in seen:
            seen.add(row["correlation_id"])
            first.append(row)
    return first
