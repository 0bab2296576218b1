"""`upsell partitions`: who holds which partition, how deep its queue is, and what of its outbox waits.

What an on-call engineer looks at first when events stall with several replicas: a partition held by
nobody, a replica not seen for a while, one queue deeper than the others. Exit codes: 0 shown; 1 a
server cannot be reached.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from datetime import datetime

import aio_pika
import asyncpg
import msgspec

from service.adapters.rabbitmq.topology import Topology, queue_stats
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class PartitionState:
    partition: int
    owner: str | None
    lease_left_s: float | None
    queued: int
    consumers: int
    outbox_waiting: int


@dataclass(frozen=True, slots=True)
class Replica:
    id: str
    started_at: datetime
    seen_s_ago: float
    partitions: int


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("partitions", help="partition owners, queue depths and outbox backlogs")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of tables")


async def read(settings: Settings, topology: Topology) -> tuple[list[Replica], list[PartitionState]]:
    conn = await asyncpg.connect(settings.database_url, timeout=10)
    try:
        leases = await conn.fetch(
            "select partition, case when expires_at > now() then owner end as owner,"
            " extract(epoch from expires_at - now())::float8 as left_s from partition_leases order by partition"
        )
        replicas = await conn.fetch(
            "select r.id, r.started_at, extract(epoch from now() - r.seen_at)::float8 as ago,"
            " (select count(*) from partition_leases l where l.owner = r.id and l.expires_at > now()) as held"
            " from replicas r order by r.id"
        )
        rows = await conn.fetch("select partition, count(*) as n from outbox where published_at is null group by 1")
        waiting: dict[int, int] = {row["partition"]: row["n"] for row in rows}
    finally:
        await conn.close()
    connection = await aio_pika.connect(settings.amqp_url, timeout=10)
    try:
        channel = await connection.channel()
        depths = [await queue_stats(channel, name) for name in topology.partition_queues]
    finally:
        await connection.close()
    owners = {row["partition"]: row for row in leases}
    states = [
        PartitionState(
            p,
            owners[p]["owner"] if p in owners else None,
            round(owners[p]["left_s"], 1) if p in owners and owners[p]["owner"] else None,
            depths[p][0],
            depths[p][1],
            waiting.get(p, 0),
        )
        for p in range(topology.partitions)
    ]
    seen = [Replica(r["id"], r["started_at"], round(r["ago"], 1), r["held"]) for r in replicas]
    return seen, states


async def run(settings: Settings, args: argparse.Namespace) -> int:
    replicas, states = await read(settings, Topology(partitions=settings.partitions))
    if args.json:
        for replica in replicas:
            print(msgspec.json.encode({"replica": asdict(replica)}).decode())
        for state in states:
            print(msgspec.json.encode(asdict(state)).decode())
        return 0
    print(f"{'replica':<40} {'partitions':>10} {'seen (s ago)':>12}  started")
    for replica in replicas:
        started = f"{replica.started_at:%Y-%m-%d %H:%M:%S}Z"
        print(f"{replica.id:<40} {replica.partitions:>10} {replica.seen_s_ago:>12}  {started}")
    print()
    print(f"{'partition':>9} {'owner':<40} {'lease (s)':>9} {'queued':>7} {'consumers':>9} {'outbox':>7}")
    for s in states:
        lease = "" if s.lease_left_s is None else f"{s.lease_left_s:.1f}"
        owner = s.owner or "(none)"
        print(f"{s.partition:>9} {owner:<40} {lease:>9} {s.queued:>7} {s.consumers:>9} {s.outbox_waiting:>7}")
    return 0
