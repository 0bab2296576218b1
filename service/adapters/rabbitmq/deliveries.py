"""The broker side of the inbound path: deliveries, batches, acks, retries and refusals.

A message is decoded by the handler; one it refuses goes to the dead-letter exchange with its reason
(confirmed), then is acked, so it never blocks the queue and is never lost. The others are applied in
batches (one transaction for what arrived together) and acked only once their batch has committed; a
batch that fails is applied event by event, so that one bad event is refused and the others go through.
While the database is away a message is held, not acked, and retried. The events of one session keep
their order: a session's lock is taken before the delivery's first suspension and held until its event
is committed, so a batch never holds two events of one session.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

import structlog
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from service.adapters.rabbitmq.acks import Acks, channel_of
from service.adapters.rabbitmq.batching import Batcher
from service.adapters.rabbitmq.dead_lettering import refusal_headers, resent
from service.metrics import Metrics

log = structlog.get_logger(__name__)

E = TypeVar("E")

MAX_ATTEMPTS = 5
"""Deliveries of a message that keeps failing unexpectedly before it is dead-lettered with its error."""
MAX_BATCH = 256
"""Events written in one transaction at most."""
BATCH_LINGER = 0.005
"""Seconds the first event of a batch waits for others, once events arrive faster than batches end."""


class Refused(Exception):
    """The message is bad input: it goes to the dead-letter queue with this reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Delivery(Generic[E]):
    event: E
    message: AbstractIncomingMessage


class Handler(Protocol[E]):
    """What the entry point does with messages: decode, apply (several in one transaction, or one)."""

    def decode(self, body: bytes) -> E:
        """The event, or Refused."""
        ...

    def key(self, event: E) -> str:
        """What orders events: the session they are about."""
        ...

    def kind(self, event: E) -> str: ...

    async def apply_batch(self, deliveries: Sequence[Delivery[E]]) -> list[str]:
        """Applies the events in one transaction and returns their outcomes; raises when it fails as a whole."""
        ...

    async def apply_one(self, delivery: Delivery[E]) -> str:
        """Applies one event in a transaction of its own; raises Refused for bad input."""
        ...


