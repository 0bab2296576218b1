"""PostgreSQL implementations of the subscription-change ports: API keys, upgrade orders and links,
and the summary report."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec

from service.adapters.postgres.repositories import DocumentTable
from service.adapters.postgres.statements import Statements
from service.domain.subscriptions import UpgradeLinkRecord, UpgradeOrder, UpgradePath

_order_decoder = msgspec.json.Decoder(UpgradeOrder)


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

    async def add(self, order: UpgradeOrder, idempotency_key: str | None) -> bool:
        """Inserts the order; False when this caller already placed one with the same key."""
        inserted = await self._conn.fetchval(
            "insert into upgrade_orders"
            " (id, subscription, currency, amount_due_now, placed_by, idempotency_key, body, created_at)"
            " values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict do nothing returning true",
            order.id,
            order.subscription,
            order.currency,
            order.amount_due_now,
            order.placed_by,
            idempotency_key,
            msgspec.json.encode(order).decode(),
            order.created,
        )
        return bool(inserted)

    async def find(self, placed_by: str, idempotency_key: str) -> UpgradeOrder | None:
        body = await self._conn.fetchval(
            "select body from upgrade_orders where placed_by = $1 and idempotency_key = $2", placed_by, idempotency_key
        )
        return None if body is None else _order_decoder.decode(body)


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
    def __init__(self, conn: Statements) -> None:
        self._conn = conn

    async def summary(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Per currency: first purchases, upgrades, and upsells offered, accepted, and what they added."""
        rows = await self._conn.fetch(_SUMMARY, start, end)
        # Sums of `numeric` amounts come back as Decimals of whole minor units.
        return [{k: int(v) if isinstance(v, Decimal) else v for k, v in row.items()} for row in rows]


# First purchases are checkout sessions completed in the range, with their first invoice's total. Upsells
# are offered on eligible sessions created in the range, and accepted when such a session completed with
# the upsell selected; their amount is what the upsell added to the first invoice. Upgrades are upgrade
# orders placed in the range, with what they charged now. Each is counted once, in its own column.
_SUMMARY = """
with sessions as (
    select state->>'currency' as currency,
           count(*) filter (where completed_at >= $1 and completed_at < $2) as purchases,
           coalesce(sum(amount_total) filter (where completed_at >= $1 and completed_at < $2), 0)
               as purchase_amount,
           count(*) filter (where (state->'upsell'->>'eligible')::boolean and created_at >= $1 and created_at < $2)
               as offered,
           count(*) filter (where (state->'upsell'->>'eligible')::boolean and created_at >= $1 and created_at < $2
                            and (state->'upsell'->>'selected')::boolean and upsell_amount is not null) as accepted,
           coalesce(sum(upsell_amount) filter (where created_at >= $1 and created_at < $2), 0) as upsell_amount
      from checkout_sessions
     where (created_at >= $1 and created_at < $2) or (completed_at >= $1 and completed_at < $2)
     group by 1
), orders as (
    select currency, count(*) as upgrades, coalesce(sum(amount_due_now), 0) as upgrade_amount
      from upgrade_orders where created_at >= $1 and created_at < $2 group by currency
)
select coalesce(s.currency, o.currency) as currency,
       coalesce(s.purchases, 0) as purchases, coalesce(s.purchase_amount, 0) as purchase_amount,
       coalesce(o.upgrades, 0) as upgrades, coalesce(o.upgrade_amount, 0) as upgrade_amount,
       coalesce(s.offered, 0) as offered, coalesce(s.accepted, 0) as accepted,
       coalesce(s.upsell_amount, 0) as upsell_amount
  from sessions s full join orders o on o.currency = s.currency
 order by 1
"""
