"""PostgreSQL implementations of the subscription-change ports: API keys, upgrade orders and links,
and the summary report."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import asyncpg
import msgspec

from service.adapters.postgres.repositories import DocumentTable
from service.adapters.postgres.statements import Statements
from service.domain.reports import SessionFacts, UpgradeOrderFacts
from service.domain.subscriptions import UpgradeLinkRecord, UpgradeOrder, UpgradePath


class UpgradePathTable(DocumentTable[UpgradePath]):
    def __init__(self, conn: Statements) -> None:
        super().__init__(conn, "upgrade_paths", UpgradePath)

    async def all(self) -> list[UpgradePath]:
        rows = await self._conn.fetch("select body from upgrade_paths order by id")
        return [self._decoder.decode(r["body"]) for r in rows]


class ApiKeyTable:
    def __init__(self, conn: Statements) -> None:
        self._conn = conn

    async def add(self, key_id: str, name: str, roles: list[str], secret_hash: bytes) -> None:
        await self._conn.execute(
            "insert into api_keys (id, name, roles, secret_hash) values ($1, $2, $3, $4)",
            key_id,
            name,
            roles,
            secret_hash,
        )

    async def revoke(self, key_id: str) -> bool:
        revoked = await self._conn.fetchval(
            "update api_keys set revoked_at = now() where id = $1 and revoked_at is null returning true", key_id
        )
        return bool(revoked)


async def find_api_key(pool: asyncpg.Pool, secret_hash: bytes) -> tuple[str, list[str]] | None:
    """The id and roles of the live key with this secret hash (outside any unit of work: auth runs first)."""
    row = await pool.fetchrow(
        "select id, roles from api_keys where secret_hash = $1 and revoked_at is null", secret_hash
    )
    return None if row is None else (row["id"], list(row["roles"]))


class UpgradeOrderTable:
    def __init__(self, conn: Statements) -> None:
        self._conn = conn

    async def add(self, order: UpgradeOrder) -> None:
        await self._conn.execute(
            "insert into upgrade_orders (id, subscription, currency, amount_due_now, placed_by, body, created_at)"
            " values ($1, $2, $3, $4, $5, $6, $7)",
            order.id,
            order.subscription,
            order.currency,
            order.amount_due_now,
            order.placed_by,
            msgspec.json.encode(order).decode(),
            order.created,
        )


class UpgradeLinkTable:
    def __init__(self, conn: Statements) -> None:
        self._conn = conn

    async def add(self, link: UpgradeLinkRecord) -> None:
        await self._conn.execute(
            "insert into upgrade_links (id, upgrade_path, subscription, expires_at) values ($1, $2, $3, $4)",
            link.id,
            link.upgrade_path,
            link.subscription,
            link.expires_at,
        )

    async def get(self, link_id: str, *, for_update: bool = False) -> UpgradeLinkRecord | None:
        lock = " for update" if for_update else ""
        row = await self._conn.fetchrow(
            f"select id, upgrade_path, subscription, expires_at, used_at, upgrade_order"
            f" from upgrade_links where id = $1{lock}",
            link_id,
        )
        return None if row is None else UpgradeLinkRecord(**dict(row))

    async def use(self, link_id: str, order_id: str, now: datetime) -> None:
        await self._conn.execute(
            "update upgrade_links set used_at = $2, upgrade_order = $3 where id = $1", link_id, now, order_id
        )


class ReportQueries:
    """The facts of the summary report, as stored; the figures are computed in `service.domain.reports`."""

    def __init__(self, conn: Statements) -> None:
        self._conn = conn

    async def sessions(self, start: datetime, end: datetime) -> list[SessionFacts]:
        rows = await self._conn.fetch(_SESSIONS, start, end)
        return [
            SessionFacts(
                currency=r["currency"],
                created_at=r["created_at"],
                completed_at=r["completed_at"],
                amount_total=_minor_units(r["amount_total"]),
                eligible=r["eligible"],
                selected=r["selected"],
                upsell_amount=_minor_units(r["upsell_amount"]),
            )
            for r in rows
        ]

    async def upgrade_orders(self, start: datetime, end: datetime) -> list[UpgradeOrderFacts]:
        rows = await self._conn.fetch(_UPGRADE_ORDERS, start, end)
        return [UpgradeOrderFacts(r["currency"], r["created_at"], int(r["amount_due_now"])) for r in rows]


def _minor_units(amount: Decimal | None) -> int | None:
    # The amounts are `numeric` columns holding whole minor units.
    return None if amount is None else int(amount)


# The sessions created or completed in the range; the amounts are set when a session completes.
_SESSIONS = """
select state->>'currency' as currency, created_at, completed_at, amount_total, upsell_amount,
       coalesce((state->'upsell'->>'eligible')::boolean, false) as eligible,
       coalesce((state->'upsell'->>'selected')::boolean, false) as selected
  from checkout_sessions
 where (created_at >= $1 and created_at < $2) or (completed_at >= $1 and completed_at < $2)
"""

_UPGRADE_ORDERS = """
select currency, created_at, amount_due_now from upgrade_orders where created_at >= $1 and created_at < $2
"""