class SessionLocks:
    """First-come-first-served locks per key, dropped when nobody holds or awaits them."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]


def delivery_count(message: AbstractIncomingMessage) -> int:
    """How often the broker delivered this message before (quorum queues count it in a header)."""
    count = (message.headers or {}).get("x-delivery-count", 0)
    return count if isinstance(count, int) else 0


class Deliveries(Generic[E]):
    """Each delivery runs in its own task (aio-pika's), started in arrival order; `partition` is the
    queue's, so that a partition given away can wait for its messages in hand."""

    def __init__(
        self,
        handler: Handler[E],
        dead_letter: AbstractExchange,
        metrics: Metrics,
        transient: tuple[type[BaseException], ...],
        max_batch: int = MAX_BATCH,
        batch_linger: float = BATCH_LINGER,
    ) -> None:
        self._handler = handler
        self._dead_letter = dead_letter
        self._metrics = metrics
        self._transient = transient
        self._sessions = SessionLocks()
        self._batches: Batcher[Delivery[E], str] = Batcher(self._apply_batch, max_batch, batch_linger)
        self._acks = Acks()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._by_partition: dict[int | None, int] = {}
        self._revoked: set[int] = set()
        self._fenced: set[int] = set()
        self._decided = asyncio.Event()
        self._one_done = asyncio.Event()
        self.stopping = False

    async def on_message(self, message: AbstractIncomingMessage, partition: int | None = None) -> None:
        started = time.perf_counter()
        self._acks.opened(message)
        self._in_flight += 1
        self._by_partition[partition] = self._by_partition.get(partition, 0) + 1
        self._idle.clear()
        if not message.correlation_id:
            self._metrics.uncorrelated.inc()
        # The AMQP type is the sender's; only a decoded event's type becomes a metric label.
        event_type = "unknown"
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(message_id=message.message_id)
        try:
            try:
                outcome, event_type = await self._take(message, partition)
            except Exception as error:
                outcome = await self._failed(message, error)
            log.info("message_handled", outcome=outcome, ms=round((time.perf_counter() - started) * 1000, 2))
        finally:
            self._in_flight -= 1
            self._by_partition[partition] -= 1
            if not self._by_partition[partition]:
                del self._by_partition[partition]
            self._one_done.set()
            if self._in_flight == 0:
                self._idle.set()
        self._metrics.messages_consumed.labels(event_type, outcome).inc()
        self._metrics.processing_seconds.labels(event_type).observe(time.perf_counter() - started)

    async def _take(self, message: AbstractIncomingMessage, partition: int | None) -> tuple[str, str]:
        """The outcome and the event's type ("unknown" when it does not decode)."""
        try:
            event = self._handler.decode(message.body)
        except Refused as refused:
            return await self._reject(message, refused.reason, refused.detail), "unknown"
        delivery = Delivery(event, message)
        async with self._sessions.hold(self._handler.key(event)):
            try:
                outcome = await self._batches.submit(delivery)
            except Exception:
                outcome = await self._apply_alone(delivery, partition)
        return outcome, self._handler.kind(event)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def settled(self, partitions: Collection[int], within: float) -> None:
        """Waits (for `within` seconds at most) until no message of these partitions is in hand."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while any(p in self._by_partition for p in partitions):
                    self._one_done.clear()
                    await self._one_done.wait()

    def fence(self, partitions: Iterable[int]) -> None:
        """Whether these partitions are still this replica's is not known (their leases could not be
        renewed): what of them waits for the database waits for the verdict too, `restore` or `revoke`."""
        self._fenced.update(partitions)

    def revoke(self, partitions: Iterable[int]) -> None:
        """These partitions are another replica's now: what of them waits for the database goes back to
        the queue, for their new owner, rather than be written after that owner's events."""
        self._revoked.update(partitions)
        self._fenced.difference_update(partitions)
        self._decided.set()

    def restore(self, partitions: Iterable[int]) -> None:
        self._revoked.difference_update(partitions)
        self._fenced.difference_update(partitions)
        self._decided.set()

    async def _verdict(self, partition: int | None) -> None:
        """Waits while the partition is fenced (the stop does not wait: it requeues)."""
        while partition in self._fenced and not self.stopping:
            self._decided.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self._decided.wait()

    async def _apply_batch(self, deliveries: Sequence[Delivery[E]]) -> list[str]:
        # Those whose channel is gone (and their tasks with it) are left: the broker delivers them again.
        live = [channel_of(d.message) is not None for d in deliveries]
        kept = [d for d, ok in zip(deliveries, live, strict=True) if ok]
        outcomes = iter(await self._handler.apply_batch(kept) if kept else [])
        if kept:
            if len(kept) > 1:
                log.debug("batch_applied", events=len(kept))
            await self._ack_committed([d.message for d in kept])
        return [next(outcomes) if ok else "requeued" for ok in live]

    async def _apply_alone(self, delivery: Delivery[E], partition: int | None) -> str:
        """Applies and acks; holds the message (not requeued) while the database is away."""
        backoff = 0.05
        while True:
            if partition in self._revoked:
                await self._acks.nack(delivery.message)
                return "requeued"
            try:
                outcome = await self._handler.apply_one(delivery)
                await self._ack_committed([delivery.message])
                return outcome
            except Refused as refused:
                return await self._reject(delivery.message, refused.reason, refused.detail)
            except self._transient as away:
                if self.stopping:
                    await self._acks.nack(delivery.message)
                    return "requeued"
                log.warning("database_unavailable", error=type(away).__name__, backoff=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                await self._verdict(partition)

    async def _failed(self, message: AbstractIncomingMessage, error: Exception) -> str:
        """A bug or a broker fault: retried a few times, then dead-lettered with the error as reason."""
        log.exception("message_failed", attempt=delivery_count(message) + 1)
        try:
            if delivery_count(message) + 1 >= MAX_ATTEMPTS:
                return await self._reject(message, "processing_failed", f"{type(error).__name__}: {error}")
            await asyncio.sleep(0.5)
            await self._acks.nack(message)
        except Exception:
            # The dead-letter publish failed, say: back to the queue (the broker's delivery limit is the
            # backstop). When the channel is gone the broker delivers it again anyway.
            with contextlib.suppress(Exception):
                await self._acks.nack(message)
        return "requeued"

    async def _ack_committed(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        """Acks messages whose effects are committed (or that were dead-lettered). An ack that fails is
        not retried: the message comes back when its channel closes, and the inbox drops it."""
        try:
            await self._acks.ack(messages)
        except Exception as lost:
            log.warning("ack_failed", messages=len(messages), error=type(lost).__name__)

    async def _reject(self, message: AbstractIncomingMessage, reason: str, detail: str) -> str:
        """Publishes the message to the dead-letter exchange with its reason (confirmed), then acks."""
        headers = {**(message.headers or {}), **refusal_headers(reason, detail, message.routing_key)}
        dead = resent(message, headers, message.timestamp or datetime.now(UTC))
        await self._dead_letter.publish(dead, routing_key=message.routing_key or "")
        await self._ack_committed([message])
        self._metrics.dead_letters.labels(reason).inc()
        log.warning("message_dead_lettered", reason=reason, detail=detail[:300])
        return "dead_lettered"
