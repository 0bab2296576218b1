"""The outbox relay: publishes committed events in order, with publisher confirms, then marks them.

Woken by LISTEN/NOTIFY on `upsell_outbox` and by a polling fallback, so a lost notification or a
restart only delays an event. One relay publishes at a time (an advisory lock), which keeps the
events of a session in the order they were committed, also with several processes. A crash between
the confirm and the mark re-sends the event with the same id; consumers drop it by id.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import aio_pika
import asyncpg
import structlog
from aio_pika.abc import AbstractExchange, HeadersType

from service.metrics import Metrics

log = structlog.get_logger(__name__)

_RELAY_LOCK = 7_143_212
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

    def wake(self, *_: object) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Lets `run` return after the batch in hand: a batch cut off between its publishes and their
        mark would be published again at the next start."""
        self._stopping = True
        self._wake.set()

    async def publish_batch(self) -> int:
        """Publishes up to one batch; returns how many (0 also when another relay holds the lock)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("select pg_try_advisory_xact_lock($1)", _RELAY_LOCK):
                return 0
            rows = await conn.fetch(
                "select id, event_id, type, correlation_id, body, created_at, dead_letter_reason,"
                " dead_letter_detail from outbox where published_at is null order by id limit $1",
                self._batch_size,
            )
            for row in rows:
                reason = row["dead_letter_reason"]
                headers = (
                    None
                    if reason is None
                    else {"x-upsell-reason": reason, "x-upsell-detail": row["dead_letter_detail"]}
                )
                message = outbox_message(
                    row["event_id"], row["type"], row["correlation_id"], bytes(row["body"]), row["created_at"], headers
                )
                exchange = self._exchange if reason is None else self._dead_letter
                # Sequential: each publish returns after the broker's confirm, in commit order. Not
                # mandatory: an event type no worker has bound a queue for is dropped by the broker.
                await exchange.publish(message, routing_key=row["type"], mandatory=False)
                if reason is None:
                    self._metrics.events_published.labels(row["type"]).inc()
            if rows:
                await conn.execute(
                    "update outbox set published_at = now() where id = any($1::bigint[])",
                    [r["id"] for r in rows],
                )
            return len(rows)

    async def drain(self) -> int:
        """Publishes until the outbox is empty; used at shutdown."""
        total = 0
        while published := await self.publish_batch():
            total += published
        return total

    async def run(self) -> None:
        """Publishes forever; failures (broker or database away) are retried with backoff."""
        listener = asyncio.create_task(self._listen())
        backoff = 0.1
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    published = await self.publish_batch()
                    backoff = 0.1
                except Exception as exc:
                    # Broker or database away, or anything else: the relay must outlive it, and
                    # what was not marked published is sent again with the same ids.
                    log.warning("outbox_relay_retry", error=type(exc).__name__, detail=str(exc), backoff=backoff)
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

    async def _listen(self) -> None:
        """Keeps a LISTEN connection open, reconnecting when the database comes back."""
        while True:
            try:
                conn = await self._pool.acquire()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await asyncio.sleep(1.0)
                continue
            try:
                await conn.add_listener(CHANNEL, self.wake)
                while not conn.is_closed():  # noqa: ASYNC110 - asyncpg offers no closed event to await
                    await asyncio.sleep(1.0)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await conn.remove_listener(CHANNEL, self.wake)
                with contextlib.suppress(Exception):
                    await self._pool.release(conn)
