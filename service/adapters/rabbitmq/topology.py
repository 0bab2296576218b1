"""The broker topology the service declares at start-up (also in deploy/rabbitmq/definitions.json)."""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aiormq.abc import FieldTable

DELIVERY_LIMIT = 20
"""Redeliveries before the broker dead-letters a message that keeps failing (a bug, not bad input)."""


@dataclass(frozen=True, slots=True)
class Topology:
    inbound_exchange: str = "checkout"
    outbound_exchange: str = "upsell"
    dead_letter_exchange: str = "upsell.dead-letter"
    queue: str = "upsell.checkout"
    dead_letter_queue: str = "upsell.checkout.dead-letter"
    binding: str = "checkout.session.*"

    def queue_arguments(self) -> FieldTable:
        return {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-delivery-limit": DELIVERY_LIMIT,
            # The broker's own dead-lettering (past the delivery limit) keeps the message until the
            # dead-letter queue confirms it; the default, at-most-once, may drop it.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
            # One replica consumes at a time and the others stand by: the events of a session keep
            # the order the broker holds them in, whatever the number of replicas.
            "x-single-active-consumer": True,
        }


@dataclass(frozen=True, slots=True)
class Declared:
    inbound: AbstractExchange
    outbound: AbstractExchange
    dead_letter: AbstractExchange
    queue: AbstractQueue


async def declare(channel: AbstractChannel, topology: Topology) -> Declared:
    """Declares exchanges and queues idempotently; equal arguments make a redeclare a no-op."""
    inbound = await channel.declare_exchange(topology.inbound_exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    outbound = await channel.declare_exchange(topology.outbound_exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    dead_letter = await channel.declare_exchange(
        topology.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True
    )
    dead_letter_queue = await channel.declare_queue(
        topology.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead_letter_queue.bind(dead_letter, routing_key="")
    queue = await channel.declare_queue(topology.queue, durable=True, arguments=topology.queue_arguments())
    await queue.bind(inbound, routing_key=topology.binding)
    return Declared(inbound, outbound, dead_letter, queue)


async def queue_stats(channel: AbstractChannel, name: str) -> tuple[int, int]:
    """Ready messages and consumers of a queue, by a passive declare (no management plugin needed)."""
    # On the AMQP channel itself: a robust channel answers a passive declare of a queue it knows from its
    # own record, with the counts of the first declare, and the gauges would never move.
    underlay = await channel.get_underlay_channel()
    result = await underlay.queue_declare(name, passive=True)
    return int(result.message_count or 0), int(result.consumer_count or 0)
