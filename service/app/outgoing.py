"""Outgoing events: built once per change and written to the outbox in the change's transaction.

`emit` is the only way out: the type of an event is also its routing key, so it is always the tag of
the envelope class in `contracts.events`, never a string written by hand.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol, TypeVar

import msgspec

from contracts.events import OutboundEvent
from service.app.ports import Outbox

_encoder = msgspec.json.Encoder()

D = TypeVar("D", contravariant=True)


class EnvelopeKind(Protocol[D]):
    """An outbound envelope class of `contracts.events` whose `data` is a `D`."""

    __struct_config__: msgspec.structs.StructConfig

    def __call__(self, *, id: str, created: datetime, data: D) -> OutboundEvent: ...


def event_type(kind: EnvelopeKind[D]) -> str:
    """The type of the events of an envelope class: its tag, which is also the routing key."""
    return str(kind.__struct_config__.tag)


async def emit(outbox: Outbox, kind: EnvelopeKind[D], data: D, correlation_id: str, now: datetime) -> None:
    """Writes one event to the outbox, keyed by `correlation_id` (the session or subscription id); its id
    stays the same however often it is re-sent."""
    event_id = str(uuid.uuid4())
    envelope = kind(id=event_id, created=now, data=data)
    await outbox.add(event_id, event_type(kind), correlation_id, _encoder.encode(envelope))
