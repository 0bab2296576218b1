"""The partition queues this replica consumes: one consumer per owned partition, each message handed
on with its partition number."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

OnMessage = Callable[[AbstractIncomingMessage, int], Awaitable[None]]


class Subscriptions:
    def __init__(self, queues: Sequence[AbstractQueue], on_message: OnMessage) -> None:
        self._queues = queues
        self._on_message = on_message
        self._tags: dict[int, str] = {}

    @property
    def consuming(self) -> frozenset[int]:
        return frozenset(self._tags)

    async def take(self, partition: int) -> None:
        if partition in self._tags:
            return

        async def deliver(message: AbstractIncomingMessage) -> None:
            await self._on_message(message, partition)

        self._tags[partition] = await self._queues[partition].consume(deliver)

    async def cancel(self, partition: int) -> None:
        """Stops the deliveries; those already here are still handled (and acked) by the consumer. On a
        channel gone, the broker has cancelled the consumer already and its messages go back."""
        tag = self._tags.pop(partition, None)
        if tag is not None:
            with contextlib.suppress(Exception):
                await self._queues[partition].cancel(tag)

    async def take_all(self) -> None:
        for partition in range(len(self._queues)):
            await self.take(partition)

    async def cancel_all(self) -> None:
        for partition in list(self._tags):
            await self.cancel(partition)
