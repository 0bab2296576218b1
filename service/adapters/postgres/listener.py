"""A connection that LISTENs on some channels for as long as the process runs, reconnecting when lost.

`on_listening(True)` is called once every LISTEN is in place, `on_listening(False)` as soon as the
connection is gone or has not answered a check for `HEARTBEAT` seconds: between the two, every
notification on a channel reaches that channel's callback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

import asyncpg
from asyncpg.pool import PoolConnectionProxy

SESSIONS_CHANNEL = "upsell_sessions"
"""Carries the id of every session row that changed (migration 003)."""
API_KEYS_CHANNEL = "upsell_api_keys"
"""Carries the id of every API key row that changed, a revocation (migration 005)."""
RECONNECT_AFTER = 1.0
"""Seconds between attempts while the database is away."""
HEARTBEAT = 2.0
"""Seconds between checks that the listening connection still answers (and seconds it has to answer):
a connection cut without a word (a partition, a dropped NAT entry) looks open while its notifications
are lost, and one that does not answer is replaced."""


def _ignore(_: bool) -> None:
    return None


class Listener:
    def __init__(
        self,
        pool: asyncpg.Pool,
        channels: Mapping[str, Callable[[str], None]],
        on_listening: Callable[[bool], None] = _ignore,
    ) -> None:
        self._pool = pool
        self._channels = dict(channels)
        self._on_listening = on_listening

    def _notified(self, _conn: object, _pid: int, channel: str, payload: object) -> None:
        self._channels[channel](str(payload))

    async def run(self) -> None:
        while True:
            try:
                conn = await self._pool.acquire()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await asyncio.sleep(RECONNECT_AFTER)
                continue
            try:
                await self._listen(conn)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await asyncio.sleep(RECONNECT_AFTER)
            finally:
                self._on_listening(False)
                for channel in self._channels:
                    with contextlib.suppress(Exception):
                        await conn.remove_listener(channel, self._notified)
                with contextlib.suppress(Exception):
                    await self._pool.release(conn)

    async def _listen(self, conn: PoolConnectionProxy) -> None:
        lost = asyncio.Event()

        def terminated(_: object) -> None:
            # As soon as asyncpg sees the connection end, not at the next check below.
            self._on_listening(False)
            lost.set()

        conn.add_termination_listener(terminated)
        try:
            for channel in self._channels:
                await conn.add_listener(channel, self._notified)
            self._on_listening(True)
            while not conn.is_closed():
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that comes
                # as its inner call ends, and this loop would then never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(HEARTBEAT):
                        await lost.wait()
                if not lost.is_set() and not await _answers(conn):
                    # `run` tells that it stopped listening, as for any other end of the connection.
                    conn.terminate()
        finally:
            with contextlib.suppress(Exception):
                conn.remove_termination_listener(terminated)


async def _answers(conn: PoolConnectionProxy) -> bool:
    try:
        async with asyncio.timeout(HEARTBEAT):
            await conn.fetchval("select 1")
    except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        return False
    return True
