"""Fixtures shared by the integration and end-to-end tests: a fresh database and vhost per test."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from service.adapters.postgres.migrate import migrate
from service.settings import Settings

BASE = Settings.from_env()


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """A new, migrated database for one test, dropped afterwards."""
    name = f"upsell_test_{uuid.uuid4().hex[:12]}"
    url = _with_path(BASE.database_url, f"/{name}")
    await migrate(url)
    yield url
    admin = await asyncpg.connect(_with_path(BASE.database_url, "/postgres"))
    try:
        await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created: asyncpg.Pool = await asyncpg.create_pool(database_url, min_size=1, max_size=5)
    yield created
    await created.close()


def _management(method: str, path: str, body: dict[str, str] | None = None) -> None:
    """The management HTTP API (compose publishes it on 15672) when `rabbitmqctl` is not installed."""
    parts = urlsplit(BASE.amqp_url)
    request = urllib.request.Request(
        f"http://{parts.hostname or '127.0.0.1'}:15672/api/{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    credentials = f"{parts.username or 'guest'}:{parts.password or 'guest'}".encode()
    request.add_header("Authorization", "Basic " + base64.b64encode(credentials).decode())
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - a local broker's own API
        pass


def _add_vhost(vhost: str) -> None:
    user = urlsplit(BASE.amqp_url).username or "guest"
    binary = shutil.which("rabbitmqctl")
    if binary is not None:
        subprocess.run([binary, "-q", "add_vhost", vhost], check=True, capture_output=True, timeout=60)
        permissions = ["-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"]
        subprocess.run([binary, *permissions], check=True, capture_output=True, timeout=60)
        return
    quoted = urllib.parse.quote(vhost, safe="")
    _management("PUT", f"vhosts/{quoted}")
    _management("PUT", f"permissions/{quoted}/{user}", {"configure": ".*", "write": ".*", "read": ".*"})


def _delete_vhost(vhost: str) -> None:
    binary = shutil.which("rabbitmqctl")
    if binary is not None:
        subprocess.run([binary, "-q", "delete_vhost", vhost], check=True, capture_output=True, timeout=60)
    else:
        _management("DELETE", f"vhosts/{urllib.parse.quote(vhost, safe='')}")


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A new RabbitMQ vhost for one test, deleted afterwards: by `rabbitmqctl` where the broker is
    installed here, else through the management API (the broker of deploy/compose.yaml)."""
    vhost = f"upsell-test-{uuid.uuid4().hex[:12]}"
    _add_vhost(vhost)
    yield _with_path(BASE.amqp_url, f"/{vhost}")
    _delete_vhost(vhost)
