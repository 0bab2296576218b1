"""The inbound consumer: decode, apply in one transaction, ack after commit, dead-letter bad input.

Bad input (undecodable, unknown type, schema-invalid, refused by a rule) is published to the
dead-letter exchange with its reason in the `x-upsell-reason` header, then acked: it never blocks the
queue and is never lost. While the database is away a message is held, not acked, and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

import aio_pika
import msgspec
import structlog
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage
from aio_pika.exceptions import ChannelInvalidStateError
from aiormq.abc import AbstractChannel

from contracts.events import INBOUND_TYPES, InboundEvent
from service.adapters.postgres.errors import TRANSIENT_ERRORS
from service.app.errors import InvalidInput, UseCaseError
from service.app.inbound import handle_event, inbound_decoder, read_ahead, session_of
from service.app.ports import UnitOfWorkFactory
from service.entrypoints.batching import Batcher
from service.metrics import Metrics

log = structlog.get_logger(__name__)

_generic = msgspec.json.Decoder()


def utcnow() -> datetime:
    return datetime.now(UTC)


def classify_invalid(body: bytes, error: msgspec.ValidationError) -> tuple[str, str]:
    """Tells an unknown event type from a schema-invalid one, and a body that is not JSON at all (the
    typed decoder can fail on the shape, `[1, 2`, before it reaches the end) (only on the error path)."""
    try:
        raw = _generic.decode(body)
    except msgspec.DecodeError as malformed:
        return "malformed_json", str(malformed)
    kind = raw.get("type") if isinstance(raw, dict) else None
    if isinstance(kind, str) and kind not in INBOUND_TYPES:
        return "unknown_event_type", f"unknown event type {kind!r}"
    return "invalid_event", str(error)


MAX_ATTEMPTS = 5
"""Deliveries of a message that keeps failing unexpectedly before it is dead-lettered with its error."""


class SessionLocks:
    """First-come-first-served locks per session id, dropped when nobody holds or awaits them.

    Each delivery runs in its own task, started in arrival order; taking the session's lock before the
    task's first suspension keeps the events of one session in the order they were delivered.
    """

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


def _channel_of(message: AbstractIncomingMessage) -> AbstractChannel | None:
    """The message's channel, None once it is closed (its messages are then delivered again)."""
    try:
        return message.channel
    except ChannelInvalidStateError:
        return None


def delivery_count(message: AbstractIncomingMessage) -> int:
    """How often the broker delivered this message before (quorum queues count it in a header)."""
    count = (message.headers or {}).get("x-delivery-count", 0)
    return count if isinstance(count, int) else 0


class Delivery(NamedTuple):
    event: InboundEvent
    message: AbstractIncomingMessage


