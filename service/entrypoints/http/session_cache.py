"""GET answers of checkout sessions, kept in memory for as long as PostgreSQL tells this process of every
change to them.

A checkout page reads its session far more often than it changes it. An answer is kept until its session
changes: this process drops it when one of its own units of work commits a change, and every process
drops it when the change's notification on `upsell_sessions` arrives (a trigger sends it at commit).
While the connection that listens there is down, nothing is kept, and what was kept is dropped.

An answer read while a change of its session was arriving is not kept, so an answer from before a change
is never served after this process heard of the change. A change committed by another process is served
here from the moment its notification arrives, on one machine well under a millisecond after its commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_SESSIONS = 2048
"""Answers kept at most (about 1.5 kB each); the oldest goes first."""
MAX_AGE = timedelta(seconds=30)
"""An answer is read again after this long whatever was heard: a bound on what a notification missed
without the listener noticing could cost."""
MAX_CHANGES = 4096
"""Recent changes remembered to tell a read that overlapped one; a read older than the oldest of them is
not kept."""


@dataclass(frozen=True, slots=True)
class CachedSession:
    body: bytes
    secret_hash: bytes | None
    stale_from: datetime
    """When the answer is read again: `MAX_AGE` after it was read, or when its open session expires."""


class SessionCache:
    def __init__(self, max_sessions: int = MAX_SESSIONS, max_changes: int = MAX_CHANGES) -> None:
        self._entries: dict[str, CachedSession] = {}
        self._changes: dict[str, int] = {}
        self._max_sessions = max_sessions
        self._max_changes = max_changes
        self._clock = 0
        self._forgotten = 0
        self.listening = False

    def get(self, session_id: str, now: datetime) -> CachedSession | None:
        entry = self._entries.get(session_id)
        if entry is None or now >= entry.stale_from:
            return None
        return entry

    def start_read(self) -> int:
        """To be called before reading a session from the database, and passed to `keep`."""
        self._clock += 1
        return self._clock

    def keep(self, session_id: str, entry: CachedSession, started: int) -> None:
        """Keeps an answer unless its session may have changed since `started`."""
        if not self.listening or started < self._forgotten or self._changes.get(session_id, 0) > started:
            return
        if len(self._entries) >= self._max_sessions:
            del self._entries[next(iter(self._entries))]
        self._entries[session_id] = entry

    def changed(self, session_id: str) -> None:
        """A session changed; the empty id stands for every session (the table was truncated)."""
        if not session_id:
            self._forget_all()
            return
        self._clock += 1
        self._entries.pop(session_id, None)
        self._changes.pop(session_id, None)
        self._changes[session_id] = self._clock
        if len(self._changes) > self._max_changes:
            oldest = next(iter(self._changes))
            self._forgotten = self._changes.pop(oldest)

    def changed_many(self, session_ids: Iterable[str]) -> None:
        for session_id in session_ids:
            self.changed(session_id)

    def listening_changed(self, listening: bool) -> None:
        """While not listening, changes may be missed: nothing is kept, and no read from before is."""
        self._forget_all()
        self.listening = listening

    def _forget_all(self) -> None:
        self._clock += 1
        self._forgotten = self._clock
        self._entries.clear()
        self._changes.clear()

    @property
    def kept(self) -> int:
        return len(self._entries)
