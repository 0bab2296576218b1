"""`upsell serve` as users run it, on the test's database and vhost with the example catalog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.process import Server, apply_example_catalog, service_env, start, wait_ready

TOKEN = "e2e-admin-token-5f1c"


@pytest.fixture
async def server(database_url: str, amqp_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    env = service_env(database_url, amqp_url, TOKEN)
    apply_example_catalog(env)
    running = start(env, tmp_path / "serve.log")
    try:
        await wait_ready(running)
        yield running
    finally:
        running.kill()
        # Shown by pytest only when the test fails: what the service said about it.
        print("".join(running.log.read_text().splitlines(keepends=True)[-80:]))
