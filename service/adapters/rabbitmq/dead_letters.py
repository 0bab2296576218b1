"""The dead-letter queue as an operator works it: read it without taking, replay to `checkout`, drop.

Every command reads the queue with basic.get and holds what it read unacknowledged; what it does not
take (all of it, for a listing) goes back to the queue when its channel closes, also when the command
dies. A replay publishes a message to `checkout` with confirms and only then acknowledges it here, so a
command stopped at any point loses nothing: the one message in flight may be in both places, with its
event id, and the service's inbox keeps its effects to one.

The three ways into the queue leave three sets of headers: the consumer's refusal and the outbox's
(`x-upsell-reason`, `x-upsell-detail`, `x-upsell-dead-lettered-at`, `x-original-routing-key`) and the
broker's own past the delivery limit (`x-death`, `x-first-death-reason`). `describe` reads all three.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import msgspec
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from service.adapters.rabbitmq.dead_lettering import resent
from service.adapters.rabbitmq.topology import Topology

REPLAYS = "x-upsell-replays"
"""How many times the event was replayed from the dead-letter queue; kept across refusals."""

# What says why and when a message was refused: dropped from a replayed message, so that a new refusal
# is read as such and not as the old one.
_REFUSAL_HEADERS = frozenset(
    {
        "x-upsell-reason",
        "x-upsell-detail",
        "x-upsell-dead-lettered-at",
        "x-original-routing-key",
        "x-death",
        "x-first-death-reason",
        "x-first-death-queue",
        "x-first-death-exchange",
        "x-last-death-reason",
        "x-last-death-queue",
        "x-last-death-exchange",
        "x-delivery-count",
    }
)


class DeadLetterQueueMissing(Exception):
    """The broker (or its vhost) has no dead-letter queue: the service never declared its topology there."""


class NotRouted(Exception):
    """The broker routed a replayed event to no queue: nothing consumes `checkout` for its routing key."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    event_id: str | None
    """The envelope's id (what the inbox keys on), else the AMQP message id of a body that is no envelope."""
    type: str | None
    session: str | None
    reason: str
    detail: str
    dead_lettered_at: datetime | None
    routing_key: str
    replays: int


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    text = _text(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _envelope(body: bytes) -> tuple[str | None, str | None, str | None]:
    """The event id, type and session of a body, as far as it can be read (it may be why it was refused)."""
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None, None, None
    if not isinstance(decoded, dict):
        return None, None, None
    data = decoded.get("data")
    session = None
    if isinstance(data, dict):
        session = data.get("session") or data.get("id")
    return _text(decoded.get("id")), _text(decoded.get("type")), _text(session)


def describe(
    headers: Mapping[str, Any],
    body: bytes,
    *,
    message_id: str | None = None,
    type: str | None = None,
    correlation_id: str | None = None,
    routing_key: str | None = None,
    timestamp: datetime | None = None,
) -> DeadLetter:
    """What an operator needs to know about one dead-lettered message."""
    body_id, body_type, body_session = _envelope(body)
    deaths = headers.get("x-death")
    death: Mapping[str, Any] = deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}
    reason = _text(headers.get("x-upsell-reason")) or _text(headers.get("x-first-death-reason"))
    reason = reason or _text(death.get("reason")) or "unknown"
    detail = _text(headers.get("x-upsell-detail"))
    if detail is None and death:
        detail = f"dead-lettered by the broker from {_text(death.get('queue'))} ({reason})"
    original_keys = death.get("routing-keys")
    original = _text(headers.get("x-original-routing-key"))
    if original is None and isinstance(original_keys, list) and original_keys:
        original = _text(original_keys[0])
    event_type = type or body_type
    replays = headers.get(REPLAYS)
    return DeadLetter(
        event_id=body_id or message_id,
        type=event_type,
        session=correlation_id or body_session,
        reason=reason,
        detail=detail or "",
        dead_lettered_at=_instant(headers.get("x-upsell-dead-lettered-at")) or _instant(death.get("time")) or timestamp,
        routing_key=original or routing_key or event_type or "",
        replays=replays if isinstance(replays, int) else 0,
    )


