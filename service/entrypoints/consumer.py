"""Inbound checkout events: decode, dispatch to the use case, outcome.

The broker's side (batches, acks, retries, refusals) is the adapter's (service/adapters/rabbitmq/
deliveries.py); here a message becomes an event or a refusal with its reason, a batch of events is
applied in one unit of work with what its read ahead found, and a use case's refusal becomes the reason
the message is dead-lettered with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import msgspec
import structlog

from contracts.events import INBOUND_TYPES, InboundEvent
from service.adapters.rabbitmq.deliveries import Delivery, Refused
from service.app.errors import InvalidInput, UseCaseError
from service.app.inbound import handle_event, inbound_decoder, read_ahead, session_of
from service.app.ports import UnitOfWorkFactory

log = structlog.get_logger(__name__)

_generic = msgspec.json.Decoder()


def utcnow() -> datetime:
    return datetime.now(UTC)


def classify_invalid(body: bytes, error: msgspec.ValidationError) -> tuple[str, str]:
    """Tells an unknown event type from a schema-invalid one, and a body that is not JSON at all (the
    typed decoder can fail on the shape, `[1, 2`, before it reaches the end) (only on the error path)."""
    try:
        raw = _generic.decode(body)
    except msgspec.DecodeError as malformed:
        return "malformed_json", str(malformed)
    kind = raw.get("type") if isinstance(raw, dict) else None
    if isinstance(kind, str) and kind not in INBOUND_TYPES:
        return "unknown_event_type", f"unknown event type {kind!r}"
    return "invalid_event", str(error)


def _bind(event: InboundEvent) -> None:
    structlog.contextvars.bind_contextvars(
        event_id=event.id, event_type=str(event.__struct_config__.tag), session_id=session_of(event)
    )


class CheckoutEvents:
    """The handler of the inbound checkout events (service/adapters/rabbitmq/deliveries.py `Handler`)."""

    def __init__(self, new_uow: UnitOfWorkFactory, clock: Callable[[], datetime] = utcnow) -> None:
        self._new_uow = new_uow
        self._clock = clock

    def decode(self, body: bytes) -> InboundEvent:
        try:
            event = inbound_decoder.decode(body)
        except msgspec.ValidationError as invalid:
            raise Refused(*classify_invalid(body, invalid)) from None
        except msgspec.DecodeError as malformed:
            raise Refused("malformed_json", str(malformed)) from None
        _bind(event)
        return event

    def key(self, event: InboundEvent) -> str:
        return session_of(event)

    def kind(self, event: InboundEvent) -> str:
        return str(event.__struct_config__.tag)

    async def apply_batch(self, deliveries: Sequence[Delivery[InboundEvent]]) -> list[str]:
        """One unit of work for the batch: its locks and reads once, then each event with what was read."""
        try:
            async with self._new_uow() as uow:
                prepared = await read_ahead(uow, [d.event for d in deliveries])
                now = self._clock()
                outcomes: list[str] = []
                for delivery in deliveries:
                    # This task serves many messages: each one's log lines carry its own ids.
                    structlog.contextvars.bind_contextvars(message_id=delivery.message.message_id)
                    _bind(delivery.event)
                    outcomes.append(await handle_event(uow, delivery.event, delivery.message.body, now, prepared))
        except Exception as failed:
            if len(deliveries) > 1:
                log.info("batch_applied_one_by_one", events=len(deliveries), error=type(failed).__name__)
            raise
        finally:
            structlog.contextvars.clear_contextvars()
        return outcomes

    async def apply_one(self, delivery: Delivery[InboundEvent]) -> str:
        try:
            async with self._new_uow() as uow:
                return await handle_event(uow, delivery.event, delivery.message.body, self._clock())
        except InvalidInput as invalid:
            detail = "; ".join(f"{v.code} at {v.field}: {v.message}" for v in invalid.violations)
            raise Refused(invalid.violations[0].code, detail) from None
        except UseCaseError as refused:
            raise Refused(refused.code, refused.detail) from None