class Acks:
    """Acks the messages of a batch with one frame when no earlier message of their channel is still
    open (a `multiple` ack of the batch's highest delivery tag), else each on its own, so that a message
    held back (the database away, a retry) never holds up the acks of those after it.

    Every settlement goes through here: a `multiple` ack must never reach a message settled already."""

    def __init__(self) -> None:
        self._open: dict[AbstractChannel, set[int]] = {}

    def opened(self, message: AbstractIncomingMessage) -> None:
        if len(self._open) > 1:
            # Channels gone with a dropped connection: their messages are delivered again on the new one.
            self._open = {channel: tags for channel, tags in self._open.items() if not channel.is_closed}
        self._open.setdefault(message.channel, set()).add(message.delivery_tag or 0)

    async def ack(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        """Acks the messages still open on an open channel (once: a settled one is skipped); those of a
        closed channel are delivered again. Raises the first failure after trying every channel."""
        by_channel: dict[AbstractChannel, list[AbstractIncomingMessage]] = {}
        for message in messages:
            channel = _channel_of(message)
            if channel is not None and (message.delivery_tag or 0) in self._open.get(channel, ()):
                by_channel.setdefault(channel, []).append(message)
        failed: Exception | None = None
        for channel, group in by_channel.items():
            tags = {m.delivery_tag or 0 for m in group}
            still_open = self._open.get(channel, set())
            last = max(group, key=lambda m: m.delivery_tag or 0)
            try:
                if len(group) > 1 and not any(tag < (last.delivery_tag or 0) for tag in still_open - tags):
                    await last.ack(multiple=True)
                else:
                    for message in group:
                        await message.ack()
            except Exception as error:
                failed = failed or error
            finally:
                # Only now: the frames are queued in order, so a later `multiple` ack never overtakes
                # them. Also when one failed: these messages are done with (committed, or dead-lettered),
                # and a later `multiple` ack may take them along.
                still_open -= tags
        if failed is not None:
            raise failed

    async def nack(self, message: AbstractIncomingMessage) -> None:
        """Requeues a message still open (a settled one is skipped)."""
        channel = _channel_of(message)
        still_open = self._open.get(channel, set()) if channel is not None else set()
        tag = message.delivery_tag or 0
        if tag in still_open:
            await message.nack(requeue=True)
            still_open.discard(tag)


MAX_BATCH = 256
"""Events written in one transaction at most."""
BATCH_LINGER = 0.005
"""Seconds the first event of a batch waits for others, once events arrive faster than batches end."""


class CheckoutConsumer:
    """Events are applied in batches: one transaction for the events that arrived together, then each
    message is acked. A batch never holds two events of one session (the session lock is held until the
    event's batch has committed). When a batch fails, nothing of it was written and each of its events is
    applied alone, so that one bad event is dead-lettered and the others go through."""

    def __init__(
        self,
        new_uow: UnitOfWorkFactory,
        dead_letter: AbstractExchange,
        metrics: Metrics,
        clock: Callable[[], datetime] = utcnow,
        max_batch: int = MAX_BATCH,
        batch_linger: float = BATCH_LINGER,
    ) -> None:
        self._new_uow = new_uow
        self._dead_letter = dead_letter
        self._metrics = metrics
        self._clock = clock
        self._sessions = SessionLocks()
        self._batches = Batcher(self._apply_batch, max_batch, batch_linger)
        self._acks = Acks()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._by_partition: dict[int | None, int] = {}
        self._revoked: set[int] = set()
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
        # The AMQP type is the sender's; only known types become metric labels.
        event_type = message.type if message.type in INBOUND_TYPES else "unknown"
        # Each delivery runs in its own task, so what is bound here stays with this message's lines.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(message_id=message.message_id, event_type=event_type)
        try:
            try:
                outcome, event_type = await self._process(message, event_type, partition)
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

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def settled(self, partitions: Collection[int], within: float) -> None:
        """Waits (for `within` seconds at most) until no message of these partitions is in hand."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while any(p in self._by_partition for p in partitions):
                    self._one_done.clear()
                    await self._one_done.wait()

    def revoke(self, partitions: Iterable[int]) -> None:
        """These partitions are another replica's now: what of them waits for the database goes back to
        the queue, for their new owner, rather than be written after that owner's events."""
        self._revoked.update(partitions)

    def restore(self, partitions: Iterable[int]) -> None:
        self._revoked.difference_update(partitions)

    async def _process(
        self, message: AbstractIncomingMessage, amqp_type: str, partition: int | None
    ) -> tuple[str, str]:
        """Returns the outcome and the event type (from the envelope when it decodes)."""
        try:
            event = inbound_decoder.decode(message.body)
        except msgspec.ValidationError as invalid:
            return await self._reject(message, *classify_invalid(message.body, invalid)), amqp_type
        except msgspec.DecodeError as malformed:
            return await self._reject(message, "malformed_json", str(malformed)), amqp_type
        event_type = str(event.__struct_config__.tag)
        structlog.contextvars.bind_contextvars(event_id=event.id, event_type=event_type, session_id=session_of(event))
        async with self._sessions.hold(session_of(event)):
            return await self._apply(message, event, partition), event_type

    async def _apply(self, message: AbstractIncomingMessage, event: InboundEvent, partition: int | None) -> str:
        """Applies the event with those that arrived with it, then acks."""
        try:
            return await self._batches.submit(Delivery(event, message))
        except Exception:
            return await self._apply_alone(message, event, partition)

    async def _apply_batch(self, deliveries: Sequence[Delivery]) -> list[str]:
        # Those whose channel is gone (and their tasks with it) are left: the broker delivers them again.
        live = [_channel_of(d.message) is not None for d in deliveries]
        outcomes = iter(await self._apply_live([d for d, ok in zip(deliveries, live, strict=True) if ok]))
        return [next(outcomes) if ok else "requeued" for ok in live]

    async def _apply_live(self, deliveries: Sequence[Delivery]) -> list[str]:
        if not deliveries:
            return []
        try:
            async with self._new_uow() as uow:
                prepared = await read_ahead(uow, [d.event for d in deliveries])
                now = self._clock()
                outcomes: list[str] = []
                for delivery in deliveries:
                    # This task serves many messages: each one's log lines carry its own ids.
                    structlog.contextvars.bind_contextvars(
                        message_id=delivery.message.message_id,
                        event_id=delivery.event.id,
                        event_type=delivery.event.__struct_config__.tag,
                        session_id=session_of(delivery.event),
                    )
                    outcomes.append(await handle_event(uow, delivery.event, delivery.message.body, now, prepared))
                structlog.contextvars.clear_contextvars()
        except Exception as failed:
            structlog.contextvars.clear_contextvars()
            if len(deliveries) > 1:
                log.info("batch_applied_one_by_one", events=len(deliveries), error=type(failed).__name__)
            raise
        await self._ack_committed([d.message for d in deliveries])
        return outcomes

    async def _ack_committed(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        """Acks messages whose effects are committed (or that were dead-lettered). An ack that fails is
        not retried: the message comes back when its channel closes, and the inbox drops it."""
        try:
            await self._acks.ack(messages)
        except Exception as lost:
            log.warning("ack_failed", messages=len(messages), error=type(lost).__name__)

    async def _apply_alone(self, message: AbstractIncomingMessage, event: InboundEvent, partition: int | None) -> str:
        """Applies and acks; holds the message (not requeued) while the database is away."""
        backoff = 0.05
        while True:
            try:
                async with self._new_uow() as uow:
                    outcome = await handle_event(uow, event, message.body, self._clock())
                await self._ack_committed([message])
                return outcome
            except InvalidInput as invalid:
                first = invalid.violations[0]
                detail = "; ".join(f"{v.code} at {v.field}: {v.message}" for v in invalid.violations)
                return await self._reject(message, first.code, detail)
            except UseCaseError as refused:
                return await self._reject(message, refused.code, refused.detail)
            except TRANSIENT_ERRORS as away:
                if self.stopping or partition in self._revoked:
                    await self._acks.nack(message)
                    return "requeued"
                log.warning("database_unavailable", error=type(away).__name__, backoff=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _reject(self, message: AbstractIncomingMessage, reason: str, detail: str) -> str:
        """Publishes the message to the dead-letter exchange with its reason (confirmed), then acks."""
        headers = dict(message.headers or {})
        headers.update(
            {
                "x-upsell-reason": reason,
                "x-upsell-detail": detail[:1000],
                "x-upsell-dead-lettered-at": utcnow().isoformat(),
                "x-original-routing-key": message.routing_key,
            }
        )
        dead = aio_pika.Message(
            message.body,
            headers=headers,
            message_id=message.message_id,
            type=message.type,
            correlation_id=message.correlation_id,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            timestamp=message.timestamp or utcnow(),
        )
        await self._dead_letter.publish(dead, routing_key=message.routing_key or "")
        await self._ack_committed([message])
        self._metrics.dead_letters.labels(reason).inc()
        log.warning("message_dead_lettered", reason=reason, detail=detail[:300])
        return "dead_lettered"
