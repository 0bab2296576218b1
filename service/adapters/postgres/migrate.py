"""`upsell migrate`: creates the database when missing and applies the SQL files in order, once each."""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

log = structlog.get_logger(__name__)

_LOCK = 7_143_211  # advisory lock key, so concurrent `migrate` runs apply each file once


def _split_database(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "postgres"
    return name, urlunsplit(parts._replace(path="/postgres"))


async def ensure_database(url: str) -> bool:
    """Creates the database named by `url` if it does not exist; True when it was created."""
    name, admin_url = _split_database(url)
    conn = await asyncpg.connect(admin_url)
    try:
        if await conn.fetchval("select 1 from pg_database where datname = $1", name):
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await conn.execute(f"create database {quoted}")
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await conn.close()


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("service.adapters.postgres").joinpath("migrations")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


async def migrate(url: str) -> list[str]:
    """Applies pending migrations, each in its own transaction; returns the versions applied."""
    if await ensure_database(url):
        log.info("database_created", database=_split_database(url)[0])
    conn = await asyncpg.connect(url)
    applied: list[str] = []
    try:
        await conn.execute("select pg_advisory_lock($1)", _LOCK)
        await conn.execute(
            "create table if not exists schema_migrations ("
            " version text primary key, applied_at timestamptz not null default now())"
        )
        done = {r["version"] for r in await conn.fetch("select version from schema_migrations")}
        for version, sql in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("insert into schema_migrations (version) values ($1)", version)
            applied.append(version)
            log.info("migration_applied", version=version)
    finally:
        await conn.close()
    return applied