def described(message: AbstractIncomingMessage) -> DeadLetter:
    return describe(
        dict(message.headers or {}),
        message.body,
        message_id=message.message_id,
        type=message.type,
        correlation_id=message.correlation_id,
        routing_key=message.routing_key,
        timestamp=message.timestamp,
    )


def replayed(message: AbstractIncomingMessage, letter: DeadLetter) -> aio_pika.Message:
    """The event as it was first published: its body, id, type and session, without the refusal's headers."""
    headers = {key: value for key, value in (message.headers or {}).items() if key not in _REFUSAL_HEADERS}
    headers[REPLAYS] = letter.replays + 1
    return resent(message, headers, message.timestamp)


Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a replay or drop did: the letters it took (or would take), and how many it read."""

    taken: list[DeadLetter]
    read: int


class DeadLetterQueue:
    def __init__(self, connection: AbstractConnection, topology: Topology) -> None:
        self._connection = connection
        self._topology = topology

    @contextlib.asynccontextmanager
    async def _held(self) -> AsyncIterator[tuple[AbstractChannel, AsyncIterator[AbstractIncomingMessage], int]]:
        """A channel and the queue's messages as they stand now, read one by one and held unacknowledged
        until the channel closes. Messages that arrive during the read are not read: a replayed event
        refused again is not replayed twice by one command."""
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            try:
                queue = await channel.declare_queue(self._topology.dead_letter_queue, passive=True)
            except aio_pika.exceptions.ChannelClosed as missing:
                raise DeadLetterQueueMissing(self._topology.dead_letter_queue) from missing
            count = int(queue.declaration_result.message_count or 0)

            async def messages() -> AsyncIterator[AbstractIncomingMessage]:
                for _ in range(count):
                    message = await queue.get(no_ack=False, fail=False)
                    if message is None:
                        return
                    yield message

            yield channel, messages(), count
        finally:
            if not channel.is_closed:
                await channel.close()

    async def list(self, reason: str | None = None, limit: int | None = None) -> list[DeadLetter]:
        """The letters in queue order (oldest first), taking none."""
        found: list[DeadLetter] = []
        async with self._held() as (_, messages, _count):
            async for message in messages:
                letter = described(message)
                if reason is None or letter.reason == reason:
                    found.append(letter)
                    if limit is not None and len(found) >= limit:
                        break
        return found

    async def replay(
        self, select: Callable[[DeadLetter], bool], *, dry_run: bool = False, progress: Progress | None = None
    ) -> Outcome:
        """Publishes each selected letter to `checkout` (confirmed, and routed to a queue), then removes it."""
        taken: list[DeadLetter] = []
        read = 0
        async with self._held() as (channel, messages, count):
            inbound = await channel.get_exchange(self._topology.inbound_exchange)
            async for message in messages:
                read += 1
                letter = described(message)
                if not select(letter):
                    continue
                if not dry_run:
                    key = letter.routing_key
                    try:
                        await inbound.publish(replayed(message, letter), routing_key=key, mandatory=True)
                    except aio_pika.exceptions.DeliveryError as returned:
                        raise NotRouted(f"{letter.event_id}: no queue is bound for {key!r}") from returned
                    await message.ack()
                taken.append(letter)
                if progress is not None:
                    progress(len(taken), count)
        return Outcome(taken, read)

    async def drop(self, event_ids: set[str]) -> Outcome:
        """Removes the letters with these event ids; every other stays."""
        taken: list[DeadLetter] = []
        read = 0
        async with self._held() as (_, messages, _count):
            async for message in messages:
                read += 1
                letter = described(message)
                if letter.event_id in event_ids:
                    await message.ack()
                    taken.append(letter)
                    if len(taken) == len(event_ids):
                        break
        return Outcome(taken, read)
