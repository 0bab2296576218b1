"""Helpers for the integration tests: the example catalog and an HTTP client on the real database."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from service.adapters.postgres.listener import Listener
from service.adapters.postgres.subscription_tables import find_api_key
from service.adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from service.app.catalog_file import apply_catalog, read_catalog
from service.entrypoints.http.app import init_app
from service.entrypoints.http.auth import Authenticator, KeyCache
from service.entrypoints.http.deps import Deps
from service.entrypoints.http.session_cache import SessionCache
from service.metrics import Metrics
from tests.process import UPSELL

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CATALOG = ROOT / "deploy" / "catalog.example.yaml"
ADMIN = {"Authorization": "Bearer admin-test-token"}


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


async def seed_example_catalog(pool: asyncpg.Pool) -> None:
    await apply_catalog(PostgresUnitOfWorkFactory(pool), read_catalog(EXAMPLE_CATALOG), dry_run=False)


async def _ready() -> dict[str, bool]:
    return {"database": True, "broker": True}


async def _no_gauges() -> None:
    return None


@asynccontextmanager
async def http_client(
    pool: asyncpg.Pool,
    clock: Clock,
    link_secret: str | None = None,
    sessions: SessionCache | None = None,
    cors_origins: tuple[str, ...] = (),
    demo: bool = False,
    keys: KeyCache | None = None,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """The HTTP app on the test's database, with the admin token `admin-test-token` (and upgrade links
    signed with `link_secret`, when given). GET answers are kept in `sessions` when given, as in a
    process, else never; pages of `cors_origins` may call the client-secret endpoints; `demo` serves
    the reference checkout page; live API keys are kept in `keys` when given, else never."""
    metrics = Metrics()
    app = init_app(
        Deps(
            new_uow=PostgresUnitOfWorkFactory(pool, None if sessions is None else sessions.changed_many),
            auth=Authenticator("admin-test-token", functools.partial(find_api_key, pool), metrics, keys),
            metrics=metrics,
            clock=clock,
            readiness=_ready,
            refresh_gauges=_no_gauges,
            link_secret=link_secret,
            sessions=sessions or SessionCache(),
            cors_origins=cors_origins,
            demo=demo,
        )
    )
    async with TestClient(TestServer(app)) as client:
        yield client


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> bool:
    """Waits until `check` holds (work the service does in the background), up to `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@asynccontextmanager
async def listening(
    pool: asyncpg.Pool,
    channels: Mapping[str, Callable[[str], None]],
    on_listening: Callable[[bool], None],
    is_listening: Callable[[], bool],
) -> AsyncIterator[None]:
    """A Listener as `upsell serve` runs one, for the block; entered once `is_listening()` holds."""
    task = asyncio.create_task(Listener(pool, channels, on_listening).run())

    async def ready() -> bool:
        return is_listening()

    try:
        assert await eventually(ready)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def outbox_types(pool: asyncpg.Pool, correlation_id: str) -> list[str]:
    rows = await pool.fetch("select type from outbox where correlation_id = $1 order by id", correlation_id)
    return [r["type"] for r in rows]


async def cli(database_url: str, amqp_url: str, *args: str) -> tuple[int, str, str]:
    """`upsell ARGS` as an operator runs it against the test's database and vhost: exit code, out, err."""
    env = {**os.environ, "UPSELL_DATABASE_URL": database_url, "UPSELL_AMQP_URL": amqp_url}
    process = await asyncio.create_subprocess_exec(
        UPSELL, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
