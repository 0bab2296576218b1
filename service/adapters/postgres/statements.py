"""The connection a unit of work's tables share, with writes that wait to go out together.

A write whose result nobody reads (an outbox row, a session's new state) is queued with `later` and
sent before the next statement or the commit, so reads always see it. Queued writes of the same
statement go out as one `executemany`: a batch of events writes its sessions and its outbox rows in a
round trip each instead of one per event. Statements queued once each go out together as one statement
of data-modifying CTEs: a toggle writes its session and its outbox row in one round trip.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import asyncpg

_PARAMETER = re.compile(r"\$(\d+)")


class Statements:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._later: dict[str, list[tuple[Any, ...]]] = {}
        self._sent = 0

    def mark(self) -> tuple[int, dict[str, int]]:
        """Where the queue stands, for `undo`."""
        return self._sent, {query: len(rows) for query, rows in self._later.items()}

    def undo(self, mark: tuple[int, dict[str, int]]) -> bool:
        """Drops the writes queued since `mark`; False, dropping nothing, when any statement went out since
        (it may have written, or carried queued writes)."""
        sent, lengths = mark
        if sent != self._sent:
            return False
        self._later = {query: rows[: lengths[query]] for query, rows in self._later.items() if query in lengths}
        return True

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
        if pending:
            self._sent += 1
        single = [(query, rows[0]) for query, rows in pending.items() if len(rows) == 1]
        if len(single) > 1:
            await self._conn.execute(_together(tuple(q for q, _ in single)), *(a for _, args in single for a in args))
        elif single:
            await self._conn.execute(single[0][0], *single[0][1])
        for query, rows in pending.items():
            if len(rows) > 1:
                await self._conn.executemany(query, rows)

    async def execute(self, query: str, *args: Any) -> str:
        await self.flush()
        self._sent += 1
        return await self._conn.execute(query, *args)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        await self.flush()
        self._sent += 1
        return await self._conn.fetch(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        await self.flush()
        self._sent += 1
        return await self._conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        await self.flush()
        self._sent += 1
        return await self._conn.fetchval(query, *args)


@lru_cache(maxsize=64)
def _together(queries: tuple[str, ...]) -> str:
    """One statement running `queries` as data-modifying CTEs, their parameters numbered on in turn.

    PostgreSQL runs every data-modifying CTE of a statement, against one snapshot: `later` already
    requires that queued writes do not depend on one another."""
    parts = []
    offset = 0
    for index, query in enumerate(queries):
        used = [int(n) for n in _PARAMETER.findall(query)]

        def renumber(match: re.Match[str], shift: int = offset) -> str:
            return f"${int(match.group(1)) + shift}"

        parts.append(f"w{index} as ({_PARAMETER.sub(renumber, query)})")
        offset += max(used, default=0)
    return "with " + ", ".join(parts) + " select"
