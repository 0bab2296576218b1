"""The table of answers kept for Idempotency-Key retries, and its sweep of the expired ones."""

from __future__ import annotations

from datetime import datetime

from service.adapters.postgres.statements import Statements
from service.app.ports import KeptAnswer

SWEEP = 100
"""Expired answers removed at most with each answer kept: the table stays bounded without a job."""


class IdempotentAnswerTable:
    def __init__(self, conn: Statements) -> None:
        self._conn = conn

    async def find(self, owner: str, key: str, since: datetime) -> KeptAnswer | None:
        row = await self._conn.fetchrow(
            "select fingerprint, status, sealed, created_at from idempotent_answers"
            " where owner = $1 and key = $2 and created_at >= $3",
            owner,
            key,
            since,
        )
        if row is None:
            return None
        return KeptAnswer(owner, key, bytes(row["fingerprint"]), row["status"], bytes(row["sealed"]), row["created_at"])

    async def keep(self, answer: KeptAnswer, expired_before: datetime) -> None:
        # A key whose answer expired may be used again: its row is replaced.
        await self._conn.execute(
            "insert into idempotent_answers (owner, key, fingerprint, status, sealed, created_at)"
            " values ($1, $2, $3, $4, $5, $6) on conflict (owner, key) do update set"
            " fingerprint = excluded.fingerprint, status = excluded.status, sealed = excluded.sealed,"
            " created_at = excluded.created_at where idempotent_answers.created_at < $7",
            answer.owner,
            answer.key,
            answer.fingerprint,
            answer.status,
            answer.sealed,
            answer.created,
            expired_before,
        )
        await self._conn.execute(
            "delete from idempotent_answers where ctid = any(array("
            " select ctid from idempotent_answers where created_at < $1 limit $2))",
            expired_before,
            SWEEP,
        )
