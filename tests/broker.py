"""A test-side RabbitMQ peer: publishes checkout events and collects what the service sends out."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aio_pika
import msgspec
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from contracts.events import OutboundEvent
from contracts.sessions import SessionView
from service.adapters.rabbitmq.topology import Topology

_outbound = msgspec.json.Decoder(OutboundEvent)


def session_data(body: bytes) -> SessionView:
    """The session an outbound checkout event carries (failing for any other event)."""
    data = _outbound.decode(body).data
    assert isinstance(data, SessionView), f"not a session event: {type(data).__name__}"
    return data


def envelope(event_type: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    return msgspec.json.encode(
        {
            "id": event_id or str(uuid.uuid4()),
            "type": event_type,
            "version": 1,
            "created": datetime.now(UTC),
            "data": data,
        }
    )


class Peer:
    def __init__(self, channel: AbstractChannel, events: AbstractQueue, topology: Topology) -> None:
        self.channel = channel
        self.events = events
        self.topology = topology

    async def publish(self, body: bytes, routing_key: str, **properties: Any) -> None:
        exchange = await self.channel.get_exchange(self.topology.inbound_exchange)
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, **properties)
        await exchange.publish(message, routing_key=routing_key)

    async def send(self, event_type: str, data: dict[str, Any], event_id: str | None = None) -> None:
        """As publishers do: the session id as `correlation_id`, which picks the event's partition."""
        session = data.get("id") if event_type == "checkout.session.created" else data.get("session")
        await self.publish(
            envelope(event_type, data, event_id),
            event_type,
            correlation_id=session if isinstance(session, str) else None,
        )

    async def next_event(self, timeout: float = 15.0) -> AbstractIncomingMessage:
        return await _get(self.events, timeout)

    async def no_more_events(self, wait: float = 1.0) -> bool:
        await asyncio.sleep(wait)
        return await self.events.get(no_ack=True, fail=False) is None

    async def dead_letter(self, timeout: float = 15.0) -> AbstractIncomingMessage:
        queue = await self.channel.get_queue(self.topology.dead_letter_queue)
        return await _get(queue, timeout)


async def _get(queue: AbstractQueue, timeout: float) -> AbstractIncomingMessage:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        message = await queue.get(no_ack=True, fail=False)
        if message is not None:
            return message
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"nothing arrived on {queue.name} within {timeout} s")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def peer(amqp_url: str, topology: Topology | None = None) -> AsyncIterator[Peer]:
    """Connects to the vhost, declares the topology, and binds a queue of its own to the outbound exchange."""
    from service.adapters.rabbitmq.topology import declare

    topology = topology or Topology()
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        declared = await declare(channel, topology)
        events = await channel.declare_queue(exclusive=True)
        await events.bind(declared.outbound, routing_key="#")
        yield Peer(channel, events, topology)
    finally:
        await connection.close()
