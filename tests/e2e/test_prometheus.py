"""A real Prometheus (Debian's binary) scraping `upsell serve` every second with the rules of
deploy/prometheus/alerts.yml: after a short stream of events, every query of the alerts and of the Grafana
dashboard returns data, and the rule group is loaded and healthy.

Set UPSELL_DASHBOARD_PICTURE to a .png path to have the run longer and the dashboard's queries, as
Prometheus answers them, drawn into that file (docs/operations-dashboard.png).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest
import yaml

from service.adapters.rabbitmq.topology import Topology
from tests.broker import Peer, envelope, peer
from tests.e2e.dashboard_picture import draw
from tests.process import ROOT, Server, free_port

pytestmark = pytest.mark.e2e

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "upsell.json"
# What Grafana puts in place of its variables, for a scrape every second.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1s", "$__range": "5m"}
PICTURE = os.environ.get("UPSELL_DASHBOARD_PICTURE")
ROUNDS = 40 if PICTURE else 4
"""Rounds of traffic, each seen by a scrape of its own, so that rates and increases see them."""
PARTITIONS = Topology().partitions
STOLEN = 5
"""The partition whose lease another replica takes in the middle of the stream."""


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    exprs = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    assert exprs
    for variable, value in GRAFANA_VARIABLES.items():
        exprs = [expr.replace(variable, value) for expr in exprs]
    return exprs


def alert_rules() -> dict[str, str]:
    [group] = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return {rule["alert"]: rule["expr"].strip() for rule in group["rules"]}


_COMPARISON = re.compile(r"\s*(?:==|!=|>=|<=|>|<)\s*(?:bool\s+)?-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")
_MATCHING = r"(?:\s+(?:on|ignoring)\s*\([^)]*\))?(?:\s+group_(?:left|right)(?:\s*\([^)]*\))?)?"
_SET_OPERATOR = re.compile(rf"\s+(?:and|or|unless){_MATCHING}\s+|\s*(?:==|!=|>=|<=|>|<)(?:\s+bool)?{_MATCHING}\s*")


def watched_values(expr: str) -> list[str]:
    """The values an alert condition watches: the comparisons with a constant dropped (`x > 0` is `x`),
    and the operands of its top-level `and`, `or` and `unless` and of its comparisons of two values
    (`x > on (job) 4 * y` is `x` and `4 * y`) taken apart. A condition may rightly be empty (nothing is
    wrong); what it compares must not be."""
    values, depth, start = [], 0, 0
    bare = _COMPARISON.sub("", expr)
    position = 0
    while position < len(bare):
        character = bare[position]
        depth += character in "([{"
        depth -= character in ")]}"
        found = _SET_OPERATOR.match(bare, position) if depth == 0 else None
        if found is not None:
            values.append(bare[start:position].strip())
            start = position = found.end()
            continue
        position += 1
    values.append(bare[start:].strip())
    return values


@asynccontextmanager
async def prometheus(tmp_path: Path, target: str) -> AsyncIterator[str]:
    """Debian's Prometheus on a loopback port of its own, scraping `target` as job "upsell" every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(
            "this test runs Prometheus: `make test` (or `make prometheus`) installs Debian's prometheus "
            "package where apt-get is there; elsewhere install Prometheus and put it on PATH",
            pytrace=False,
        )
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{"job_name": "upsell", "static_configs": [{"targets": [target]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    base = f"http://127.0.0.1:{free_port()}"
    log = tmp_path / "prometheus.log"
    arguments = [
        binary,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address={urlsplit(base).netloc}",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(arguments, stdout=out, stderr=subprocess.STDOUT)
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                assert process.poll() is None, log.read_text()[-3000:]
                try:
                    async with http.get(f"{base}/-/ready") as response:
                        return response.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            assert await until(ready, 30), "Prometheus did not become ready"

            # Targets reach the scrape loop seconds after start: traffic sent before would all be in
            # the first sample, where no rate or increase can see it.
            async def scraped() -> bool:
                return bool(await query(http, base, 'up{job="upsell"} == 1'))

            assert await until(scraped, 30), "Prometheus did not scrape the service"
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(log.read_text()[-3000:])


async def until(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    """Whether `check` came true within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.25)
    return True


async def query(http: aiohttp.ClientSession, base: str, expr: str) -> list[dict[str, Any]]:
    async with http.get(f"{base}/api/v1/query", params={"query": expr}) as response:
        body = await response.json()
    assert body["status"] == "success", (expr, body)
    assert body["data"]["resultType"] == "vector", expr
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def scraped(http: aiohttp.ClientSession, base: str, expr: str, expected: float) -> None:
    """Waits until Prometheus holds `expected` as the value of `expr`: a scrape came after the change."""

    async def holds() -> bool:
        return [float(item["value"][1]) for item in await query(http, base, expr)] == [expected]

    assert await until(holds, 20), f"Prometheus did not see {expr} reach {expected}"


def has_numbers(result: list[dict[str, Any]]) -> bool:
    """At least one series with a number (a quantile of an empty window is NaN)."""
    return any(item["value"][1] not in ("NaN", "+Inf", "-Inf") for item in result)


async def traffic(server: Server, broker: Peer, http: aiohttp.ClientSession, base: str, round_: int) -> None:
    """Sessions, a toggle and a read over HTTP, an event for a session that never comes (parked; every
    fourth round from a publisher that sets no correlation_id) and a poison message (an unknown price:
    dead-lettered)."""
    session = f"cs_prom_{round_}"
    data = {"id": session, "mode": "subscription", "currency": "usd", "line_items": [{"price": "price_pro_monthly"}]}
    await broker.send("checkout.session.created", data)
    assert (await broker.next_event()).type == "checkout.session.upsell_evaluated"
    url = f"{server.base}/v1/checkout/sessions/{session}"
    async with http.post(f"{url}/upsell", json={"selected": True}, headers=server.admin) as response:
        assert response.status == 200, await response.text()
    assert (await broker.next_event()).type == "checkout.session.line_items_updated"
    async with http.get(url, headers=server.admin) as response:
        assert response.status == 200
    paid, parked = "checkout.session.payment_succeeded", {"session": f"cs_prom_never_{round_}", "payment": "pi_1"}
    if round_ % 4 == 0:
        await broker.publish(envelope(paid, parked), paid)
    else:
        await broker.send(paid, parked)
    poison = {**data, "id": f"cs_prom_bad_{round_}", "line_items": [{"price": "price_gone"}]}
    await broker.send("checkout.session.created", poison)
    await scraped(http, base, "sum(upsell_dead_letters_total)", round_ + 1)


async def server_error(server: Server, database_url: str, http: aiohttp.ClientSession, base: str, count: int) -> None:
    """A real 500: an API key looked up while its table is away."""
    database = await asyncpg.connect(database_url)
    try:
        await database.execute("alter table api_keys rename to api_keys_away")
        try:
            url = f"{server.base}/v1/prices/price_pro_monthly"
            async with http.get(url, headers={"Authorization": "Bearer uk_not_a_key"}) as response:
                assert response.status == 500
        finally:
            await database.execute("alter table api_keys_away rename to api_keys")
    finally:
        await database.close()
    await scraped(http, base, 'sum(upsell_http_requests_total{status="500"})', count)


async def lease_lost(database_url: str, http: aiohttp.ClientSession, base: str) -> None:
    """A partition's lease taken over by a replica Prometheus does not scrape, as when this one stalled past
    its lease: the service counts the partition lost, and takes it back once that lease runs out."""
    database = await asyncpg.connect(database_url)
    try:
        await database.execute(
            "update partition_leases set owner = 'cs-prom-other-replica', taken_at = now(),"
            " expires_at = now() + interval '2 seconds' where partition = $1",
            STOLEN,
        )
    finally:
        await database.close()
    await scraped(http, base, 'sum(upsell_partition_handovers_total{change="lost"})', 1)
    await scraped(http, base, f'sum(upsell_partition_owned{{partition="{STOLEN}"}})', 1)
    await scraped(http, base, "sum(upsell_partition_owned)", PARTITIONS)


async def test_every_alert_and_dashboard_query_returns_data(
    server: Server, amqp_url: str, database_url: str, tmp_path: Path
) -> None:
    started = time.time()
    async with (
        prometheus(tmp_path, urlsplit(server.base).netloc) as base,
        peer(amqp_url) as broker,
        aiohttp.ClientSession() as http,
    ):
        errors = 0
        for round_ in range(ROUNDS):
            await traffic(server, broker, http, base, round_)
            # At least two, scrapes apart: the first only creates the counter's series.
            if round_ % 8 == 1 or round_ == ROUNDS - 1:
                errors += 1
                await server_error(server, database_url, http, base, errors)
            if round_ == ROUNDS // 2:
                await lease_lost(database_url, http, base)
            await asyncio.sleep(1.0)

        dashboard = dashboard_queries()

        async def dashboard_answers() -> bool:
            return all([has_numbers(await query(http, base, expr)) for expr in dashboard])

        await until(dashboard_answers, 30)
        empty = [expr for expr in dashboard if not has_numbers(await query(http, base, expr))]
        assert empty == []

        rules = alert_rules()
        for name, expr in rules.items():
            await query(http, base, expr)  # valid, whether it holds or not
            for value in watched_values(expr):
                assert has_numbers(await query(http, base, value)), f"{name}: {value} is empty"

        async def rules_evaluated() -> bool:
            async with http.get(f"{base}/api/v1/rules") as response:
                groups = (await response.json())["data"]["groups"]
            return all(rule["health"] == "ok" for group in groups for rule in group["rules"])

        assert await until(rules_evaluated, 15), "the rules are not all healthy"
        async with http.get(f"{base}/api/v1/rules") as response:
            [group] = (await response.json())["data"]["groups"]
        assert group["name"] == "upsell"
        assert [rule["name"] for rule in group["rules"]] == list(rules)
        assert all(not rule.get("lastError") for rule in group["rules"])

        # The stream had dead letters, 5xx answers, messages without correlation_id and a lost lease, and
        # nothing else was wrong: the partition lost for a few seconds is owned and consumed again.
        firing = await query(http, base, 'ALERTS{alertname="UpsellDeadLetters", alertstate="firing"}')
        assert {item["metric"]["reason"] for item in firing} == {"unknown_price"}
        assert await query(http, base, 'ALERTS{alertname="UpsellHttpErrors", alertstate="pending"}')
        for name in ("UpsellEventsWithoutCorrelationId", "UpsellPartitionHandoversFrequent"):
            assert await query(http, base, f'ALERTS{{alertname="{name}", alertstate="firing"}}'), name
        active = {item["metric"]["alertname"] for item in await query(http, base, "ALERTS")}
        assert active <= {
            "UpsellDeadLetters",
            "UpsellDeadLetterQueueNotEmpty",
            "UpsellHttpErrors",
            "UpsellEventsWithoutCorrelationId",
            "UpsellPartitionHandoversFrequent",
        }

        if PICTURE:
            await draw(http, base, DASHBOARD, GRAFANA_VARIABLES, started, Path(PICTURE))
