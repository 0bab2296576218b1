"""Partitions: which partition a key belongs to, and how many partitions each live replica should own.

Each replica decides for itself from the same facts (the live replicas, in id order, and the leases);
the shares add up to the number of partitions, so the replicas agree without talking to each other.
A replica keeps the partitions it has up to its share (a partition moves only when the set of replicas
changes) and gives the excess back, highest first, for a replica below its share to take.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass

PARTITIONS = 16
"""Partitions by default (`UPSELL_PARTITIONS`): a deployment constant, the most replicas that consume at once."""


def partition_of(key: str, partitions: int) -> int:
    """The outbox partition of a correlation id: stable across processes, versions and machines."""
    return zlib.crc32(key.encode()) % partitions


def share(live: Sequence[str], me: str, partitions: int) -> int:
    """This replica's share: an equal part, one more for the first replicas (in id order) while the
    partitions do not divide evenly. A replica the others do not see yet counts itself in."""
    replicas = sorted({*live, me})
    base, extra = divmod(partitions, len(replicas))
    return base + (1 if replicas.index(me) < extra else 0)


@dataclass(frozen=True, slots=True)
class Plan:
    claim: tuple[int, ...]
    release: tuple[int, ...]


def plan(owned: Collection[int], free: Collection[int], quota: int) -> Plan:
    """What to claim (free partitions, lowest first) or give back (owned ones, highest first) to reach
    the quota."""
    if len(owned) > quota:
        return Plan((), tuple(sorted(owned, reverse=True)[: len(owned) - quota]))
    wanted = quota - len(owned)
    return Plan(tuple(sorted(set(free) - set(owned))[:wanted]), ())
