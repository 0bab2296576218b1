"""A batch's messages are acked with one `multiple` frame only when nothing before them is still open."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aio_pika.exceptions import ChannelInvalidStateError

from service.adapters.rabbitmq.acks import Acks


@dataclass(eq=False)
class Channel:
    is_closed: bool = False
    frames: list[tuple[str, int, bool]] = field(default_factory=list)


@dataclass
class Message:
    """What the consumer uses of aio-pika's incoming message: its channel raises once closed."""

    delivery_tag: int
    _channel: Channel

    @property
    def channel(self) -> Channel:
        if self._channel.is_closed:
            raise ChannelInvalidStateError
        return self._channel

    async def ack(self, multiple: bool = False) -> None:
        self.channel.frames.append(("ack", self.delivery_tag, multiple))

    async def nack(self, requeue: bool = True) -> None:
        self.channel.frames.append(("nack", self.delivery_tag, False))


def delivered(acks: Acks, channel: Channel, count: int) -> list[Any]:
    messages = [Message(tag, channel) for tag in range(1, count + 1)]
    for message in messages:
        acks.opened(message)  # type: ignore[arg-type]
    return messages


async def test_a_batch_with_nothing_open_before_it_is_acked_with_one_frame() -> None:
    channel = Channel()
    acks = Acks()
    m = delivered(acks, channel, 5)
    await acks.ack(m[0:3])
    await acks.ack(m[3:5])
    assert channel.frames == [("ack", 3, True), ("ack", 5, True)]


async def test_a_message_held_open_makes_later_batches_ack_one_by_one_until_it_is_settled() -> None:
    channel = Channel()
    acks = Acks()
    m = delivered(acks, channel, 6)
    await acks.ack(m[1:3])  # tag 1 is still being retried
    await acks.nack(m[0])
    await acks.ack(m[3:6])
    assert channel.frames == [("ack", 2, False), ("ack", 3, False), ("nack", 1, False), ("ack", 6, True)]


async def test_messages_of_a_closed_channel_are_left_to_be_delivered_again() -> None:
    old, new = Channel(), Channel()
    acks = Acks()
    stale = delivered(acks, old, 2)
    old.is_closed = True
    fresh = delivered(acks, new, 2)
    await acks.ack([*stale, *fresh])
    assert new.frames == [("ack", 2, True)]
    assert old.frames == []


async def test_a_message_is_settled_once_whatever_asks_again() -> None:
    channel = Channel()
    acks = Acks()
    m = delivered(acks, channel, 3)
    await acks.ack(m[0:2])
    await acks.ack([m[1]])
    await acks.nack(m[0])
    await acks.nack(m[2])
    await acks.ack([m[2]])
    assert channel.frames == [("ack", 2, True), ("nack", 3, False)]
