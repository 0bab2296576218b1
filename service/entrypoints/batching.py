"""Batches that form by themselves: what arrives while one batch is written goes into the next.

With one item at a time a batch holds one item and adds no wait; under load batches grow up to
`max_size`, and the cost of a round trip is shared by all of them. Up to `concurrency` batches run at
once, so that an item never waits for a whole batch to end before its own starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(
        self, run: Callable[[Sequence[T]], Awaitable[Sequence[R]]], max_size: int, concurrency: int = 1
    ) -> None:
        self._run = run
        self._max_size = max_size
        self._concurrency = concurrency
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._workers: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """The item's result once its batch has run; the batch's error when it failed as a whole."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if len(self._workers) < self._concurrency:
            worker = asyncio.create_task(self._work(), name="batcher")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        return await future

    async def _work(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_size], self._waiting[self._max_size :]
            try:
                results = await self._run([item for item, _ in batch])
            except BaseException as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                if not isinstance(error, Exception):
                    raise
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
