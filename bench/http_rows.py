"""The HTTP rows of `make bench`, every one driven by wrk (bench/wrk.py) with the keys and data shapes real
callers use: a backend API key (not the bootstrap admin token), many sessions, new sessions each time.

Baselines, measured in the same run: the aiohttp hello world for reads, and for writes a bare aiohttp
handler doing the same writes in one transaction on the service's pool settings (bench/write_baseline.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench import wrk

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SUBSCRIPTIONS = 1000


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(pid: int, url: str, seconds: float, script: str, env: dict[str, str]) -> dict[str, Any]:
    """One wrk run, with the CPU the server `pid` spent per request and how busy wrk itself was."""
    before = cpu_seconds(pid)
    row = await asyncio.to_thread(wrk.run, url, seconds, script, env)
    row["server_cpu_us"] = round((cpu_seconds(pid) - before) / max(row["requests"], 1) * 1e6, 1)
    return row


async def at_half(pid: int, url: str, seconds: float, script: str, env: dict[str, str], top: float) -> dict[str, Any]:
    """The row again at half of `top` requests a second: each connection pauses between requests, the
    pause corrected once from the rate the first try reached."""
    target = top / 2
    pause = wrk.CONNECTIONS * 1000 / target
    row: dict[str, Any] = {}
    for attempt in range(2):
        paced = {**env, "WRK_DELAY_MS": str(round(pause, 2))}
        if "WRK_RUN" in env:
            paced["WRK_RUN"] = f"{env['WRK_RUN']}_{attempt}"  # new ids for every run that creates
        row = await measured(pid, url, seconds, script, paced)
        # A connection's cycle is its pause plus the answer's time; take off what the answers took.
        pause = max(pause - (wrk.CONNECTIONS * 1000 / row["rps"] - wrk.CONNECTIONS * 1000 / target), 0.1)
        if abs(row["rps"] - target) < 0.05 * target:
            break
    row["target_rps"] = round(target, 1)
    return row


async def _post(http: aiohttp.ClientSession, url: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as answer:
        assert answer.status in (200, 201), await answer.text()
        found: dict[str, Any] = await answer.json()
        return found


async def prepare(base: str, admin: str) -> dict[str, str]:
    """A backend API key, a session with its client secret, SUBSCRIPTIONS subscriptions on Pro monthly."""
    async with aiohttp.ClientSession() as http:
        key = await _post(http, f"{base}/v1/api-keys", admin, {"name": "bench-backend", "roles": ["backend"]})
        session = {
            "id": "cs_http",
            "mode": "subscription",
            "currency": "usd",
            "line_items": [{"price": "price_pro_monthly"}, {"price": "price_setup"}],
        }
        created = await _post(http, f"{base}/v1/checkout/sessions", key["secret"], session)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
        for index in range(SUBSCRIPTIONS):
            body = {
                "customer": f"cus_{index}",
                "price": "price_pro_monthly",
                "status": "active",
                "current_period_start": start.isoformat(),
                "current_period_end": (start + timedelta(days=30)).isoformat(),
                "payment_method": {"type": "card"},
                "currency": "usd",
            }
            headers = {"Authorization": f"Bearer {key['secret']}"}
            async with http.put(f"{base}/v1/subscriptions/sub_{index}", json=body, headers=headers) as answer:
                assert answer.status in (200, 201), await answer.text()
        async with http.get(f"{base}/v1/elements/upsell.js") as answer:
            etag = answer.headers["ETag"]
    return {"backend": key["secret"], "secret": created["client_secret"], "etag": etag}


async def service_rows(pid: int, base: str, admin: str, sessions: str, count: int, seconds: float) -> dict[str, Any]:
    """Every service row; `sessions` prefixes `count` sessions registered before (svc_0 ...)."""
    keys = await prepare(base, admin)
    backend = {"WRK_AUTHORIZATION": keys["backend"]}
    one = f"{base}/v1/checkout/sessions/cs_http"
    rows: dict[str, Any] = {
        "get_secret": await measured(pid, one, seconds, "headers.lua", {"WRK_AUTHORIZATION": keys["secret"]}),
        "get_backend": await measured(pid, one, seconds, "headers.lua", backend),
    }
    many = {**backend, "WRK_PREFIX": f"/v1/checkout/sessions/{sessions}_", "WRK_SPREAD": str(count)}
    rows["get_many"] = await measured(pid, base + "/", seconds, "spread_get.lua", many)
    rows["get_many"]["sessions"] = count
    rows["toggle"] = await measured(pid, base + "/", seconds, "toggle_many.lua", many)
    rows["toggle_half"] = await at_half(pid, base + "/", seconds, "toggle_many.lua", many, rows["toggle"]["rps"])
    create = {**backend, "WRK_RUN": f"cs_wrk_{uuid.uuid4().hex[:6]}"}
    rows["create"] = await measured(pid, f"{base}/v1/checkout/sessions", seconds, "create.lua", create)
    rows["create_half"] = await at_half(
        pid, f"{base}/v1/checkout/sessions", seconds, "create.lua", create, rows["create"]["rps"]
    )
    previews = {**backend, "WRK_PREFIX": "/v1/subscriptions/sub_", "WRK_SPREAD": str(SUBSCRIPTIONS)}
    rows["preview"] = await measured(pid, base + "/", seconds, "preview.lua", previews)
    script = f"{base}/v1/elements/upsell.js"
    rows["script"] = await measured(pid, script, seconds, "headers.lua", {})
    rows["script_304"] = await measured(pid, script, seconds, "headers.lua", {"WRK_IF_NONE_MATCH": keys["etag"]})
    return rows


@contextlib.asynccontextmanager
async def process(script: str, *args: str) -> AsyncIterator[subprocess.Popen[bytes]]:
    """A baseline server of bench/, stopped on the way out."""
    started = subprocess.Popen([PYTHON, str(ROOT / "bench" / script), *args], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        yield started
    finally:
        started.terminate()
        started.wait(10)


async def hello_row(port: int, seconds: float) -> dict[str, Any]:
    async with process("hello.py", str(port)) as hello:
        await wait_http(f"http://127.0.0.1:{port}/hello")
        return await measured(hello.pid, f"http://127.0.0.1:{port}/hello", seconds, "headers.lua", {})


async def write_baseline_rows(port: int, database_url: str, seconds: float) -> dict[str, Any]:
    """The bare write handler flat out, and at half its rate."""
    async with process("write_baseline.py", str(port), database_url) as bare:
        assert bare.stdout is not None
        await asyncio.to_thread(bare.stdout.readline)
        env = {"WRK_PREFIX": "/write/", "WRK_RUN": f"w{uuid.uuid4().hex[:6]}"}
        url = f"http://127.0.0.1:{port}/"
        top = await measured(bare.pid, url, seconds, "write.lua", env)
        half = await at_half(bare.pid, url, seconds, "write.lua", env, top["rps"])
        return {"top": top, "half": half}


async def wait_http(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(url)
