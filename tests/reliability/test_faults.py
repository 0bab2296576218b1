"""Faults during a stream of checkout events: kill -9, dropped connections, a broker restart, a database
restart and SIGTERM. Each counts, per session, what came out on `upsell`, and fails when anything is lost."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import pytest

from tests.reliability.conftest import Fleet
from tests.reliability.harness import (
    EVENTS,
    Backend,
    Collector,
    broker_stopped,
    can_control_database,
    close_connections,
    created,
    database_stopped,
    eventually,
    outcome,
)

pytestmark = pytest.mark.reliability
EVALUATED = "checkout.session.upsell_evaluated"


async def _stream(backend: Backend, sessions: list[str]) -> None:
    for session in sessions:
        await backend.send("checkout.session.created", created(session))


async def _evaluated_reach(collector: Collector, count: int, timeout: float = 120) -> None:
    async def reached() -> bool:
        return len({r.correlation_id for r in collector.of_type(EVALUATED)}) >= count

    assert await eventually(reached, timeout), f"fewer than {count} sessions evaluated in {timeout} s"


async def _recovery(collector: Collector, fault_at: float, timeout: float = 120) -> float:
    """Seconds from the fault until sessions are evaluated again: 20 beyond those evaluated at the fault."""
    before = len({r.correlation_id for r in collector.of_type(EVALUATED)})
    await _evaluated_reach(collector, min(before + 20, EVENTS), timeout)
    return time.monotonic() - fault_at


async def _queue_drained(server_base: str) -> bool:
    async with aiohttp.ClientSession() as http, http.get(f"{server_base}/metrics") as response:
        text = await response.text()
    return 'upsell_queue_messages{queue="upsell.checkout"} 0.0' in text and "upsell_outbox_backlog 0.0" in text


async def test_kill_9_during_a_stream_loses_nothing(fleet: Fleet, backend: Backend, collector: Collector) -> None:
    server = await fleet.start()
    sessions = [f"cs_k9_{i}" for i in range(EVENTS)]
    publishing = asyncio.create_task(_stream(backend, sessions))
    await _evaluated_reach(collector, EVENTS // 4)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    fault_at = time.monotonic()
    await fleet.start()
    recovery = await _recovery(collector, fault_at)
    await publishing
    await collector.wait_for(EVALUATED, set(sessions), 120)
    result = outcome("kill -9 of the service, restarted", len(sessions), set(sessions), collector, recovery)
    assert result.lost == 0
    assert result.duplicates_kept_id


async def test_connections_closed_by_the_broker_are_reopened_and_consuming_resumes(
    fleet: Fleet, backend: Backend, collector: Collector
) -> None:
    server = await fleet.start()
    sessions = [f"cs_cut_{i}" for i in range(EVENTS)]
    publishing = asyncio.create_task(_stream(backend, sessions))
    await _evaluated_reach(collector, EVENTS // 4)
    close_connections(fleet.env["UPSELL_AMQP_URL"])
    fault_at = time.monotonic()
    recovery = await _recovery(collector, fault_at)
    # Once more, past the middle: a consumer restored once must be restored again (aio-pika 231, 626, 334).
    await _evaluated_reach(collector, EVENTS // 2)
    close_connections(fleet.env["UPSELL_AMQP_URL"])
    await publishing
    await collector.wait_for(EVALUATED, set(sessions), 120)
    result = outcome("broker closes all connections, twice", len(sessions), set(sessions), collector, recovery)
    assert result.lost == 0
    assert result.duplicates_kept_id
    # Nothing is left unacknowledged in the queue (aio-pika 501: acks on a channel that was replaced) and
    # the service consumes again by itself.
    assert await eventually(lambda: _queue_drained(server.base), 60)
    async with aiohttp.ClientSession() as http, http.get(f"{server.base}/metrics") as response:
        assert 'upsell_queue_consumers{queue="upsell.checkout"} 1.0' in await response.text()


async def test_broker_stop_app_and_start_app_during_a_stream(
    fleet: Fleet, backend: Backend, collector: Collector
) -> None:
    server = await fleet.start()
    sessions = [f"cs_app_{i}" for i in range(EVENTS)]
    publishing = asyncio.create_task(_stream(backend, sessions))
    await _evaluated_reach(collector, EVENTS // 4)
    async with broker_stopped():
        await asyncio.sleep(3)
    fault_at = time.monotonic()
    recovery = await _recovery(collector, fault_at)
    await publishing
    await collector.wait_for(EVALUATED, set(sessions), 180)
    result = outcome("broker stop_app, 3 s, start_app", len(sessions), set(sessions), collector, recovery)
    assert result.lost == 0
    assert result.duplicates_kept_id
    assert await eventually(lambda: _queue_drained(server.base), 60)


@pytest.mark.skipif(not can_control_database(), reason="needs the local PostgreSQL cluster to restart it")
async def test_database_restart_holds_messages_and_readyz_tells(
    fleet: Fleet, backend: Backend, collector: Collector
) -> None:
    server = await fleet.start()
    sessions = [f"cs_pg_{i}" for i in range(EVENTS)]
    publishing = asyncio.create_task(_stream(backend, sessions))
    await _evaluated_reach(collector, EVENTS // 4)
    async with aiohttp.ClientSession() as http:
        async with database_stopped():
            await asyncio.sleep(1)
            async with http.get(f"{server.base}/readyz") as response:
                not_ready = response.status, (await response.json()).get("code")
            await asyncio.sleep(3)
        fault_at = time.monotonic()
    assert not_ready == (503, "not_ready")
    recovery = await _recovery(collector, fault_at)
    await publishing
    await collector.wait_for(EVALUATED, set(sessions), 120)
    result = outcome("PostgreSQL stopped 4 s, started", len(sessions), set(sessions), collector, recovery)
    assert result.lost == 0
    assert result.duplicates_kept_id
    assert await eventually(lambda: _queue_drained(server.base), 60)


async def test_sigterm_under_load_finishes_flushes_and_exits_in_time(
    fleet: Fleet, backend: Backend, collector: Collector
) -> None:
    server = await fleet.start()
    sessions = [f"cs_term_{i}" for i in range(EVENTS)]
    await _stream(backend, sessions)
    await _evaluated_reach(collector, EVENTS // 4)
    took = await asyncio.to_thread(server.stop, 15.0)
    assert server.process.returncode == 0
    assert took < 10
    log = server.log.read_text()
    assert '"outbox_flushed"' in log
    await fleet.start()
    await collector.wait_for(EVALUATED, set(sessions), 120)
    result = outcome(
        "SIGTERM under load, restarted", len(sessions), set(sessions), collector, took, "recovery = exit time"
    )
    assert result.lost == 0
    assert result.duplicates_kept_id
