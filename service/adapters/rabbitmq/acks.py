"""Settling inbound messages: acks in as few frames as order allows, requeues, each message once."""

from __future__ import annotations

from collections.abc import Sequence

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import ChannelInvalidStateError
from aiormq.abc import AbstractChannel


def channel_of(message: AbstractIncomingMessage) -> AbstractChannel | None:
    """The message's channel, None once it is closed (its messages are then delivered again)."""
    try:
        return message.channel
    except ChannelInvalidStateError:
        return None


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
            channel = channel_of(message)
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
        channel = channel_of(message)
        still_open = self._open.get(channel, set()) if channel is not None else set()
        tag = message.delivery_tag or 0
        if tag in still_open:
            await message.nack(requeue=True)
            still_open.discard(tag)
