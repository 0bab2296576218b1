"""The HTTP rows of `make bench`, every one driven by wrk (bench/wrk.py) with the keys and data shapes real
callers use: a backend API key (not the bootstrap admin token), many sessions, new sessions each time.

Baselines, measured in the same run: the aiohttp hello world for reads, and for writes a bare aiohttp
handler doing the same writes in one transaction on the service's pool settings (bench/write_baseline.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench import wrk
from tests.process import free_port

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SUBSCRIPTIONS = 1000
SLICE = 1.0
"""Seconds of each turn of a row and its baseline (wrk counts whole seconds)."""
BROWSER_ENCODINGS = "gzip, deflate, br, zstd"
"""What Chromium sends as Accept-Encoding: the script rows load what browsers are sent."""


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(pid: int, url: str, seconds: float, script: str, env: dict[str, str]) -> dict[str, Any]:
    """One wrk run, with the CPU the server `pid` spent per request and how busy wrk itself was."""
    before = cpu_seconds(pid)
    row = await asyncio.to_thread(wrk.run, url, seconds, script, env)
    row["server_cpu_s"] = cpu_seconds(pid) - before
    row["server_cpu_us"] = round(row["server_cpu_s"] / max(row["requests"], 1) * 1e6, 1)
    return row


@dataclass
class Side:
    """A server and the requests of one row, loaded in turns with another (`side_by_side`)."""

    pid: int
    url: str
    script: str
    env: dict[str, str]
    runs: list[dict[str, Any]] = field(default_factory=list)

    def next_env(self) -> dict[str, str]:
        """Scripts that spread over sessions go on from where the last run stopped (a toggle flips again
        rather than setting what it set before), and those that create take new ids each run."""
        env = {**self.env, "WRK_START": str(sum(run["requests"] for run in self.runs))}
        if "WRK_RUN" in env:
            env["WRK_RUN"] = f"{env['WRK_RUN']}r{len(self.runs)}"
        return env

    def row(self) -> dict[str, Any]:
        row = wrk.pooled(self.runs)
        cpu = sum(run["server_cpu_s"] for run in self.runs)
        row["server_cpu_us"] = round(cpu / max(row["requests"], 1) * 1e6, 1)
        return row


async def side_by_side(service: Side, baseline: Side, seconds: float) -> dict[str, Any]:
    """The service row with its baseline's, each loaded for `seconds` in all, in turns of SLICE seconds
    in the order baseline, service, service, baseline, baseline, ...: this machine's speed swings by a
    fifth within seconds (the same request costs one process 67 us of CPU in one five-second run and 92 in
    the next), and turns this short share every swing between the two."""
    for turn in range(max(round(seconds / SLICE), 1)):
        for side in (baseline, service) if turn % 2 == 0 else (service, baseline):
            side.runs.append(await measured(side.pid, side.url, SLICE, side.script, side.next_env()))
    return {**service.row(), "baseline": baseline.row()}


async def at_half(pid: int, url: str, seconds: float, script: str, env: dict[str, str], top: float) -> dict[str, Any]:
    """The row again at half of `top` requests a second: each connection pauses between requests, the
    pause corrected once from the rate the first try reached. Scripts that spread over sessions start at
    request `WRK_START` of `env` and go on from there each try."""
    target = top / 2
    pause = wrk.CONNECTIONS * 1000 / target
    row: dict[str, Any] = {}
    start = int(env.get("WRK_START", "0"))
    for attempt in range(2):
        paced = {**env, "WRK_DELAY_MS": str(round(pause, 2)), "WRK_START": str(start)}
        if "WRK_RUN" in env:
            paced["WRK_RUN"] = f"{env['WRK_RUN']}_{attempt}"  # new ids for every run that creates
        row = await measured(pid, url, seconds, script, paced)
        start += row["requests"]
        # A connection's cycle is its pause plus the answer's time; take off what the answers took.
        pause = max(pause - (wrk.CONNECTIONS * 1000 / row["rps"] - wrk.CONNECTIONS * 1000 / target), 0.1)
        if abs(row["rps"] - target) < 0.05 * target:
            break
    row["target_rps"] = round(target, 1)
    row.pop("quantiles_us", None)
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
        # The script as a browser takes it, gzip-encoded; its revalidation is a 304 only with that ETag.
        script = f"{base}/v1/elements/upsell.js"
        async with http.get(script, headers={"Accept-Encoding": BROWSER_ENCODINGS}) as answer:
            etag = answer.headers["ETag"]
        revalidate = {"Accept-Encoding": BROWSER_ENCODINGS, "If-None-Match": etag}
        async with http.get(script, headers=revalidate) as answer:
            assert answer.status == 304, answer.status
    return {"backend": key["secret"], "secret": created["client_secret"], "etag": etag}


@dataclass
class Baselines:
    """The hello world and the bare write handler, running beside the service for the whole HTTP part,
    so that each service row is loaded in turns with its baseline (`side_by_side`): the machine's speed
    drifts within minutes and swings within seconds, and a ratio of two figures taken apart drifts with
    it."""

    hello_pid: int
    hello_url: str
    bare_pid: int
    bare_url: str

    async def hello(self, seconds: float) -> dict[str, Any]:
        row = await measured(self.hello_pid, self.hello_url, seconds, "headers.lua", {})
        row.pop("quantiles_us")
        return row

    def hello_side(self) -> Side:
        return Side(self.hello_pid, self.hello_url, "headers.lua", {})

    def _bare_env(self) -> dict[str, str]:
        return {"WRK_PREFIX": "/write/", "WRK_RUN": f"w{uuid.uuid4().hex[:8]}"}

    def bare_side(self) -> Side:
        return Side(self.bare_pid, self.bare_url, "write.lua", self._bare_env())

    async def bare_half(self, seconds: float, top: float) -> dict[str, Any]:
        return await at_half(self.bare_pid, self.bare_url, seconds, "write.lua", self._bare_env(), top)


@contextlib.asynccontextmanager
async def baselines(bare_database_url: str) -> AsyncIterator[Baselines]:
    hello_port, bare_port = free_port(), free_port()
    async with (
        process("hello.py", str(hello_port)) as hello,
        process("write_baseline.py", str(bare_port), bare_database_url) as bare,
    ):
        assert bare.stdout is not None
        await asyncio.to_thread(bare.stdout.readline)
        hello_url = f"http://127.0.0.1:{hello_port}/hello"
        await wait_http(hello_url)
        yield Baselines(hello.pid, hello_url, bare.pid, f"http://127.0.0.1:{bare_port}/")


async def service_rows(
    pid: int, base: str, admin: str, sessions: str, count: int, seconds: float, baseline: Baselines
) -> dict[str, Any]:
    """Every service row with its baseline, loaded in turns with it; `sessions` prefixes `count` sessions
    registered before (svc_0 ...)."""
    keys = await prepare(base, admin)
    backend = {"WRK_AUTHORIZATION": keys["backend"]}

    async def read(url: str, script: str, env: dict[str, str]) -> dict[str, Any]:
        return await side_by_side(Side(pid, url, script, env), baseline.hello_side(), seconds)

    async def write(url: str, script: str, env: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
        top = await side_by_side(Side(pid, url, script, env), baseline.bare_side(), seconds)
        bare_half = await baseline.bare_half(seconds, top["baseline"]["rps"])
        # A toggle flips each session again: one set to what it already was writes nothing.
        later = {**env, "WRK_START": str(top["requests"])}
        half = {**await at_half(pid, url, seconds, script, later, top["rps"]), "baseline": bare_half}
        return top, half

    one = f"{base}/v1/checkout/sessions/cs_http"
    rows: dict[str, Any] = {
        "get_secret": await read(one, "headers.lua", {"WRK_AUTHORIZATION": keys["secret"]}),
        "get_backend": await read(one, "headers.lua", backend),
    }
    many = {**backend, "WRK_PREFIX": f"/v1/checkout/sessions/{sessions}_", "WRK_SPREAD": str(count)}
    rows["get_many"] = {**await read(base + "/", "spread_get.lua", many), "sessions": count}
    rows["toggle"], rows["toggle_half"] = await write(base + "/", "toggle_many.lua", many)
    create = {**backend, "WRK_RUN": f"cs_wrk_{uuid.uuid4().hex[:6]}"}
    rows["create"], rows["create_half"] = await write(f"{base}/v1/checkout/sessions", "create.lua", create)
    previews = {**backend, "WRK_PREFIX": "/v1/subscriptions/sub_", "WRK_SPREAD": str(SUBSCRIPTIONS)}
    rows["preview"] = await read(base + "/", "preview.lua", previews)
    script = f"{base}/v1/elements/upsell.js"
    browser = {"WRK_ACCEPT_ENCODING": BROWSER_ENCODINGS}
    rows["script"] = await read(script, "headers.lua", browser)
    rows["script_304"] = await read(script, "headers.lua", {**browser, "WRK_IF_NONE_MATCH": keys["etag"]})
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
