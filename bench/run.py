"""`make bench`: the service against baselines measured in the same run, on loopback, bounded in time.

1. Pipeline: N `checkout.session.created` published to `checkout`, timed until N `upsell_evaluated`
   arrive from `upsell`; baseline: bench/relay_baseline.py (same durability, no database, no logic).
2. Latency: at half the service's measured rate, publish-to-receipt p50 / p95 / p99.
3. HTTP (bench/http_rows.py, driven by wrk): GET of one session (client secret, backend key) and of many
   (each read from the database), toggles over many sessions, session creation, upgrade previews, the
   component's script; baselines: aiohttp hello world, and a bare aiohttp + asyncpg handler doing the same
   writes for the write rows.
4. Domain: eligibility and savings per session, in microseconds.
5. Memory: RSS of the service after 10k and after 100k sessions.
6. Replicas: the pipeline again with 1, 2 and 3 replicas of `upsell serve` sharing the partitions
   (BENCH_REPLICAS), each with the CPU per event of the service, RabbitMQ and PostgreSQL
   (bench/components.py), against the bare relay measured just before and just after them.

Writes bench/results/<time>.json and the table of docs/performance.md. BENCH_ONLY=pipeline runs the
replica rows alone (with their bare relay): it writes the results file and prints their table, and leaves
docs/performance.md as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import subprocess
import sys
import time
import timeit
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage

from bench import http_rows
from bench.components import Meter, machine_busy_seconds
from bench.http_rows import cpu_seconds
from service.adapters.postgres.migrate import migrate
from service.adapters.rabbitmq.topology import Topology, declare
from service.domain.partitions import PARTITIONS
from tests.broker import envelope
from tests.conftest import BASE, _add_vhost, _delete_vhost, _with_path
from tests.process import ROOT, Server, apply_example_catalog, service_env, start, wait_ready

PIPELINE_EVENTS = int(os.environ.get("BENCH_EVENTS", "10000"))
LARGE_SESSIONS = int(os.environ.get("BENCH_LARGE_SESSIONS", "100000"))
HTTP_SECONDS = float(os.environ.get("BENCH_HTTP_SECONDS", "5"))
LATENCY_SECONDS = 10.0
ONLY = os.environ.get("BENCH_ONLY", "")
WARMUP = min(500, max(PIPELINE_EVENTS // 10, 50))
"""Events sent before each replica row and each of its baselines, untimed: new processes' first events
open connections and prepare statements."""
SETTLE_TIMEOUT = 30.0
STEADY_SECONDS = 2.0
"""How long the partition shares must stay as expected before a replica row is timed (two heartbeats)."""
TOKEN = "bench-admin-token-0c2d"  # noqa: S105 - a throwaway token of the bench's own process
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable


def created(session: str) -> bytes:
    data = {
        "id": session,
        "mode": "subscription",
        "currency": "usd",
        "line_items": [{"price": "price_pro_monthly"}, {"price": "price_setup"}],
    }
    return envelope("checkout.session.created", data)


class Receiver:
    """Counts what arrives on `upsell`, with the time each session's event arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.arrived.setdefault(message.correlation_id or "", time.perf_counter())
        self.changed.set()

    async def wait(self, count: int, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while len(self.arrived) < count:
            self.changed.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"{len(self.arrived)} of {count} arrived")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))


