"""The HTTP interface under generated input (schemathesis against /openapi.json), oversized bodies, and
the secrets of every kind kept out of the logs."""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.reliability.conftest import Fleet
from tests.reliability.harness import Backend, Collector, created, outcome

pytestmark = pytest.mark.reliability
SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))


CONFIG = Path(__file__).with_name("schemathesis.toml")


async def test_generated_requests_get_no_5xx_and_answers_match_the_document(fleet: Fleet, collector: Collector) -> None:
    # Installed with the dev extra, as `make test` does: missing, the test fails rather than skips.
    assert SCHEMATHESIS is not None, "schemathesis is missing: run `make install`"
    server = await fleet.start()
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.base}/v1/api-keys", json={"name": "fuzz", "roles": ["backend"]}, headers=server.admin
        ) as response,
    ):
        backend = (await response.json())["secret"]
    fleet.secrets.add(backend)
    summaries = []
    for who, token in (("backend key", backend), ("admin token", server.token)):
        command = [
            SCHEMATHESIS,
            "--config-file",
            str(CONFIG),
            "run",
            f"{server.base}/openapi.json",
            "--max-examples",
            "15",
            "--seed",
            "20261208",
            # One worker: two share hypothesis's cache of lambda sources, which fails now and then.
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--header",
            f"Authorization: Bearer {token}",
        ]
        ran = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=600)
        report = ran.stdout[-6000:] + ran.stderr[-2000:]
        assert ran.returncode == 0, report
        print(ran.stdout)
        summaries.append(f"{who}: {_summary(ran.stdout)}")
    logs = fleet.logs()
    assert '"status":500' not in logs.replace(" ", "")
    outcome("HTTP fuzzing (schemathesis, every check)", 0, set(), collector, None, "; ".join(summaries))


def _summary(stdout: str) -> str:
    lines = [line.strip() for line in stdout.splitlines() if "passed" in line or "test cases" in line.lower()]
    return lines[-1] if lines else ""


async def test_an_oversized_body_is_413_and_secrets_never_reach_the_logs(
    fleet: Fleet, backend: Backend, collector: Collector
) -> None:
    server = await fleet.start()
    async with aiohttp.ClientSession() as http:
        big = b'{"id": "' + b"x" * (2 * 1024 * 1024) + b'"}'
        headers = {**server.admin, "Content-Type": "application/json"}
        async with http.post(f"{server.base}/v1/checkout/sessions", data=io.BytesIO(big), headers=headers) as response:
            assert response.status == 413
            assert response.content_type == "application/problem+json"
        # Every kind of secret goes through the service once: an API key, a client secret, a card token
        # and an upgrade link (its token is the link secret's signature).
        async with http.post(
            f"{server.base}/v1/api-keys", json={"name": "ops", "roles": ["operator", "backend"]}, headers=server.admin
        ) as response:
            key = (await response.json())["secret"]
        operator = {"Authorization": f"Bearer {key}"}
        async with http.post(f"{server.base}/v1/checkout/sessions", json=created("cs_s"), headers=operator) as response:
            client_secret = (await response.json())["client_secret"]
        async with http.get(
            f"{server.base}/v1/checkout/sessions/cs_s", headers={"Authorization": f"Bearer {client_secret}"}
        ) as response:
            assert response.status == 200
        subscription = {
            "customer": "cus_s",
            "price": "price_pro_monthly",
            "status": "active",
            "current_period_start": "2026-11-01T00:00:00Z",
            "current_period_end": "2026-12-01T00:00:00Z",
            "payment_method": {"type": "card"},
            "currency": "usd",
        }
        for sub in ("sub_s1", "sub_s2"):
            async with http.put(
                f"{server.base}/v1/subscriptions/{sub}", json=subscription, headers=operator
            ) as response:
                assert response.status == 201
        card = "tok_card_3f9a77c1"
        order = {"upgrade_path": "path_pro_to_team", "payment": {"method": "new", "card_token": card}}
        async with http.post(
            f"{server.base}/v1/subscriptions/sub_s1/upgrade-orders", json=order, headers=operator
        ) as r:
            assert r.status == 201
        async with http.post(
            f"{server.base}/v1/upgrade-paths/path_pro_to_team/links", json={"subscription": "sub_s2"}, headers=operator
        ) as response:
            token = (await response.json())["token"]
        async with http.post(f"{server.base}/v1/upgrade-links/{token}/accept") as response:
            assert response.status == 201
        async with http.get(
            f"{server.base}/v1/checkout/sessions/cs_s", headers={"Authorization": "Bearer uk_wrong"}
        ) as r:
            assert r.status == 401
    fleet.secrets |= {key, client_secret, card, token, token.partition(".")[2]}
    logs = fleet.logs()
    assert '"http_request"' in logs  # the requests were logged, just not their secrets
    leaked = sorted(s for s in fleet.secrets if s in logs)
    outcome("secrets in logs", 0, set(), collector, None, f"{len(fleet.secrets)} secrets checked, {len(leaked)} found")
    assert not leaked
