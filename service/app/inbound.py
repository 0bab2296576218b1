"""Inbound checkout events: the inbox drops duplicates, then each type maps to its use case.

An event that names a session not registered yet (payment before creation, when several replicas
consume or a backend sends out of order) is parked and applied as soon as the session arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import msgspec
import structlog

from contracts.events import InboundEvent, SessionCreated, SessionExpired, SessionPaymentSucceeded
from contracts.sessions import SessionInput
from service.app import views
from service.app.checkout import Registered, complete_session, expire_session, register_session
from service.app.errors import Conflict, NotFound, UseCaseError
from service.app.ports import UnitOfWork
from service.app.prepared import NOTHING, Prepared

log = structlog.get_logger(__name__)

Outcome = Literal["processed", "duplicate", "parked"]

inbound_decoder = msgspec.json.Decoder(InboundEvent)


def session_of(event: InboundEvent) -> str:
    return event.data.id if isinstance(event, SessionCreated) else event.data.session


async def read_ahead(uow: UnitOfWork, events: Sequence[InboundEvent]) -> Prepared:
    """Takes the locks and reads what handling these events needs in one round trip for all of them,
    so that `handle_event`, given what was read, goes to the database only for what is rare (discounts,
    payments)."""
    created = [event.data for event in events if isinstance(event, SessionCreated)]
    return await uow.read_ahead(
        [(event.id, str(event.__struct_config__.tag)) for event in events],
        [data.id for data in created],
        {item.price for data in created for item in data.line_items},
        lock=[session_of(event) for event in events],
    )


async def handle_event(
    uow: UnitOfWork, event: InboundEvent, body: bytes, now: datetime, prepared: Prepared = NOTHING
) -> Outcome:
    """Applies one event exactly once; the caller commits the unit of work, then acks. `prepared`: what
    the caller's batch read for it (`read_ahead`)."""
    session_id = session_of(event)
    await uow.lock_session(session_id)
    first = prepared.first_delivery(event.id)
    if first is None:
        first = await uow.inbox.first_delivery(event.id, str(event.__struct_config__.tag))
    if not first:
        return "duplicate"
    if isinstance(event, SessionCreated):
        try:
            await register(uow, event.data, now, secret_hash=None, late_ok=True, prepared=prepared)
        except Conflict as exists:
            if exists.code != "session_exists":
                raise
            log.info("session_already_registered")
            return "duplicate"
        return "processed"
    try:
        await _apply_to_existing(uow, event, now)
    except NotFound:
        await uow.parked.park(event.id, session_id, body)
        log.info("event_parked", reason="session_not_registered_yet")
        return "parked"
    return "processed"


async def register(
    uow: UnitOfWork,
    data: SessionInput,
    now: datetime,
    secret_hash: bytes | None,
    *,
    late_ok: bool = False,
    prepared: Prepared = NOTHING,
) -> Registered:
    """Registers a session, then applies the events that arrived for it before; returns it as it ends."""
    registered = await register_session(uow, data, now, secret_hash, late_ok=late_ok, prepared=prepared)
    if not await replay_parked(uow, data.id, now, prepared):
        return registered
    session = await uow.sessions.get(data.id)
    return registered if session is None else Registered(session, views.session_view(session, now))


async def _apply_to_existing(uow: UnitOfWork, event: InboundEvent, now: datetime) -> None:
    if isinstance(event, SessionPaymentSucceeded):
        await complete_session(uow, event.data.session, event.data.reference, now)
    elif isinstance(event, SessionExpired):
        await expire_session(uow, event.data.session)


async def replay_parked(uow: UnitOfWork, session_id: str, now: datetime, prepared: Prepared = NOTHING) -> int:
    """Applies the events that waited for this session, in the order they arrived; returns how many."""
    if session_id in prepared.new_sessions:
        known = prepared.parked.get(session_id, ())
        await uow.parked.drop(p.seq for p in known)
        parked = [p.body for p in known]
    else:
        parked = await uow.parked.take(session_id)
    for body in parked:
        event = inbound_decoder.decode(body)
        try:
            await _apply_to_existing(uow, event, now)
        except UseCaseError as refused:
            # The session exists now, so a refusal is final (payment after an explicit expiry): the
            # event goes to the dead-letter queue with its reason, as it would have on arrival, and is
            # no longer counted as delivered: replayed from there, it is applied (or refused) again.
            log.warning("parked_event_refused", parked_event_id=event.id, reason=refused.code)
            await uow.inbox.forget(event.id)
            event_type = str(event.__struct_config__.tag)
            await uow.outbox.add_dead_letter(event.id, event_type, session_id, body, refused.code, refused.detail)
    return len(parked)
