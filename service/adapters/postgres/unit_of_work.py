"""A unit of work: one pooled connection and one transaction around a use case."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from asyncpg.transaction import Transaction

from service.adapters.postgres.repositories import (
    DocumentTable,
    InboxTable,
    OutboxTable,
    ParkedTable,
    PriceTable,
    ProductTable,
    PromotionCodeTable,
    SessionTable,
)
from service.adapters.postgres.statements import Statements
from service.adapters.postgres.subscription_tables import (
    ApiKeyTable,
    ReportQueries,
    UpgradeLinkTable,
    UpgradeOrderTable,
    UpgradePathTable,
)
from service.app.errors import InvalidInput
from service.app.ports import (
    ApiKeys,
    Documents,
    Inbox,
    Outbox,
    ParkedEvents,
    Prices,
    Products,
    PromotionCodes,
    Reports,
    Sessions,
    UnitOfWork,
    UpgradeLinks,
    UpgradeOrders,
    UpgradePaths,
)
from service.domain.catalog import Coupon, Violation
from service.domain.subscriptions import Subscription


class PostgresUnitOfWork:
    products: Products
    prices: Prices
    coupons: Documents[Coupon]
    promotion_codes: PromotionCodes
    sessions: Sessions
    inbox: Inbox
    parked: ParkedEvents
    outbox: Outbox
    api_keys: ApiKeys
    subscriptions: Documents[Subscription]
    upgrade_paths: UpgradePaths
    upgrade_orders: UpgradeOrders
    upgrade_links: UpgradeLinks
    reports: Reports

    def __init__(self, pool: asyncpg.Pool, *, read_only: bool = False) -> None:
        self._pool = pool
        self._read_only = read_only
        self._conn: PoolConnectionProxy | None = None
        self._tx: Transaction | None = None

    async def __aenter__(self) -> PostgresUnitOfWork:
        conn = await self._pool.acquire()
        try:
            # A read of one row needs no transaction: two round trips fewer.
            tx = None if self._read_only else conn.transaction()
            if tx is not None:
                await tx.start()
        except BaseException:
            await self._pool.release(conn)
            raise
        self._conn, self._tx = conn, tx
        self._locked: set[str] = set()
        self._db = c = Statements(conn)  # type: ignore[arg-type]
        self.products = ProductTable(c)
        self.prices = PriceTable(c)
        self.coupons = DocumentTable(c, "coupons", Coupon)
        self.promotion_codes = PromotionCodeTable(c)
        self.sessions = SessionTable(c)
        self.inbox = InboxTable(c)
        self.parked = ParkedTable(c)
        self.outbox = OutboxTable(c)
        self.api_keys = ApiKeyTable(c)
        self.subscriptions = DocumentTable(c, "subscriptions", Subscription)
        self.upgrade_paths = UpgradePathTable(c)
        self.upgrade_orders = UpgradeOrderTable(c)
        self.upgrade_links = UpgradeLinkTable(c)
        self.reports = ReportQueries(c)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._conn is not None
        try:
            if self._tx is None:
                pass
            elif exc_type is None:
                try:
                    # The queued writes go out last: one that fails there fails the unit of work.
                    await self._db.flush()
                except BaseException as failed:
                    await self._rollback()
                    if not isinstance(failed, asyncpg.DataError):
                        raise
                    exc = failed
                else:
                    await self._tx.commit()
            else:
                await self._rollback()
        finally:
            await self._pool.release(self._conn)
            self._conn = self._tx = None
        if isinstance(exc, asyncpg.DataError):
            # Text PostgreSQL cannot store (a NUL character, say) is the caller's bad input.
            raise InvalidInput(
                [Violation("invalid_data", str(exc))], "the input holds data that cannot be stored"
            ) from exc

    async def lock_session(self, session_id: str) -> None:
        assert self._conn is not None
        # A transaction-scoped lock is held until the end: taking it again would only cost a round trip.
        if session_id in self._locked:
            return
        await self._db.execute("select pg_advisory_xact_lock(1, hashtext($1))", session_id)
        self._locked.add(session_id)

    async def lock_sessions(self, session_ids: Iterable[str]) -> None:
        # In the order of their keys, so that two holders of several locks never wait for each other.
        wanted = list(set(session_ids) - self._locked)
        if not wanted:
            return
        await self._db.execute(
            "select pg_advisory_xact_lock(1, key) from"
            " (select distinct hashtext(id) as key from unnest($1::text[]) as id order by 1) as keys",
            wanted,
        )
        self._locked.update(wanted)

    async def _rollback(self) -> None:
        assert self._conn is not None
        assert self._tx is not None
        try:
            await self._tx.rollback()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError):
            # The connection is broken (cut mid-query, say): it must not go back to the pool as it
            # is. The original error matters more than this one.
            self._conn.terminate()


class PostgresUnitOfWorkFactory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        return PostgresUnitOfWork(self.pool, read_only=read_only)
