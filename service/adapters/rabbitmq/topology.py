"""The broker topology the service declares at start-up (also in deploy/rabbitmq/definitions.json).

Inbound events reach `checkout` (topic); behind it a consistent-hash exchange spreads them over the
partition queues by their `correlation_id`, the session id, so that the events of one session always
land in one queue, which one replica consumes at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aiormq.abc import FieldTable

from service.domain.partitions import PARTITIONS

log = structlog.get_logger(__name__)

DELIVERY_LIMIT = 20
"""Redeliveries before the broker dead-letters a message that keeps failing (a bug, not bad input)."""
HASH_EXCHANGE_TYPE = "x-consistent-hash"
PLUGIN = "rabbitmq_consistent_hash_exchange"


class TopologyMismatch(Exception):
    """The broker holds a topology this replica cannot work with; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Topology:
    inbound_exchange: str = "checkout"
    outbound_exchange: str = "upsell"
    dead_letter_exchange: str = "upsell.dead-letter"
    partition_exchange: str = "upsell.checkout.partitions"
    queue_prefix: str = "upsell.checkout"
    dead_letter_queue: str = "upsell.checkout.dead-letter"
    binding: str = "checkout.session.*"
    partitions: int = PARTITIONS

    def __post_init__(self) -> None:
        if not 1 <= self.partitions <= 1024:
            raise ValueError(f"the number of partitions must be from 1 to 1024, not {self.partitions}")

    def partition_queue(self, partition: int) -> str:
        return f"{self.queue_prefix}.{partition}"

    @property
    def partition_queues(self) -> tuple[str, ...]:
        return tuple(self.partition_queue(p) for p in range(self.partitions))

    def partition_exchange_arguments(self) -> FieldTable:
        # Publishers set `correlation_id` to the session id; a message without one hashes as the
        # empty value, so all such messages land in one partition (and are still taken).
        return {"hash-property": "correlation_id"}

    def queue_arguments(self) -> FieldTable:
        return {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-delivery-limit": DELIVERY_LIMIT,
            # The broker's own dead-lettering (past the delivery limit) keeps the message until the
            # dead-letter queue confirms it; the default, at-most-once, may drop it.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
            # The replica holding the partition's lease consumes it; should two subscribe during a
            # handover, the broker still delivers to one of them only.
            "x-single-active-consumer": True,
        }


@dataclass(frozen=True, slots=True)
class Declared:
    inbound: AbstractExchange
    outbound: AbstractExchange
    dead_letter: AbstractExchange
    partitions: tuple[AbstractQueue, ...]


async def declare(channel: AbstractChannel, topology: Topology) -> Declared:
    """Declares exchanges and queues idempotently; equal arguments make a redeclare a no-op.

    Raises TopologyMismatch when the consistent-hash plugin is off or the broker has more partition
    queues than this replica's setting (changing the number is an operation: docs/scaling.md).
    """
    inbound = await channel.declare_exchange(topology.inbound_exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    outbound = await channel.declare_exchange(topology.outbound_exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    dead_letter = await channel.declare_exchange(
        topology.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True
    )
    dead_letter_queue = await channel.declare_queue(
        topology.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead_letter_queue.bind(dead_letter, routing_key="")
    await _refuse_more_partitions(channel, topology)
    spread = await _declare_hash_exchange(channel, topology)
    queues = []
    for name in topology.partition_queues:
        queue = await channel.declare_queue(name, durable=True, arguments=topology.queue_arguments())
        # The binding key is the queue's weight on the hash ring: every partition gets an equal share.
        await queue.bind(spread, routing_key="1")
        queues.append(queue)
    await spread.bind(inbound, routing_key=topology.binding)
    await _unbind_single_queue(channel, topology)
    return Declared(inbound, outbound, dead_letter, tuple(queues))


async def _declare_hash_exchange(channel: AbstractChannel, topology: Topology) -> AbstractExchange:
    try:
        return await channel.declare_exchange(
            topology.partition_exchange,
            HASH_EXCHANGE_TYPE,
            durable=True,
            arguments=topology.partition_exchange_arguments(),
        )
    except aiormq.exceptions.ChannelClosed as closed:
        if "invalid exchange type" in str(closed) or "COMMAND_INVALID" in str(closed):
            raise TopologyMismatch(
                f"the broker has no exchange type {HASH_EXCHANGE_TYPE!r}: enable it with"
                f" `rabbitmq-plugins enable {PLUGIN}` (deploy/rabbitmq enables it)"
            ) from None
        raise


async def _refuse_more_partitions(channel: AbstractChannel, topology: Topology) -> None:
    """A queue past this replica's last partition means the running topology has more partitions: its
    messages would never be consumed. Asked on a plain channel of its own, which a missing queue closes
    (a robust one would be reopened)."""
    underlay = await channel.get_underlay_channel()
    probe = await underlay.connection.channel()
    try:
        await probe.queue_declare(topology.partition_queue(topology.partitions), passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return
    finally:
        if not probe.is_closed:
            await probe.close()
    raise TopologyMismatch(
        f"the broker has the queue {topology.partition_queue(topology.partitions)!r}, so its topology has more"
        f" than UPSELL_PARTITIONS={topology.partitions} partitions; change the number as docs/scaling.md says"
    )


async def _unbind_single_queue(channel: AbstractChannel, topology: Topology) -> None:
    """The queue of the versions before partitions, `upsell.checkout`, is unbound from `checkout`: its
    events now reach the partitions, and would be queued twice. What it still holds is consumed by the
    replicas of the earlier version until they stop (docs/scaling.md, "Upgrading to partitions")."""
    underlay = await channel.get_underlay_channel()
    probe = await underlay.connection.channel()
    try:
        held = await probe.queue_declare(topology.queue_prefix, passive=True)
        await probe.queue_unbind(topology.queue_prefix, topology.inbound_exchange, routing_key=topology.binding)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return
    finally:
        if not probe.is_closed:
            await probe.close()
    log.warning(
        "single_queue_unbound", queue=topology.queue_prefix, messages=held.message_count, consumers=held.consumer_count
    )


async def queue_stats(channel: AbstractChannel, name: str) -> tuple[int, int]:
    """Ready messages and consumers of a queue, by a passive declare (no management plugin needed)."""
    # On the AMQP channel itself: a robust channel answers a passive declare of a queue it knows from its
    # own record, with the counts of the first declare, and the gauges would never move.
    underlay = await channel.get_underlay_channel()
    result = await underlay.queue_declare(name, passive=True)
    return int(result.message_count or 0), int(result.consumer_count or 0)
