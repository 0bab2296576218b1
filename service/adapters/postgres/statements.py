"""The connection a unit of work's tables share, with writes that wait to go out together.

A write whose result nobody reads (an outbox row, a session's new state) is queued with `later` and
sent before the next statement or the commit, so reads always see it. Queued writes of the same
statement go out as one `executemany`: a batch of events writes its sessions and its outbox rows in a
round trip each instead of one per event.
"""

from __future__ import annotations

from typing import Any

import asyncpg


class Statements:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._later: dict[str, list[tuple[Any, ...]]] = {}

    def later(self, query: str, *args: Any) -> None:
        """Queues a write. Writes are grouped by statement, each group in the order it was queued and the
        groups in the order of their first write: writes of different statements must not depend on
        one another (no foreign key between them, no trigger reading the other's table)."""
        self._later.setdefault(query, []).append(args)

    @property
    def pending(self) -> bool:
        return bool(self._later)

    async def flush(self) -> None:
        pending, self._later = self._later, {}
        for query, rows in pending.items():
            if len(rows) == 1:
                await self._conn.execute(query, *rows[0])
            else:
                await self._conn.executemany(query, rows)

    async def execute(self, query: str, *args: Any) -> str:
        await self.flush()
        return await self._conn.execute(query, *args)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        await self.flush()
        return await self._conn.fetch(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        await self.flush()
        return await self._conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        await self.flush()
        return await self._conn.fetchval(query, *args)
