"""Fixtures of the fault-injection suite: service processes, a checkout backend and a collector, each on
the test's own database and vhost; every log is checked for secrets when the test ends."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.process import Server, apply_example_catalog, free_port, service_env, start, wait_ready
from tests.reliability.harness import Backend, Collector

TOKEN = "reliability-admin-token-19af"


@dataclass
class Fleet:
    """The service processes of one test, all on the same database and vhost."""

    env: dict[str, str]
    folder: Path
    servers: list[Server] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    """Secrets seen by the test (client secrets, API keys, card tokens); none may reach a log."""

    async def start(self) -> Server:
        env = {**self.env, "UPSELL_HTTP_PORT": str(free_port())}
        server = start(env, self.folder / f"serve-{len(self.servers)}.log")
        self.servers.append(server)
        await wait_ready(server)
        return server

    def replica(self, server: Server) -> str:
        """The replica id the process runs under (its partition leases carry it), from its start-up line."""
        for line in server.log.read_text(errors="replace").splitlines():
            if '"service_started"' in line:
                return str(json.loads(line)["replica"])
        raise LookupError(f"{server.log.name} has no start-up line")

    def logs(self) -> str:
        return "".join(s.log.read_text(errors="replace") for s in self.servers)


@pytest.fixture
async def fleet(database_url: str, amqp_url: str, tmp_path: Path) -> AsyncIterator[Fleet]:
    env = service_env(database_url, amqp_url, TOKEN)
    apply_example_catalog(env)
    running = Fleet(env, tmp_path, secrets={TOKEN, env["UPSELL_LINK_SECRET"]})
    try:
        yield running
    finally:
        for server in running.servers:
            server.kill()
    logs = running.logs()
    leaked = sorted(s for s in running.secrets if s in logs)
    assert not leaked, f"{len(leaked)} secret(s) appear in the service logs"


@pytest.fixture
async def backend(amqp_url: str) -> AsyncIterator[Backend]:
    publisher = Backend(amqp_url)
    yield publisher
    await publisher.close()


@pytest.fixture
async def collector(amqp_url: str) -> AsyncIterator[Collector]:
    worker = Collector(amqp_url)
    await worker.start()
    yield worker
    with contextlib.suppress(Exception):
        await worker.stop()
