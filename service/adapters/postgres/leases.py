"""Partition leases in PostgreSQL: replicas' heartbeats, and which replica owns which partition.

A lease is renewed at every heartbeat and runs out `ttl` seconds after the last one, by the database's
clock, so that a replica killed with SIGKILL loses its partitions within `ttl`; a replica that stops
cleanly gives them back at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


class PartitionCountMismatch(Exception):
    """The database was set up for another number of partitions."""


@dataclass(frozen=True, slots=True)
class Standing:
    """What a heartbeat found: the partitions this replica still owns, the replicas alive, the free
    partitions (no owner, or a lease run out)."""

    owned: frozenset[int]
    live: tuple[str, ...]
    free: frozenset[int]


_BEAT = (
    # Replicas gone for a while are forgotten; their leases ran out long before.
    "with gone as (delete from replicas where seen_at < now() - interval '10 minutes')"
    " insert into replicas (id) values ($1) on conflict (id) do update set seen_at = now()",
    "update partition_leases set expires_at = now() + make_interval(secs => $2) where owner = $1 returning partition",
    "select id from replicas where seen_at > now() - make_interval(secs => $1) order by id",
    "select partition from partition_leases where owner is null or expires_at < now()",
)


class Leases:
    def __init__(self, pool: asyncpg.Pool, replica: str, partitions: int, ttl: float) -> None:
        self._pool = pool
        self.replica = replica
        self.partitions = partitions
        self.ttl = ttl

    async def prepare(self) -> None:
        """Records the number of partitions on first start and refuses another one later."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("lock table partitioning in exclusive mode")
            recorded = await conn.fetchval("select partitions from partitioning")
            if recorded is None:
                await conn.execute("insert into partitioning (partitions) values ($1)", self.partitions)
                await conn.execute(
                    "insert into partition_leases (partition) select generate_series(0, $1 - 1) on conflict do nothing",
                    self.partitions,
                )
            elif recorded != self.partitions:
                raise PartitionCountMismatch(
                    f"the database runs with {recorded} partitions and this replica with UPSELL_PARTITIONS="
                    f"{self.partitions}; change the number as docs/scaling.md says"
                )

    async def beat(self) -> Standing:
        """Says this replica is alive, renews its leases and reads the others' (one transaction)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_BEAT[0], self.replica)
            owned = await conn.fetch(_BEAT[1], self.replica, self.ttl)
            live = await conn.fetch(_BEAT[2], self.ttl)
            free = await conn.fetch(_BEAT[3])
        return Standing(
            frozenset(r["partition"] for r in owned),
            tuple(r["id"] for r in live),
            frozenset(r["partition"] for r in free),
        )

    async def claim(self, partitions: tuple[int, ...]) -> frozenset[int]:
        """Takes those of the partitions still free; returns the ones taken."""
        rows = await self._pool.fetch(
            "update partition_leases set owner = $1, expires_at = now() + make_interval(secs => $3),"
            " taken_at = now() where partition = any($2::int[]) and (owner is null or expires_at < now())"
            " returning partition",
            self.replica,
            list(partitions),
            self.ttl,
        )
        return frozenset(r["partition"] for r in rows)

    async def release(self, partitions: tuple[int, ...]) -> None:
        await self._pool.execute(
            "update partition_leases set owner = null, expires_at = '-infinity'"
            " where partition = any($2::int[]) and owner = $1",
            self.replica,
            list(partitions),
        )

    async def leave(self) -> None:
        """Gives every lease back and leaves the replicas, so that the others take over at once."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "update partition_leases set owner = null, expires_at = '-infinity' where owner = $1", self.replica
            )
            await conn.execute("delete from replicas where id = $1", self.replica)

    async def owners(self) -> dict[int, str | None]:
        rows = await self._pool.fetch(
            "select partition, case when expires_at > now() then owner end as owner from partition_leases"
        )
        return {r["partition"]: r["owner"] for r in rows}
