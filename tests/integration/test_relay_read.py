"""The relay's read of unpublished outbox rows, on the real PostgreSQL: in id order from the index, stopping
at its limit, whatever the planner would guess for rows published since the last vacuum."""

from __future__ import annotations

import asyncpg
import pytest

from service.adapters.rabbitmq.relay import MARK_AND_READ

pytestmark = pytest.mark.integration

PUBLISHED = 3000
"""Rows published (and not vacuumed away) ahead of the unpublished ones."""


async def _read(conn: asyncpg.Connection, limit: int, owned: list[int]) -> list[asyncpg.Record]:
    read = "select id, partition from unpublished_outbox($1, '{}', '{}', $2::smallint[])"
    return await conn.fetch(read, limit, owned)


async def test_the_read_is_an_index_scan_in_id_order_that_skips_what_was_published(database_url: str) -> None:
    # A connection of its own: the settings that print plans must not go back to the pool.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "insert into outbox (event_id, type, correlation_id, body, partition)"
            " select 'e' || n, 'checkout.session.upsell_evaluated', 'cs_' || n, '{}', n % 16"
            " from generate_series(1, $1) as n",
            PUBLISHED + 40,
        )
        await conn.execute("update outbox set published_at = now() where id <= $1", PUBLISHED)
        plans: list[str] = []
        conn.add_log_listener(lambda _conn, message: plans.append(str(message)))
        await conn.execute("load 'auto_explain'")
        await conn.execute(
            "set auto_explain.log_min_duration = 0; set auto_explain.log_nested_statements = on;"
            " set auto_explain.log_analyze = on; set client_min_messages = log"
        )

        first = await _read(conn, 10, list(range(16)))
        again = await _read(conn, 10, list(range(16)))
        mine = await _read(conn, 100, [3, 5])
    finally:
        await conn.close()

    assert [r["id"] for r in first] == list(range(PUBLISHED + 1, PUBLISHED + 11))
    assert again == first
    assert [r["id"] for r in mine] == [n for n in range(PUBLISHED + 1, PUBLISHED + 41) if n % 16 in (3, 5)]
    inner = [plan for plan in plans if "select * from outbox" in plan]
    assert len(inner) == 3, plans
    assert all("Index Scan using outbox_unpublished on outbox" in plan for plan in inner), inner
    assert not any("Bitmap" in plan or "Sort" in plan for plan in inner), inner


async def test_a_mark_and_the_next_read_go_in_one_statement(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "insert into outbox (event_id, type, correlation_id, body, partition)"
            " select 'e' || n, 'test.event', 'cs_' || n, '{}', 0 from generate_series(1, 10) as n"
        )
        ids = [row["id"] for row in await conn.fetch("select id from outbox order by id")]
        confirmed, on_their_way = ids[:3], ids[3:4]
        rows = await conn.fetch(MARK_AND_READ, 4, [*on_their_way, *confirmed], [], [0], confirmed)
        published = [row["id"] for row in await conn.fetch("select id from outbox where published_at is not null")]
    finally:
        await conn.close()

    # The read, from the snapshot before the mark, leaves out what it marks and what is on its way.
    assert [(row["kind"], row["id"]) for row in rows if row["kind"] == "read"] == [("read", i) for i in ids[4:8]]
    marked = [row for row in rows if row["kind"] == "marked"]
    assert [row["type"] for row in marked] == ["test.event"] * 3
    assert all(row["seconds"] >= 0 for row in marked)
    assert sorted(published) == confirmed