class Broker:
    """A vhost of its own with the topology declared, a confirming publisher and a receiver."""

    def __init__(self) -> None:
        self.vhost = f"upsell-bench-{uuid.uuid4().hex[:8]}"
        self.url = _with_path(BASE.amqp_url, f"/{self.vhost}")
        self.receiver = Receiver()

    async def __aenter__(self) -> Broker:
        await asyncio.to_thread(_add_vhost, self.vhost)
        self.connection = await aio_pika.connect(self.url)
        self.channel = await self.connection.channel(publisher_confirms=True)
        declared = await declare(self.channel, Topology())
        self.inbound = declared.inbound
        listen = await self.connection.channel()
        await listen.set_qos(prefetch_count=1000)
        queue = await listen.declare_queue(exclusive=True)
        await queue.bind(declared.outbound, routing_key="#")
        # Without acknowledgements: the measuring side should load the shared machine as little as it can.
        await queue.consume(self.receiver.on_message, no_ack=True)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.connection.close()
        await asyncio.to_thread(_delete_vhost, self.vhost)

    async def publish(self, sessions: list[str], window: int = 500) -> None:
        """Publishes as fast as confirms allow, `window` in flight at a time."""
        for start_at in range(0, len(sessions), window):
            chunk = sessions[start_at : start_at + window]
            await asyncio.gather(*(self._one(s) for s in chunk))

    async def _one(self, session: str) -> None:
        message = aio_pika.Message(
            created(session), correlation_id=session, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        await self.inbound.publish(message, routing_key="checkout.session.created")


async def timed_pipeline(broker: Broker, prefix: str, count: int) -> dict[str, float]:
    sessions = [f"{prefix}_{i}" for i in range(count)]
    before = len(broker.receiver.arrived)
    started = time.perf_counter()
    await broker.publish(sessions)
    await broker.receiver.wait(before + count, timeout=max(120.0, count / 50))
    elapsed = time.perf_counter() - started
    return {"events": count, "seconds": round(elapsed, 3), "per_second": round(count / elapsed, 1)}


@contextlib.asynccontextmanager
async def bare_relay(broker: Broker) -> AsyncIterator[subprocess.Popen[bytes]]:
    """bench/relay_baseline.py on the broker's vhost, ready to relay, stopped on the way out."""
    relay = subprocess.Popen(
        [PYTHON, str(ROOT / "bench" / "relay_baseline.py"), broker.url], stdout=subprocess.PIPE, cwd=ROOT
    )
    try:
        assert relay.stdout is not None
        await asyncio.to_thread(relay.stdout.readline)
        yield relay
    finally:
        relay.terminate()
        relay.wait(10)


async def bench_baseline_pipeline() -> dict[str, float]:
    async with Broker() as broker, bare_relay(broker):
        return await timed_pipeline(broker, "base", PIPELINE_EVENTS)


async def bench_baseline_latency(rate: float) -> dict[str, float]:
    """The bare relay's latency at the rate the service's was measured at, for reference."""
    async with Broker() as broker, bare_relay(broker):
        busy, started = machine_busy_seconds(), time.perf_counter()
        result = await latency(broker, rate)
        result["machine_busy"] = _busy_since(busy, started)
        return result


def _busy_since(busy: float, started: float) -> float:
    """The fraction of the machine's cores that were busy since `started`."""
    return round((machine_busy_seconds() - busy) / (time.perf_counter() - started) / (os.cpu_count() or 1), 2)


async def latency(broker: Broker, rate: float) -> dict[str, float]:
    """Publishes at `rate` a second for LATENCY_SECONDS; publish-to-receipt percentiles in ms.

    The measuring process must not pause on its own: its garbage collector is off meanwhile (a full
    collection took 20 to 30 ms here, and the events in flight then were timed that much late), and
    finished publishes are let go as it goes rather than gathered at the end."""
    count = int(rate * LATENCY_SECONDS)
    sent: dict[str, float] = {}
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        tasks: list[asyncio.Task[None]] = []
        for index in range(count):
            session = f"lat_{index}"
            await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
            sent[session] = time.perf_counter()
            tasks.append(asyncio.create_task(broker._one(session)))
            if index % 256 == 0:
                await asyncio.gather(*(task for task in tasks if task.done()))
                tasks = [task for task in tasks if not task.done()]
        await asyncio.gather(*tasks)
        deadline = time.perf_counter() + 60
        while any(s not in broker.receiver.arrived for s in sent) and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
    finally:
        gc.enable()
    delays = sorted((broker.receiver.arrived[s] - t) * 1000 for s, t in sent.items() if s in broker.receiver.arrived)

    def pct(p: float) -> float:
        return round(delays[min(int(len(delays) * p), len(delays) - 1)], 2)

    return {
        "rate": round(rate, 1),
        "events": count,
        "received": len(delays),
        "p50_ms": pct(0.5),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def bench_domain() -> dict[str, float]:
    """Eligibility and savings of one session (the example catalog's Pro monthly-to-yearly pair)."""
    from service.domain.catalog import Price, Recurring
    from service.domain.upsell import evaluate

    monthly = Price("m", "p", "usd", unit_amount=10_000, recurring=Recurring("month"), upsell="y")
    yearly = Price("y", "p", "usd", unit_amount=100_000, recurring=Recurring("year"))
    setup = Price("s", "q", "usd", type="one_time", unit_amount=5_000)
    from service.domain.savings import savings

    def one() -> None:
        decision = evaluate("subscription", [monthly, setup], {"m": yearly})
        assert decision.initial is not None
        assert decision.upsell is not None
        savings(decision.initial, decision.upsell, 1, "en")

    runs = 20_000
    best = min(timeit.repeat(one, number=runs, repeat=5))
    return {"us_per_session": round(best / runs * 1e6, 2)}


async def bench_service(baselines: http_rows.Baselines) -> dict[str, Any]:
    name = f"upsell_bench_{uuid.uuid4().hex[:8]}"
    database = _with_path(BASE.database_url, f"/{name}")
    await migrate(database)
    try:
        async with Broker() as broker:
            env = service_env(database, broker.url, TOKEN)
            apply_example_catalog(env)
            server = start(env, RESULTS / "serve.log")
            try:
                await wait_ready(server)
                return await _measure(server, broker, baselines)
            finally:
                server.stop(15)
    finally:
        await drop_database(name)


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(_with_path(BASE.database_url, "/postgres"))
    try:
        await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()


async def _measure(server: Server, broker: Broker, baselines: http_rows.Baselines) -> dict[str, Any]:
    pid = server.process.pid
    cpu = cpu_seconds(pid)
    pipeline = await timed_pipeline(broker, "svc", PIPELINE_EVENTS)
    pipeline["service_cpu_us_per_event"] = round((cpu_seconds(pid) - cpu) / PIPELINE_EVENTS * 1e6)
    rss_10k = rss_mb(pid)
    cpu, busy, started = cpu_seconds(pid), machine_busy_seconds(), time.perf_counter()
    lat = await latency(broker, pipeline["per_second"] / 2)
    lat["service_cpu_us_per_event"] = round((cpu_seconds(pid) - cpu) / lat["events"] * 1e6)
    lat["machine_busy"] = _busy_since(busy, started)
    http = await http_rows.service_rows(pid, server.base, TOKEN, "svc", PIPELINE_EVENTS, HTTP_SECONDS, baselines)
    remaining = max(LARGE_SESSIONS - PIPELINE_EVENTS - int(lat["events"]), 0)
    if remaining:
        await timed_pipeline(broker, "mem", remaining)
    rss_large = rss_mb(server.process.pid)
    return {
        "pipeline": pipeline,
        "latency": lat,
        "http": http,
        "rss_mb": {"10k": rss_10k, "large": rss_large, "sessions_large": LARGE_SESSIONS},
    }


def replica_counts(text: str) -> list[int]:
    """BENCH_REPLICAS: replica counts separated by commas, each from 1 to the number of partitions."""
    counts = [int(part) for part in text.replace(" ", "").split(",") if part]
    if bad := [count for count in counts if not 1 <= count <= PARTITIONS]:
        raise SystemExit(f"BENCH_REPLICAS: each count from 1 to {PARTITIONS}, not {bad}")
    return counts


async def metered_pipeline(
    broker: Broker, prefix: str, pids: list[int], backends: list[int] | None = None
) -> dict[str, Any]:
    """The timed pipeline with the CPU per event of each component (bench/components.py)."""
    meter = Meter(pids, backends or [])
    meter.start()
    row: dict[str, Any] = dict(await timed_pipeline(broker, prefix, PIPELINE_EVENTS))
    row.update(meter.stop(PIPELINE_EVENTS))
    return row


async def bench_metered_baseline(prefix: str) -> dict[str, Any]:
    async with Broker() as broker, bare_relay(broker) as relay:
        await timed_pipeline(broker, f"{prefix}_warm", WARMUP)
        return await metered_pipeline(broker, prefix, [relay.pid])


def _replica_of(owner: str) -> int | None:
    """The pid in a replica's id (`host-pid-random`, service.bootstrap.replica_id)."""
    parts = owner.rsplit("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


async def _leases(conn: asyncpg.Connection) -> dict[int, int | None]:
    rows = await conn.fetch(
        "select partition, case when expires_at > now() then owner end as owner from partition_leases"
    )
    return {r["partition"]: _replica_of(r["owner"]) if r["owner"] else None for r in rows}


async def settled(conn: asyncpg.Connection, servers: list[Server]) -> dict[int, list[int]]:
    """Waits until each replica holds its share of the partitions and nothing else holds one, for
    STEADY_SECONDS in a row; returns the partitions of each replica (by pid)."""
    pids = {server.process.pid for server in servers}
    deadline = time.monotonic() + SETTLE_TIMEOUT
    steady_since: float | None = None
    while True:
        leases = await _leases(conn)
        base, extra = divmod(len(leases), len(pids))
        held: dict[int, list[int]] = {}
        for partition, owner in sorted(leases.items()):
            held.setdefault(owner or 0, []).append(partition)
        shares = sorted((len(partitions) for partitions in held.values()), reverse=True)
        if set(held) == pids and shares == [base + 1] * extra + [base] * (len(pids) - extra):
            steady_since = steady_since or time.monotonic()
            if time.monotonic() - steady_since >= STEADY_SECONDS:
                return held
        else:
            steady_since = None
        for server in servers:
            if server.process.poll() is not None:
                raise RuntimeError(f"upsell serve exited: {server.log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the partition shares did not settle: {held}")
        await asyncio.sleep(0.25)


async def scale(servers: list[Server], count: int, database: str, amqp_url: str) -> None:
    """Starts or stops (the newest first) replicas until there are `count`, and waits until all are ready."""
    while len(servers) > count:
        await asyncio.to_thread(servers.pop().stop, 15)
    while len(servers) < count:
        env = service_env(database, amqp_url, TOKEN)
        servers.append(start(env, RESULTS / f"replica-{len(servers) + 1}.log"))
    await asyncio.gather(*(wait_ready(server) for server in servers))


async def replica_row(broker: Broker, conn: asyncpg.Connection, servers: list[Server], prefix: str) -> dict[str, Any]:
    held = await settled(conn, servers)
    # Untimed: new replicas' first events open connections and prepare statements.
    await timed_pipeline(broker, f"{prefix}_warm", WARMUP)
    backends = await conn.fetch(
        "select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
    )
    pids = sorted(held)
    row = await metered_pipeline(broker, prefix, pids, [r["pid"] for r in backends])
    row["replicas"] = len(servers)
    row["shares"] = [len(held[pid]) for pid in pids]
    # A partition that changed hands during the run would have paused its events.
    after = await _leases(conn)
    row["handovers"] = sum(1 for partition, owner in after.items() if partition not in held.get(owner or 0, []))
    return row


async def stop_all(servers: list[Server]) -> None:
    async def stop(server: Server) -> None:
        try:
            await asyncio.to_thread(server.stop, 15)
        except subprocess.TimeoutExpired:
            server.kill()

    await asyncio.gather(*(stop(server) for server in servers))


async def bench_replicas(counts: list[int]) -> dict[str, Any]:
    """The pipeline with each number of replicas in turn, on one database and one vhost (the example
    catalog applied once), between two runs of the bare relay."""
    before = await bench_metered_baseline("base_before")
    name = f"upsell_bench_replicas_{uuid.uuid4().hex[:8]}"
    database = _with_path(BASE.database_url, f"/{name}")
    await migrate(database)
    rows: list[dict[str, Any]] = []
    try:
        async with Broker() as broker:
            apply_example_catalog(service_env(database, broker.url, TOKEN))
            servers: list[Server] = []
            conn = await asyncpg.connect(database)
            try:
                for count in counts:
                    await scale(servers, count, database, broker.url)
                    rows.append(await replica_row(broker, conn, servers, f"rep{len(rows)}"))
            finally:
                await conn.close()
                # Before the vhost goes.
                await stop_all(servers)
    finally:
        await drop_database(name)
    after = await bench_metered_baseline("base_after")
    return {"baseline_before": before, "baseline_after": after, "warmup": WARMUP, "rows": rows}


@contextlib.asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    """An empty database of its own, for the bare write handler."""
    name = f"upsell_bench_bare_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_with_path(BASE.database_url, "/postgres"))
    try:
        await admin.execute(f'create database "{name}"')
        yield _with_path(BASE.database_url, f"/{name}")
    finally:
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.close()


async def main() -> int:
    if ONLY not in ("", "pipeline"):
        raise SystemExit(f"BENCH_ONLY: 'pipeline' or nothing, not {ONLY!r}")
    counts = replica_counts(os.environ.get("BENCH_REPLICAS", "1,2,3"))
    RESULTS.mkdir(exist_ok=True)
    started = time.perf_counter()
    result: dict[str, Any] = {}
    if ONLY == "pipeline":
        result["only"] = ONLY
    else:
        result["baseline_pipeline"] = await bench_baseline_pipeline()
        async with scratch_database() as bare_database, http_rows.baselines(bare_database) as baselines:
            result["hello"] = await baselines.hello(HTTP_SECONDS)
            result["service"] = await bench_service(baselines)
        result["baseline_latency"] = await bench_baseline_latency(result["service"]["latency"]["rate"])
    if counts:
        result["replicas"] = await bench_replicas(counts)
    if not ONLY:
        result["domain"] = bench_domain()
    when = datetime.now(UTC).isoformat(timespec="seconds")
    result = {"when": when, **result, "seconds": round(time.perf_counter() - started, 1)}
    (RESULTS / f"{when.replace(':', '')}.json").write_text(json.dumps(result, indent=2))
    from bench.report import replicas_section, write

    if ONLY:
        print(replicas_section(result))
    else:
        print(write(result, ROOT / "docs" / "performance.md"))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
