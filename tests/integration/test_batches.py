"""Events consumed together are applied in one transaction; a bad one fails only itself; writes queued
for the commit are seen by later reads and fail the unit of work when they cannot be stored."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractIncomingMessage

from service.adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from service.adapters.rabbitmq.deliveries import Delivery
from service.app.errors import InvalidInput
from service.bootstrap import Service
from service.domain import session as domain
from tests.broker import peer
from tests.integration.helpers import seed_example_catalog

pytestmark = pytest.mark.integration


def created(session: str, price: str = "price_pro_monthly") -> dict[str, Any]:
    return {"id": session, "mode": "subscription", "currency": "usd", "line_items": [{"price": price}]}


def record_batches(service: Service) -> list[tuple[int, bool]]:
    """(size, committed) of each batch the consumer runs; one that fails is applied event by event."""
    batches: list[tuple[int, bool]] = []
    apply = service.consumer._apply_batch

    async def recorded(deliveries: Sequence[Delivery[Any]]) -> list[Any]:
        try:
            outcomes = await apply(deliveries)
        except Exception:
            batches.append((len(deliveries), False))
            raise
        batches.append((len(deliveries), True))
        return outcomes

    service.consumer._batches._run = recorded
    return batches


async def test_queued_events_are_applied_in_batches_each_once(service: Service, amqp_url: str) -> None:
    sessions = [f"cs_batch_{i}" for i in range(120)]
    batches = record_batches(service)
    async with peer(amqp_url) as broker:
        for session in sessions:
            await broker.send("checkout.session.created", created(session))
        await service.subscriptions.take_all()
        events = [await broker.next_event() for _ in sessions]
        assert await broker.no_more_events(0.5)
        await service.subscriptions.cancel_all()
        # Every message was acked (in batches): with the service's connection gone, none comes back.
        await service.connection.close()
        back: list[AbstractIncomingMessage] = []

        async def came_back(message: AbstractIncomingMessage) -> None:
            back.append(message)

        for name in service.topology.partition_queues:
            await (await broker.channel.get_queue(name)).consume(came_back, no_ack=True)
        await asyncio.sleep(1.0)
        assert back == []
    assert all(committed for _, committed in batches), batches
    assert max(size for size, _ in batches) > 1, batches
    assert sum(size for size, _ in batches) == len(sessions)
    assert sorted(e.correlation_id or "" for e in events) == sorted(sessions)
    assert await service.pool.fetchval("select count(*) from checkout_sessions") == len(sessions)
    assert await service.pool.fetchval("select count(*) from inbox") == len(sessions)
    # One outbox row per session (the order across sessions is each partition queue's own).
    rows = await service.pool.fetch("select correlation_id from outbox order by id")
    assert sorted(r["correlation_id"] for r in rows) == sorted(sessions)


async def test_a_refused_event_in_a_batch_is_dead_lettered_and_the_others_apply(
    service: Service, amqp_url: str
) -> None:
    sessions = [f"cs_mixed_{i}" for i in range(40)]
    batches = record_batches(service)
    async with peer(amqp_url) as broker:
        for i, session in enumerate(sessions):
            await broker.send(
                "checkout.session.created", created(session, "price_gone" if i == 17 else "price_pro_monthly")
            )
        await service.subscriptions.take_all()
        dead = await broker.dead_letter()
        events = [await broker.next_event() for _ in range(len(sessions) - 1)]
        assert await broker.no_more_events(0.5)
        await service.subscriptions.cancel_all()
    # The batch that held the refused event failed as a whole; every other one committed.
    assert [committed for _, committed in batches].count(False) == 1, batches
    assert max(size for size, _ in batches) > 1, batches
    assert dead.headers["x-upsell-reason"] == "unknown_price"
    assert sorted(e.correlation_id or "" for e in events) == sorted(s for i, s in enumerate(sessions) if i != 17)
    stored = await service.pool.fetch("select id from checkout_sessions")
    assert sorted(r["id"] for r in stored) == sorted(s for i, s in enumerate(sessions) if i != 17)
    assert await service.pool.fetchval("select count(*) from outbox") == len(sessions) - 1


async def test_payments_parked_in_one_batch_complete_their_sessions_in_the_next(
    service: Service, amqp_url: str
) -> None:
    sessions = [f"cs_early_{i}" for i in range(25)]
    batches = record_batches(service)
    async with peer(amqp_url) as broker:
        for session in sessions:
            await broker.send("checkout.session.payment_succeeded", {"session": session, "payment": f"pi_{session}"})
        for session in sessions:
            await broker.send("checkout.session.created", created(session))
        await service.subscriptions.take_all()
        events = [await broker.next_event() for _ in range(2 * len(sessions))]
        await service.subscriptions.cancel_all()
    by_session: dict[str, list[str]] = {}
    for event in events:
        by_session.setdefault(event.correlation_id or "", []).append(event.type or "")
    assert by_session == {s: ["checkout.session.upsell_evaluated", "checkout.session.completed"] for s in sessions}
    assert all(committed for _, committed in batches), batches
    assert await service.pool.fetchval("select count(*) from parked_events") == 0
    statuses = await service.pool.fetch("select distinct status from checkout_sessions")
    assert [r["status"] for r in statuses] == ["complete"]


def a_session(session_id: str, note: str = "") -> domain.CheckoutSession:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    return domain.CheckoutSession(
        id=session_id,
        mode="payment",
        currency="usd",
        line_items=(),
        upsell=domain.Upsell(False, "not_subscription", None, None),
        created_at=now,
        expires_at=now,
        metadata={"note": note},
    )


async def test_queued_writes_are_read_back_in_the_same_unit_of_work(pool: asyncpg.Pool) -> None:
    await seed_example_catalog(pool)
    new_uow = PostgresUnitOfWorkFactory(pool)
    async with new_uow() as uow:
        await uow.lock_sessions(["cs_q1", "cs_q2"])
        prepared = await uow.read_ahead([], ["cs_q1", "cs_q2"], [])
        assert prepared.free == {"cs_q1", "cs_q2"}
        assert await uow.sessions.add(a_session("cs_q1"), None, free=True)
        assert await uow.sessions.add(a_session("cs_q2"), None, free=True)
        await uow.outbox.add("evt-q1", "t", "cs_q1", b"{}")
        # Not written yet: the read sends the queued rows first.
        assert (found := await uow.sessions.get("cs_q2")) is not None
        assert found.id == "cs_q2"
        assert not await uow.sessions.add(a_session("cs_q1"), None)
    assert await pool.fetchval("select count(*) from checkout_sessions") == 2
    assert await pool.fetchval("select count(*) from outbox") == 1


async def test_a_queued_write_that_cannot_be_stored_fails_the_whole_unit_of_work(pool: asyncpg.Pool) -> None:
    new_uow = PostgresUnitOfWorkFactory(pool)

    async def register_unstorable() -> None:
        async with new_uow() as uow:
            await uow.lock_sessions(["cs_nul"])
            prepared = await uow.read_ahead([("evt-nul", "checkout.session.created")], ["cs_nul"], [])
            assert prepared.first_delivery("evt-nul")
            assert await uow.sessions.add(a_session("cs_nul", "bad\x00text"), None, free=True)

    with pytest.raises(InvalidInput) as refused:
        await register_unstorable()
    assert refused.value.violations[0].code == "invalid_data"
    assert await pool.fetchval("select count(*) from checkout_sessions") == 0
    assert await pool.fetchval("select count(*) from inbox") == 0


async def test_a_read_ahead_that_locks_reads_what_the_lock_holder_committed(pool: asyncpg.Pool) -> None:
    # The locks and the read go in one round trip, and the read still comes after the locks: a session
    # registered by the holder of its lock meanwhile is seen as taken, not free.
    await seed_example_catalog(pool)
    new_uow = PostgresUnitOfWorkFactory(pool)
    async with new_uow() as holder:
        await holder.lock_sessions(["cs_race"])
        assert await holder.sessions.add(a_session("cs_race"), None, free=True)

        async def second() -> frozenset[str]:
            async with new_uow() as uow:
                prepared = await uow.read_ahead(
                    [("evt-race", "checkout.session.created")], ["cs_race"], ["price_pro_monthly"], lock=["cs_race"]
                )
                assert prepared.first_delivery("evt-race")
                assert "price_pro_monthly" in prepared.prices
                return prepared.free

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # held by the lock
    assert await waiting == frozenset()
