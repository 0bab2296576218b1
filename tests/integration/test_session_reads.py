"""GET reads of sessions gathered into few statements, on the real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from contracts.sessions import LineItemInput, SessionInput
from service.adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from service.app.inbound import register

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


async def registered(new_uow: PostgresUnitOfWorkFactory, count: int) -> None:
    for number in range(count):
        items = [LineItemInput(price="price_pro_monthly")]
        data = SessionInput(id=f"cs_read_{number}", mode="subscription", currency="usd", line_items=items)
        async with new_uow() as uow:
            await register(uow, data, NOW, secret_hash=bytes([number % 256]) * 32)


async def test_concurrent_reads_are_answered_each_with_its_own_session_in_few_statements(seeded: asyncpg.Pool) -> None:
    new_uow = PostgresUnitOfWorkFactory(seeded)
    await registered(new_uow, 120)
    asked = [f"cs_read_{number}" for number in range(120)] + ["cs_read_7", "cs_missing_1", "cs_missing_2"]
    answers = await asyncio.gather(*(new_uow.read_session(session_id) for session_id in asked))
    for session_id, answer in zip(asked, answers, strict=True):
        if session_id.startswith("cs_missing"):
            assert answer is None
            continue
        assert answer is not None
        session, secret_hash = answer
        assert session.id == session_id
        assert secret_hash == bytes([int(session_id.rsplit("_", 1)[1]) % 256]) * 32
    # 123 reads asked at once: the first goes alone, the rest gather behind it.
    assert new_uow._reads.statements <= 4

    # At rest, a read waits for nothing: one statement for one read.
    before = new_uow._reads.statements
    alone = await new_uow.read_session("cs_read_3")
    assert alone is not None
    assert new_uow._reads.statements == before + 1


async def test_a_failed_statement_fails_only_the_reads_it_carried(seeded: asyncpg.Pool) -> None:
    new_uow = PostgresUnitOfWorkFactory(seeded)
    await registered(new_uow, 2)
    async with seeded.acquire() as conn:
        await conn.execute("alter table checkout_sessions rename to checkout_sessions_away")
        try:
            with pytest.raises(asyncpg.UndefinedTableError):
                await new_uow.read_session("cs_read_0")
        finally:
            await conn.execute("alter table checkout_sessions_away rename to checkout_sessions")
    found = await new_uow.read_session("cs_read_1")
    assert found is not None
    assert found[0].id == "cs_read_1"


async def test_concurrent_toggles_commit_together_and_a_refusal_touches_only_its_own(seeded: asyncpg.Pool) -> None:
    from service.app import checkout
    from service.app.errors import Conflict, NotFound
    from service.app.ports import UnitOfWork
    from service.app.prepared import Prepared

    new_uow = PostgresUnitOfWorkFactory(seeded)
    await registered(new_uow, 60)
    async with new_uow() as uow:
        await checkout.expire_session(uow, "cs_read_5")

    def toggle(session_id: str, selected: bool) -> Any:
        def work(uow: UnitOfWork, prepared: Prepared) -> Any:
            return checkout.toggle_upsell(uow, session_id, selected, NOW, prepared=prepared)

        return new_uow.gathered(session_id, work)

    asked = [(f"cs_read_{n}", True) for n in range(60)] + [("cs_read_9", False), ("cs_read_9", True), ("cs_nope", True)]
    answers = await asyncio.gather(*(toggle(s, on) for s, on in asked), return_exceptions=True)
    by_request: dict[int, Any] = dict(enumerate(answers))
    assert isinstance(by_request[5], Conflict)
    assert isinstance(by_request[62], NotFound)
    for index, (session_id, selected) in enumerate(asked[:-1]):
        if session_id == "cs_read_5":
            continue
        view = by_request[index]
        assert not isinstance(view, BaseException), view
        assert (view.id, view.upsell.selected) == (session_id, selected)
    # The second and third toggles of cs_read_9 follow the first, each in a later transaction.
    assert [by_request[i].version for i in (9, 60, 61)] == [2, 3, 4]
    assert new_uow._changes.transactions <= 12
    rows = await seeded.fetch(
        "select correlation_id, count(*) as n from outbox where type = 'checkout.session.line_items_updated'"
        " group by correlation_id"
    )
    counts = {row["correlation_id"]: row["n"] for row in rows}
    assert counts.pop("cs_read_9") == 3
    assert "cs_read_5" not in counts
    assert counts == {f"cs_read_{n}": 1 for n in range(60) if n not in (5, 9)}
    states = await seeded.fetch("select id, version, state->'upsell'->>'selected' as on from checkout_sessions")
    stored = {row["id"]: (row["version"], row["on"]) for row in states}
    assert stored["cs_read_9"] == (4, "true")
    assert stored["cs_read_5"][1] == "false"
    assert stored["cs_read_0"] == (2, "true")


async def test_concurrent_registrations_commit_together_and_bad_input_is_refused_alone(seeded: asyncpg.Pool) -> None:
    from service.app.errors import InvalidInput
    from service.app.ports import UnitOfWork
    from service.app.prepared import Prepared

    new_uow = PostgresUnitOfWorkFactory(seeded)

    def create(session_id: str, price: str) -> Any:
        data = SessionInput(id=session_id, mode="subscription", currency="usd", line_items=[LineItemInput(price=price)])

        def work(uow: UnitOfWork, prepared: Prepared) -> Any:
            return register(uow, data, NOW, secret_hash=None, prepared=prepared)

        return new_uow.gathered_registration(session_id, [price], work)

    asked = [(f"cs_new_{n}", "price_pro_monthly") for n in range(50)] + [("cs_bad", "price_gone")]
    answers: list[Any] = await asyncio.gather(*(create(s, p) for s, p in asked), return_exceptions=True)
    assert isinstance(answers[-1], InvalidInput)
    assert [a.session.id for a in answers[:-1]] == [s for s, _ in asked[:-1]]
    assert all(a.session.upsell.eligible and a.view.upsell.eligible for a in answers[:-1])
    assert new_uow._registrations.transactions <= 10
    stored = await seeded.fetchval("select count(*) from checkout_sessions where id like 'cs_new_%'")
    assert stored == 50
    events = await seeded.fetchval("select count(*) from outbox where type = 'checkout.session.upsell_evaluated'")
    assert events == 50
    assert await seeded.fetchval("select count(*) from checkout_sessions where id = 'cs_bad'") == 0
