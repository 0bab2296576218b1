"""The pipeline's baseline: a bare aio-pika relay with the service's durability and no database or logic.

Consumes the partition queues (`upsell.checkout.0` ...) with manual acks and, for each message, publishes a persistent
message to the `upsell` exchange with a publisher confirm, then acks. `python bench/relay_baseline.py URL`
"""

from __future__ import annotations

import asyncio
import signal
import sys

import aio_pika
import uvloop
from aio_pika.abc import AbstractIncomingMessage

from service.adapters.rabbitmq.topology import Topology, declare

PREFETCH = 64


async def main(url: str) -> None:
    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=PREFETCH)
    declared = await declare(channel, Topology())

    async def relay(message: AbstractIncomingMessage) -> None:
        out = aio_pika.Message(
            message.body,
            message_id=message.message_id,
            type="checkout.session.upsell_evaluated",
            correlation_id=message.correlation_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await declared.outbound.publish(out, routing_key="checkout.session.upsell_evaluated")
        await message.ack()

    for queue in declared.partitions:
        await queue.consume(relay)
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await connection.close()


if __name__ == "__main__":
    # The event loop the service runs on, so that the two are compared like for like.
    uvloop.install()
    asyncio.run(main(sys.argv[1]))
