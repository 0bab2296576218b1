"""The write baseline: a bare aiohttp handler that does, in one transaction, what an accepted session write
costs the database (one row insert, one outbox insert, a NOTIFY, commit), on the service's pool settings.

`python bench/write_baseline.py PORT DATABASE_URL`; `POST /write/{id}` with any body. It prints `ready`
once it listens. The ratio of a service write row to this one shows what the service adds on top of the
database's own cost.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg
import uvloop
from aiohttp import web

from service.bootstrap import create_pool

SCHEMA = """
create table if not exists bare_sessions (id text primary key, body bytea not null, version int not null);
create table if not exists bare_outbox (
    id bigserial primary key, correlation_id text not null, body bytea not null,
    created_at timestamptz not null default now(), published_at timestamptz);
"""
POOL = web.AppKey("pool", asyncpg.Pool)


async def write(request: web.Request) -> web.Response:
    body = await request.read()
    key = request.match_info["id"]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await conn.execute("insert into bare_sessions (id, body, version) values ($1, $2, 1)", key, body)
        await conn.execute("insert into bare_outbox (correlation_id, body) values ($1, $2)", key, body)
        await conn.execute("select pg_notify('bare_outbox', '')")
    return web.Response(body=b'{"id": "' + key.encode() + b'"}', status=201, content_type="application/json")


async def main(port: int, database_url: str) -> None:
    pool = await create_pool(database_url)
    await pool.execute(SCHEMA)
    app = web.Application()
    app[POOL] = pool
    app.router.add_post("/write/{id}", write)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.install()
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
