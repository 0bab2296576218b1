"""Batches form from what arrives together, stay within their size, and fail as a whole."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from service.adapters.rabbitmq.batching import Batcher


async def test_items_that_arrive_together_run_as_one_batch_within_the_size() -> None:
    batches: list[list[int]] = []

    async def run(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        await asyncio.sleep(0)
        return [item * 10 for item in items]

    batcher = Batcher(run, max_size=4)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    assert results == [i * 10 for i in range(10)]
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_an_item_alone_runs_at_once_and_later_items_form_the_next_batch() -> None:
    batches: list[list[str]] = []
    release = asyncio.Event()

    async def run(items: Sequence[str]) -> list[str]:
        batches.append(list(items))
        await release.wait()
        return list(items)

    batcher = Batcher(run, max_size=100)
    first = asyncio.create_task(batcher.submit("a"))
    await asyncio.sleep(0.01)
    later = [asyncio.create_task(batcher.submit(x)) for x in "bcd"]
    await asyncio.sleep(0.01)
    assert batches == [["a"]]
    release.set()
    assert await asyncio.gather(first, *later) == ["a", "b", "c", "d"]
    assert batches == [["a"], ["b", "c", "d"]]


async def test_a_failed_batch_fails_each_of_its_items_and_the_next_batch_still_runs() -> None:
    async def run(items: Sequence[int]) -> list[int]:
        await asyncio.sleep(0)
        if 3 in items:
            raise ValueError("bad item")
        return list(items)

    batcher = Batcher(run, max_size=4)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(6)), return_exceptions=True)
    assert [type(r) for r in results[:4]] == [ValueError] * 4
    assert results[4:] == [4, 5]
    with pytest.raises(ValueError, match="bad item"):
        await batcher.submit(3)


async def test_once_batches_hold_several_items_the_first_waits_for_more_up_to_the_linger() -> None:
    batches: list[list[int]] = []

    async def run(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        return list(items)

    batcher = Batcher(run, max_size=100, linger=0.05)
    # Alone: no wait.
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await batcher.submit(0) == 0
    assert loop.time() - started < 0.04
    # Several at once: the batch holds more than one, so the next first item waits for company.
    await asyncio.gather(batcher.submit(1), batcher.submit(2))
    first = asyncio.create_task(batcher.submit(3))
    await asyncio.sleep(0.02)
    later = asyncio.create_task(batcher.submit(4))
    assert list(await asyncio.gather(first, later)) == [3, 4]
    assert batches == [[0], [1, 2], [3, 4]]


async def test_a_batch_of_one_ends_the_wait() -> None:
    batcher: Batcher[int, int] = Batcher(_echo, max_size=100, linger=0.2)
    loop = asyncio.get_running_loop()
    await asyncio.gather(batcher.submit(1), batcher.submit(2))  # several: the next first item waits
    started = loop.time()
    await batcher.submit(3)
    assert loop.time() - started >= 0.15
    started = loop.time()
    await batcher.submit(4)  # after a batch of one: no wait
    assert loop.time() - started < 0.1


async def test_an_interrupted_batch_fails_its_items_and_those_waiting_with_an_ordinary_error() -> None:
    started = asyncio.Event()

    async def run(items: Sequence[int]) -> list[int]:
        started.set()
        await asyncio.sleep(10)
        return list(items)

    batcher = Batcher(run, max_size=1)
    first = asyncio.create_task(batcher.submit(1))
    second = asyncio.create_task(batcher.submit(2))
    await started.wait()
    assert batcher._worker is not None
    batcher._worker.cancel()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]


async def test_a_worker_cancelled_while_waiting_for_company_fails_the_waiting_items() -> None:
    batcher: Batcher[int, int] = Batcher(_echo, max_size=100, linger=10.0)
    await asyncio.gather(batcher.submit(1), batcher.submit(2))  # several: the next first item waits
    waiting = asyncio.create_task(batcher.submit(3))
    await asyncio.sleep(0.05)
    assert batcher._worker is not None
    batcher._worker.cancel()
    with pytest.raises(RuntimeError, match="interrupted"):
        await waiting


async def _echo(items: Sequence[int]) -> list[int]:
    await asyncio.sleep(0)
    return list(items)
