"""Partitions: a key's partition is stable, and the replicas' shares add up and move little."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.partitions import partition_of, plan, share

replica_ids = st.lists(st.text("abcdef0123456789-", min_size=1, max_size=12), min_size=1, max_size=20, unique=True)


def test_a_key_keeps_its_partition_across_processes() -> None:
    # crc32 of the key, not Python's hash(), which changes with every process.
    assert partition_of("cs_1", 16) == partition_of("cs_1", 16) == 0x329D1059 % 16
    assert {partition_of(f"cs_{n}", 16) for n in range(1000)} == set(range(16))


@given(replica_ids, st.integers(1, 1024))
def test_shares_add_up_to_the_partitions_and_differ_by_one_at_most(live: list[str], partitions: int) -> None:
    shares = [share(live, me, partitions) for me in live]
    assert sum(shares) == partitions
    assert max(shares) - min(shares) <= 1


def test_a_replica_not_seen_yet_counts_itself_in() -> None:
    assert share(["a"], "b", 16) == 8
    assert [share(["a", "b", "c"], me, 16) for me in "abc"] == [6, 5, 5]


@pytest.mark.parametrize(
    ("owned", "free", "quota", "claim", "release"),
    [
        ({0, 1, 2}, set(), 3, (), ()),
        (set(range(16)), set(), 8, (), (15, 14, 13, 12, 11, 10, 9, 8)),
        (set(), {3, 1, 2}, 2, (1, 2), ()),
        ({0}, {0, 5, 6}, 2, (5,), ()),
        ({0}, set(), 4, (), ()),
    ],
)
def test_plan_reaches_the_quota(
    owned: set[int], free: set[int], quota: int, claim: tuple[int, ...], release: tuple[int, ...]
) -> None:
    step = plan(owned, free, quota)
    assert (step.claim, step.release) == (claim, release)


@given(st.integers(1, 64), st.integers(1, 8), st.integers(1, 8))
def test_replicas_that_follow_their_plans_own_every_partition_once(partitions: int, before: int, after: int) -> None:
    """From any balanced start, a change in the number of replicas converges in two rounds, moving only
    what the new shares need."""
    names = [f"r{n}" for n in range(max(before, after))]
    owned: dict[str, set[int]] = {name: set() for name in names}
    for p in range(partitions):
        owned[names[p % before]].add(p)
    live = names[:after]
    for name in names[after:]:
        owned[name] = set()  # gone: its leases ran out
    for _ in range(2):
        for name in live:
            free = set(range(partitions)) - set().union(*owned.values())
            step = plan(owned[name], free, share(live, name, partitions))
            owned[name] = (owned[name] - set(step.release)) | set(step.claim)
    assert sorted(p for name in live for p in owned[name]) == list(range(partitions))
    assert all(len(owned[name]) == share(live, name, partitions) for name in live)
