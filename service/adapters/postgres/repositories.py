"""PostgreSQL implementations of the storage ports, all bound to one connection and transaction."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import asyncpg
import msgspec

from service.adapters.postgres.statements import Statements
from service.domain.catalog import Price, Product, PromotionCode
from service.domain.session import CheckoutSession, invoice, upsell_added

T = TypeVar("T")


_DECODERS: dict[object, msgspec.json.Decoder[Any]] = {}


def decoder_of(kind: type[T]) -> msgspec.json.Decoder[T]:
    """One decoder per kind for the process: a unit of work builds its tables on every use case."""
    found = _DECODERS.get(kind)
    if found is None:
        found = _DECODERS[kind] = msgspec.json.Decoder(kind)
    return found


@functools.cache
def _upsert_sql(table: str, parent: str | None) -> str:
    columns = "id, body" if parent is None else f"id, body, {parent}"
    values = "$1, $2" if parent is None else "$1, $2, $3"
    updates = "body = excluded.body" if parent is None else f"body = excluded.body, {parent} = excluded.{parent}"
    return (
        f"insert into {table} ({columns}) values ({values})"
        f" on conflict (id) do update set {updates}, updated_at = now()"
    )


class DocumentTable(Generic[T]):
    """A table of JSON documents keyed by `id`, decoded straight into frozen domain objects.

    `parent` names a column kept beside the document for joins and foreign keys (a price's product),
    with the function that reads it from the item.
    """

    def __init__(
        self,
        conn: Statements,
        table: str,
        kind: type[T],
        parent: tuple[str, Callable[[T], str]] | None = None,
    ) -> None:
        self._conn = conn
        self._table = table
        self._decoder: msgspec.json.Decoder[T] = decoder_of(kind)
        self._parent = parent
        self._upsert = _upsert_sql(table, None if parent is None else parent[0])

    async def get(self, key: str) -> T | None:
        body = await self._conn.fetchval(f"select body from {self._table} where id = $1", key)
        return None if body is None else self._decoder.decode(body)

    async def put(self, key: str, item: T) -> None:
        body = msgspec.json.encode(item).decode()
        if self._parent is None:
            await self._conn.execute(self._upsert, key, body)
        else:
            await self._conn.execute(self._upsert, key, body, self._parent[1](item))


class ProductTable(DocumentTable[Product]):
    def __init__(self, conn: Statements) -> None:
        super().__init__(conn, "products", Product)

    async def in_group(self, plan_group: str) -> list[Product]:
        rows = await self._conn.fetch("select body from products where body->>'plan_group' = $1", plan_group)
        return [self._decoder.decode(r["body"]) for r in rows]


class PriceTable(DocumentTable[Price]):
    def __init__(self, conn: Statements) -> None:
        super().__init__(conn, "prices", Price, ("product", lambda price: price.product))

    async def with_upsells(self, keys: Iterable[str]) -> dict[str, Price]:
        """The prices and, in the same round trip, the prices they name as their upsell."""
        rows = await self._conn.fetch(
            "select id, body from prices where id = any($1::text[])"
            " or id in (select body->>'upsell' from prices where id = any($1::text[]))",
            list(set(keys)),
        )
        return {r["id"]: self._decoder.decode(r["body"]) for r in rows}

    async def of_product(self, product_id: str) -> list[Price]:
        rows = await self._conn.fetch("select body from prices where product = $1 order by id", product_id)
        return [self._decoder.decode(r["body"]) for r in rows]

    async def upselling_to(self, keys: Iterable[str]) -> list[Price]:
        rows = await self._conn.fetch(
            "select body from prices where body->>'upsell' = any($1::text[]) order by id", list(keys)
        )
        return [self._decoder.decode(r["body"]) for r in rows]


class PromotionCodeTable(DocumentTable[PromotionCode]):
    """Promotion codes; the redemption count lives in its own column, which upserts never touch."""

    def __init__(self, conn: Statements) -> None:
        super().__init__(conn, "promotion_codes", PromotionCode, ("coupon", lambda promo: promo.coupon))

    def _with_count(self, row: asyncpg.Record) -> PromotionCode:
        return dataclasses.replace(self._decoder.decode(row["body"]), times_redeemed=row["times_redeemed"])

    async def get(self, key: str) -> PromotionCode | None:
        row = await self._conn.fetchrow("select body, times_redeemed from promotion_codes where id = $1", key)
        return None if row is None else self._with_count(row)

    async def redeem(self, code: str) -> bool:
        """Counts one redemption atomically; False when it went past `max_redemptions`."""
        row = await self._conn.fetchrow(
            "update promotion_codes set times_redeemed = times_redeemed + 1 where id = $1"
            " returning times_redeemed, (body->>'max_redemptions')::bigint as max_redemptions",
            code,
        )
        return row is None or row["max_redemptions"] is None or row["times_redeemed"] <= row["max_redemptions"]


_session_decoder = msgspec.json.Decoder(CheckoutSession)


def decode_session(state: str | bytes) -> CheckoutSession:
    return _session_decoder.decode(state)


_INSERT_SESSION = (
    "insert into checkout_sessions (id, status, version, state, client_secret_hash, created_at)"
    " values ($1, $2, $3, $4, $5, $6)"
)


class SessionTable:
    def __init__(self, conn: Statements) -> None:
        self._conn = conn
        self.changed: set[str] = set()
        """Sessions this unit of work changed (new ones are not changes)."""

    async def get(self, session_id: str, *, for_update: bool = False) -> CheckoutSession | None:
        lock = " for update" if for_update else ""
        state = await self._conn.fetchval(f"select state from checkout_sessions where id = $1{lock}", session_id)
        return None if state is None else _session_decoder.decode(state)

    async def add(self, session: CheckoutSession, secret_hash: bytes | None, *, free: bool = False) -> bool:
        args = (
            session.id,
            session.status,
            session.version,
            msgspec.json.encode(session).decode(),
            secret_hash,
            session.created_at,
        )
        if free:
            self._conn.later(_INSERT_SESSION, *args)
            return True
        inserted = await self._conn.fetchval(f"{_INSERT_SESSION} on conflict (id) do nothing returning true", *args)
        return bool(inserted)

    async def save(self, session: CheckoutSession) -> None:
        # A completed session keeps its first invoice's figures in columns of their own, for reporting.
        done = session.status == "complete"
        self.changed.add(session.id)
        self._conn.later(
            "update checkout_sessions set status = $2, version = $3, state = $4, completed_at = $5,"
            " amount_total = $6, upsell_amount = $7, updated_at = now() where id = $1",
            session.id,
            session.status,
            session.version,
            msgspec.json.encode(session).decode(),
            session.completed_at,
            invoice(session).total if done else None,
            upsell_added(session) if done else None,
        )

    async def set_secret_hash(self, session_id: str, secret_hash: bytes) -> None:
        self.changed.add(session_id)
        await self._conn.execute(
            "update checkout_sessions set client_secret_hash = $2 where id = $1", session_id, secret_hash
        )


class InboxTable:
    def __init__(self, conn: Statements) -> None:
        self._conn = conn

    async def first_delivery(self, event_id: str, event_type: str) -> bool:
        # A concurrent duplicate blocks on the key until the first commits, then finds it taken.
        inserted = await self._conn.fetchval(
            "insert into inbox (event_id, type) values ($1, $2) on conflict do nothing returning true",
            event_id,
            event_type,
        )
        return bool(inserted)

    async def forget(self, event_id: str) -> None:
        await self._conn.execute("delete from inbox where event_id = $1", event_id)


class ParkedTable:
    def __init__(self, conn: Statements) -> None:
        self._conn = conn

    async def park(self, event_id: str, session_id: str, body: bytes) -> None:
        await self._conn.execute(
            "insert into parked_events (event_id, session_id, body) values ($1, $2, $3)"
            " on conflict (event_id) do nothing",
            event_id,
            session_id,
            body,
        )

    async def take(self, session_id: str) -> list[bytes]:
        rows = await self._conn.fetch(
            "with taken as (delete from parked_events where session_id = $1 returning seq, body)"
            " select body from taken order by seq",
            session_id,
        )
        return [bytes(r["body"]) for r in rows]

    async def drop(self, seqs: Iterable[int]) -> None:
        if wanted := list(seqs):
            self._conn.later("delete from parked_events where seq = any($1::bigint[])", wanted)
