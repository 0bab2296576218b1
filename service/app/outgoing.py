"""Outgoing events: built once per change and written to the outbox in the change's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from contracts.events import LineItemsUpdated, SessionCompleted, UpsellEvaluated
from contracts.sessions import CompletedSession, SessionView
from service.app.ports import UnitOfWork

_encoder = msgspec.json.Encoder()

OutboundEnvelope = UpsellEvaluated | LineItemsUpdated | SessionCompleted


def event_type(envelope: type[OutboundEnvelope]) -> str:
    return str(envelope.__struct_config__.tag)


async def emit_session_event(
    uow: UnitOfWork, kind: type[OutboundEnvelope], data: SessionView | CompletedSession, now: datetime
) -> None:
    """Writes one session event to the outbox; its id stays the same however often it is re-sent."""
    event_id = str(uuid.uuid4())
    envelope = kind(id=event_id, created=now, data=data)  # type: ignore[arg-type]
    await uow.outbox.add(event_id, event_type(kind), data.id, _encoder.encode(envelope))
