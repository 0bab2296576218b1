"""Replicas sharing the partitions during a stream of paid sessions: one killed with SIGKILL, one added,
all three restarted one by one. Nothing may be lost, and each session's events must be applied in order
across the handovers: its `upsell_evaluated` comes out before its `completed`, its payment is never
parked (handled before its session) nor dead-lettered, and it ends `complete`."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection

import pytest

from tests.process import Server
from tests.reliability.conftest import Fleet
from tests.reliability.harness import (
    EVENTS,
    Backend,
    Collector,
    Outcome,
    Owners,
    created,
    ending,
    outcome,
    owners_until,
    parked_sessions,
)

pytestmark = pytest.mark.reliability
CREATED = "checkout.session.created"
PAID = "checkout.session.payment_succeeded"
EVALUATED = "checkout.session.upsell_evaluated"
COMPLETED = "checkout.session.completed"

TAKEOVER = 15.0
"""Seconds the replicas get to settle who owns what after a change (a lease runs out in 4 s)."""
SETTLE = 180.0
"""Seconds every session gets to come out completed once the stream has ended."""


class PaidStream:
    """Publishes, at a steady rate in the background, `created` and then `payment_succeeded` for each
    session, each confirmed by the broker before the next is sent, over about `seconds`."""

    def __init__(self, backend: Backend, sessions: list[str], seconds: float) -> None:
        self.sent = 0
        self._total = len(sessions)
        self._task = asyncio.create_task(self._run(backend, sessions, len(sessions) / seconds))

    async def _run(self, backend: Backend, sessions: list[str], rate: float) -> None:
        started = time.monotonic()
        for index, session in enumerate(sessions):
            await backend.send(CREATED, created(session))
            await backend.send(PAID, {"session": session, "payment": f"pi_{session}"})
            self.sent += 1
            await asyncio.sleep(max(0.0, started + (index + 1) / rate - time.monotonic()))

    async def reached(self, share: float) -> None:
        """Waits until that share of the sessions is published."""
        while self.sent < self._total * share and not self._task.done():
            await asyncio.sleep(0.05)

    async def done(self) -> None:
        await self._task

    def cancel(self) -> None:
        self._task.cancel()


@pytest.fixture
async def stream(backend: Backend) -> AsyncIterator[Callable[[list[str], float], PaidStream]]:
    """Starts paid streams; one still running when the test ends (it failed) is cancelled."""
    started: list[PaidStream] = []

    def start(sessions: list[str], seconds: float) -> PaidStream:
        started.append(PaidStream(backend, sessions, seconds))
        return started[-1]

    yield start
    for running in started:
        running.cancel()


def shared_by(replicas: Collection[str]) -> Callable[[Owners], bool]:
    """Every partition held by one of these replicas, and each of them holding its share at least."""

    def check(owners: Owners) -> bool:
        held = Counter(owners.values())
        return set(held) <= set(replicas) and all(held[r] >= len(owners) // len(replicas) for r in replicas)

    return check


def held_without(gone: str) -> Callable[[Owners], bool]:
    """Every partition held, none by the replica that went."""
    return lambda owners: all(owner not in (None, gone) for owner in owners.values())


async def _start(fleet: Fleet, count: int) -> list[Server]:
    """Starts the replicas one after the other and waits until they share the partitions."""
    servers = [await fleet.start() for _ in range(count)]
    took = await _owners(fleet, shared_by([fleet.replica(s) for s in servers]))
    assert took is not None, f"{count} replicas did not share the partitions within {TAKEOVER} s"
    return servers


async def _owners(fleet: Fleet, check: Callable[[Owners], bool]) -> float | None:
    return await owners_until(fleet.env["UPSELL_DATABASE_URL"], check, TAKEOVER)


async def _settle(
    scenario: str,
    publishing: PaidStream,
    sessions: list[str],
    fleet: Fleet,
    collector: Collector,
    recovery: float,
    measured: str,
) -> Outcome:
    """Lets the stream end, waits until every session came out completed (or SETTLE passed), records
    the outcome, and fails on a session lost, a duplicate with another id, or a session out of order."""
    await publishing.done()
    wanted = set(sessions)
    await collector.wait_for(COMPLETED, wanted, SETTLE)
    await asyncio.sleep(1.0)  # late copies, had a replica published some twice
    ended = await ending(fleet.env["UPSELL_DATABASE_URL"], fleet.env["UPSELL_AMQP_URL"], wanted)
    parked = parked_sessions(fleet.logs()) & wanted
    kept = (collector.in_order(wanted, EVALUATED, COMPLETED) & ended.complete) - parked
    notes = f"order kept in {len(kept)} of {len(sessions)} sessions; recovery = {measured}"
    if parked:
        notes += f"; {len(parked)} payments parked"
    result = outcome(scenario, 2 * len(sessions), wanted, collector, recovery, notes, event_type=COMPLETED)
    assert result.lost == 0, f"{result.lost} sessions never came out completed"
    assert result.duplicates_kept_id, "a copy of a `completed` came out with another id"
    assert collector.ids_kept(), "a copy of an event came out with another id"
    assert ended.statuses == {"complete": len(sessions)}
    assert (ended.parked, ended.dead_lettered) == (0, 0), "events left parked, or dead-lettered"
    out_of_order = sorted(wanted - kept)
    assert not out_of_order, f"{len(out_of_order)} sessions out of order, e.g. {out_of_order[:5]}"
    return result


async def test_three_replicas_kill_9_of_one(
    fleet: Fleet, collector: Collector, stream: Callable[[list[str], float], PaidStream]
) -> None:
    servers = await _start(fleet, 3)
    sessions = [f"cs_rk9_{i}" for i in range(EVENTS)]
    publishing = stream(sessions, 8)
    await publishing.reached(0.3)
    victim, survivors = servers[1], [servers[0], servers[2]]
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait()
    took = await _owners(fleet, shared_by([fleet.replica(s) for s in survivors]))
    assert took is not None, f"the two others did not take the killed replica's partitions within {TAKEOVER} s"
    await _settle("three replicas, kill -9 of one", publishing, sessions, fleet, collector, took, "kill to takeover")
    assert all(s.process.poll() is None for s in survivors)


async def test_a_replica_added_mid_stream(
    fleet: Fleet, collector: Collector, stream: Callable[[list[str], float], PaidStream]
) -> None:
    servers = await _start(fleet, 2)
    sessions = [f"cs_rjoin_{i}" for i in range(EVENTS)]
    publishing = stream(sessions, 8)
    await publishing.reached(0.35)
    servers.append(await fleet.start())
    # From the moment it is ready: its heartbeats start then.
    took = await _owners(fleet, shared_by([fleet.replica(s) for s in servers]))
    assert took is not None, f"the added replica did not get its share within {TAKEOVER} s"
    await _settle("a replica added mid-stream", publishing, sessions, fleet, collector, took, "ready to its share")
    assert all(s.process.poll() is None for s in servers)


async def test_rolling_restart_of_three_replicas(
    fleet: Fleet, collector: Collector, stream: Callable[[list[str], float], PaidStream]
) -> None:
    servers = await _start(fleet, 3)
    sessions = [f"cs_rroll_{i}" for i in range(EVENTS)]
    # Longer than the others: the three restarts all land in the stream.
    publishing = stream(sessions, 20)
    await publishing.reached(0.15)
    gaps: list[float] = []
    for old in list(servers):
        handed_over = asyncio.create_task(_owners(fleet, held_without(fleet.replica(old))))
        try:
            await asyncio.to_thread(old.stop, 15.0)
        except subprocess.TimeoutExpired:
            handed_over.cancel()
            began = "began" if '"service_stopping"' in old.log.read_text(errors="replace") else "never began"
            pytest.fail(f"{old.log.name} still runs 15 s after its SIGTERM ({began} to stop)")
        assert old.process.returncode == 0, f"{old.log.name} exited with {old.process.returncode}"
        servers[servers.index(old)] = await fleet.start()
        gap = await handed_over
        assert gap is not None, f"{old.log.name}'s partitions were not taken within {TAKEOVER} s of its SIGTERM"
        gaps.append(gap)
    took = await _owners(fleet, shared_by([fleet.replica(s) for s in servers]))
    assert took is not None, f"the three new replicas did not share the partitions within {TAKEOVER} s"
    await _settle(
        "rolling restart of three replicas",
        publishing,
        sessions,
        fleet,
        collector,
        max(gaps),
        "longest SIGTERM to takeover",
    )
    assert publishing.sent == len(sessions)
