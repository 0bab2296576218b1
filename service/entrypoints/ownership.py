"""Partition ownership: each replica heartbeats, keeps its share of the partition leases, and consumes
and relays exactly the partitions it holds.

A partition changes hands in one order only: its owner stops consuming it, lets the messages it holds
of it commit and be acked, lets its relay confirm and mark what of it was on its way, and only then gives
the lease back; the next owner takes it at its next heartbeat. A replica that dies keeps its leases
until they run out (LEASE_TTL). The partition queues' single active consumer is the safety net: while a
former owner still has a consumer on a queue, the broker delivers to it only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import Any

import structlog

from service.adapters.postgres.errors import TRANSIENT_ERRORS
from service.adapters.postgres.leases import Leases
from service.adapters.rabbitmq.deliveries import Deliveries
from service.adapters.rabbitmq.relay import OutboxRelay
from service.adapters.rabbitmq.subscriptions import Subscriptions
from service.domain.partitions import plan, share
from service.metrics import Metrics

log = structlog.get_logger(__name__)

HEARTBEAT = 1.0
"""Seconds between heartbeats."""
LEASE_TTL = 4.0
"""Seconds a lease lasts without a heartbeat: a dead replica's partitions move within about this."""
SETTLE_WITHIN = 5.0
"""Seconds a partition being given back waits for the messages of it in hand."""


class Ownership:
    def __init__(
        self,
        leases: Leases,
        subscriptions: Subscriptions,
        consumer: Deliveries[Any],
        relay: OutboxRelay,
        metrics: Metrics,
        heartbeat: float = HEARTBEAT,
    ) -> None:
        self._leases = leases
        self._subscriptions = subscriptions
        self._consumer = consumer
        self._relay = relay
        self._metrics = metrics
        self._heartbeat = heartbeat
        self._owned: frozenset[int] = frozenset()
        self._renewed = 0.0
        self._fenced: frozenset[int] = frozenset()
        """Held, but not consumed: the leases could not be renewed in time, and may be another's by now."""
        self.stopping = False
        """Once set, heartbeats only renew what is held (until `leave`), and nothing is taken."""
        for partition in range(leases.partitions):
            metrics.partition_owned.labels(str(partition)).set(0)
        for change in ("taken", "released", "lost"):
            # Exported from the start, so that a first loss is an increase Prometheus can see.
            metrics.partition_handovers.labels(change)

    @property
    def replica(self) -> str:
        return self._leases.replica

    @property
    def owned(self) -> frozenset[int]:
        return self._owned

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.tick()
            except TRANSIENT_ERRORS as away:
                log.warning("partition_heartbeat_failed", error=type(away).__name__)
                if self._owned - self._fenced and time.monotonic() - self._renewed > LEASE_TTL - self._heartbeat:
                    await self._fence(self._owned - self._fenced)
            except Exception:
                log.exception("partition_heartbeat_error")
            await asyncio.sleep(max(self._heartbeat - (time.monotonic() - started), 0.05))

    async def tick(self) -> None:
        sent = time.monotonic()
        standing = await self._leases.beat()
        self._renewed = sent
        if lost := self._owned - standing.owned:
            log.warning("partitions_lost", partitions=sorted(lost))
            await self._drop(lost, "lost")
        if self._fenced:
            await self._resume(self._fenced & standing.owned)
        if self.stopping:
            return
        if gained := standing.owned - self._owned:
            # Held in the database but not here (a claim whose answer was lost, say).
            await self._take(gained)
        quota = share(standing.live, self._leases.replica, self._leases.partitions)
        step = plan(self._owned, standing.free, quota)
        if step.release:
            await self._give_back(step.release)
        if step.claim:
            await self._take(await self._leases.claim(step.claim))

    async def _take(self, partitions: Iterable[int]) -> None:
        taken = frozenset(partitions)
        if not taken:
            return
        self._consumer.restore(taken)
        self._relay.own(taken)
        for partition in sorted(taken):
            await self._subscriptions.take(partition)
            self._metrics.partition_owned.labels(str(partition)).set(1)
        self._owned |= taken
        self._metrics.partition_handovers.labels("taken").inc(len(taken))
        log.info("partitions_taken", partitions=sorted(taken), owned=len(self._owned))

    async def _fence(self, partitions: frozenset[int]) -> None:
        """The leases may run out before the next heartbeat gets through (the database away, or this
        replica cut off from it): no more deliveries, and what is in hand waits to learn whether the
        partitions are still this replica's before it writes, rather than after another owner's events."""
        log.warning("partitions_fenced", partitions=sorted(partitions))
        for partition in sorted(partitions):
            await self._subscriptions.cancel(partition)
        self._consumer.fence(partitions)
        self._fenced |= partitions

    async def _resume(self, kept: frozenset[int]) -> None:
        """A heartbeat got through: the fenced partitions still held are consumed again (those lost were
        dropped, and their messages in hand went back to the queue)."""
        self._fenced = frozenset()
        if not kept:
            return
        self._consumer.restore(kept)
        if not self.stopping:
            for partition in sorted(kept):
                await self._subscriptions.take(partition)
        log.info("partitions_resumed", partitions=sorted(kept))

    async def _give_back(self, partitions: Iterable[int]) -> None:
        given = frozenset(partitions)
        await self._drop(given, "released")
        await self._leases.release(tuple(sorted(given)))
        log.info("partitions_released", partitions=sorted(given), owned=len(self._owned))

    async def _drop(self, partitions: frozenset[int], change: str) -> None:
        """Stops consuming and relaying these partitions once what of them is in hand is done (at once
        when they were lost: their messages in hand then go back to the queue)."""
        for partition in sorted(partitions):
            await self._subscriptions.cancel(partition)
        if change == "lost":
            self._consumer.revoke(partitions)
        await self._consumer.settled(partitions, SETTLE_WITHIN)
        await self._relay.let_go(partitions, within=0.0 if change == "lost" else SETTLE_WITHIN)
        self._owned -= partitions
        for partition in partitions:
            self._metrics.partition_owned.labels(str(partition)).set(0)
        self._metrics.partition_handovers.labels(change).inc(len(partitions))

    async def stop_consuming(self) -> None:
        """The first step of a shutdown: no new deliveries; the leases are still renewed meanwhile."""
        self.stopping = True
        await self._subscriptions.cancel_all()

    async def leave(self) -> None:
        """The last step of a shutdown: every lease goes back for the other replicas to take at once."""
        with contextlib.suppress(*TRANSIENT_ERRORS):
            await self._leases.leave()
        for partition in self._owned:
            self._metrics.partition_owned.labels(str(partition)).set(0)
        self._owned = frozenset()
