"""The outbox relay: publishes committed events in order, with publisher confirms, then marks them.

Woken by LISTEN/NOTIFY on `upsell_outbox` and by a polling fallback, so a lost notification or a
restart only delays an event. One relay publishes at a time: the one whose connection holds the relay's
advisory lock, which keeps the events of a session in the order they were committed, also with several
processes; the others try again at each poll, and one takes over when the holder's connection ends.
A crash between the confirm and the mark re-sends the event with the same id; consumers drop it by id.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import aio_pika
import asyncpg
import structlog
from aio_pika.abc import AbstractExchange, HeadersType
from asyncpg.pool import PoolConnectionProxy

from service.adapters.postgres.listener import Listener
from service.metrics import Metrics

log = structlog.get_logger(__name__)

_RELAY_LOCK = 7_143_212
RESIGN_AFTER = 3
"""Failed batches in a row after which a relay gives the lock up for another to take."""
CHANNEL = "upsell_outbox"


def outbox_message(
    event_id: str,
    event_type: str,
    correlation_id: str,
    body: bytes,
    created: datetime,
    headers: HeadersType | None = None,
) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        headers=headers,
        message_id=event_id,
        type=event_type,
        correlation_id=correlation_id,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=created,
    )


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        exchange: AbstractExchange,
        dead_letter: AbstractExchange,
        metrics: Metrics,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
    ) -> None:
        self._pool = pool
        self._exchange = exchange
        self._dead_letter = dead_letter
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._stopping = False
        self._conn: PoolConnectionProxy | None = None

    def wake(self, *_: object) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Lets `run` return after the batch in hand: a batch cut off between its publishes and their
        mark would be published again at the next start."""
        self._stopping = True
        self._wake.set()

    async def _leader(self) -> PoolConnectionProxy | None:
        """This relay's own connection while it holds the relay lock, None while another relay does.

        The lock is the connection's (not a transaction's): a batch costs two statements, the read and
        the mark, and it is given up only with the connection.
        """
        if self._conn is not None and _open(self._conn):
            return self._conn
        await self._resign()
        conn = await self._pool.acquire()
        try:
            held = await conn.fetchval("select pg_try_advisory_lock($1)", _RELAY_LOCK)
        except BaseException:
            # The lock may have been granted before the failure: the connection must not go back open.
            await self._close(conn)
            raise
        if not held:
            await self._pool.release(conn)
            return None
        self._conn = conn
        return conn

    async def _resign(self) -> None:
        """Gives the lock up with the connection; another relay takes over at its next try."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._close(conn)

    async def _close(self, conn: PoolConnectionProxy) -> None:
        """A connection that held (or may hold) the lock never goes back to the pool open. One the pool
        took back already (lost) refuses both calls."""
        with contextlib.suppress(asyncpg.InterfaceError):
            conn.terminate()
        with contextlib.suppress(asyncpg.InterfaceError):
            await self._pool.release(conn)

    async def publish_batch(self) -> int:
        """Publishes up to one batch; returns how many (0 also when another relay holds the lock)."""
        conn = await self._leader()
        if conn is None:
            return 0
        try:
            rows = await conn.fetch(
                "select id, event_id, type, correlation_id, body, created_at, dead_letter_reason,"
                " dead_letter_detail from outbox where published_at is null order by id limit $1",
                self._batch_size,
            )
        except BaseException:
            await self._resign()
            raise
        for wave in _waves(rows):
            await self._publish(wave)
        if rows:
            try:
                await conn.execute(
                    "update outbox set published_at = now() where id = any($1::bigint[])", [r["id"] for r in rows]
                )
            except BaseException:
                await self._resign()
                raise
        return len(rows)

    async def _publish(self, rows: list[asyncpg.Record]) -> None:
        """Publishes rows of different correlation ids together; returns when the broker confirmed all.

        They start in commit order and take the channel in that order (its lock is first come, first
        served), so the broker receives them in commit order; only the confirms are awaited together.
        """
        publishes = []
        for row in rows:
            reason = row["dead_letter_reason"]
            headers = (
                None if reason is None else {"x-upsell-reason": reason, "x-upsell-detail": row["dead_letter_detail"]}
            )
            message = outbox_message(
                row["event_id"], row["type"], row["correlation_id"], bytes(row["body"]), row["created_at"], headers
            )
            exchange = self._exchange if reason is None else self._dead_letter
            # Not mandatory: an event type no worker has bound a queue for is dropped by the broker.
            publishes.append(exchange.publish(message, routing_key=row["type"], mandatory=False))
        results = await asyncio.gather(*publishes, return_exceptions=True)
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None:
            raise failed
        for row in rows:
            if row["dead_letter_reason"] is None:
                self._metrics.events_published.labels(row["type"]).inc()

    async def drain(self) -> int:
        """Publishes until the outbox is empty; used at shutdown."""
        total = 0
        try:
            while published := await self.publish_batch():
                total += published
        finally:
            await self._resign()
        return total

    async def run(self) -> None:
        """Publishes forever; failures (broker or database away) are retried with backoff."""
        listener = asyncio.create_task(Listener(self._pool, CHANNEL, self.wake).run())
        backoff = 0.1
        failures = 0
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    published = await self.publish_batch()
                    backoff, failures = 0.1, 0
                except Exception as exc:
                    # Broker or database away, or anything else: the relay must outlive it, and
                    # what was not marked published is sent again with the same ids.
                    log.warning("outbox_relay_retry", error=type(exc).__name__, detail=str(exc), backoff=backoff)
                    failures += 1
                    if failures >= RESIGN_AFTER:
                        # This process cannot publish (its broker side is down, say): another replica
                        # may, so the lock goes back until this one's next try.
                        await self._resign()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if published < self._batch_size and not self._stopping:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll_interval)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await self._resign()


def _open(conn: PoolConnectionProxy) -> bool:
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        # The pool took the connection back when it was lost.
        return False


def _waves(rows: list[asyncpg.Record]) -> list[list[asyncpg.Record]]:
    """The rows in waves, in commit order within each: a correlation id's second row goes in the wave
    after its first, so it is only sent once the first was confirmed. A refused publish then never
    leaves a later event of the same session confirmed before an earlier one."""
    waves: list[list[asyncpg.Record]] = []
    seen: dict[str, int] = {}
    for row in rows:
        index = seen.get(row["correlation_id"], 0)
        seen[row["correlation_id"]] = index + 1
        if index == len(waves):
            waves.append([])
        waves[index].append(row)
    return waves
