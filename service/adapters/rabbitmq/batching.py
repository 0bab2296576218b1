"""Batches that form by themselves: what arrives while one batch is written goes into the next.

One item at a time makes batches of one and adds no wait. Under load the items that arrive while a
batch runs form the next one, and for a second after a batch of several items (until a batch of one),
the first item of a batch waits up to `linger` seconds for others: a batch costs a
few round trips whatever its size, so larger batches leave the database and the process more room,
which keeps the latency's tail short at a steady rate. Batches never exceed `max_size`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(
        self, run: Callable[[Sequence[T]], Awaitable[Sequence[R]]], max_size: int, linger: float = 0.0
    ) -> None:
        self._run = run
        self._max_size = max_size
        self._linger = linger
        self._waiting: list[tuple[T, asyncio.Future[R], float]] = []
        self._loaded_until = 0.0
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """The item's result once its batch has run; the batch's error when it failed as a whole."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future, loop.time()))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name="batcher")
        return await future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list[tuple[T, asyncio.Future[R], float]] = []
        try:
            while self._waiting:
                now = loop.time()
                wait = self._waiting[0][2] + self._linger - now
                if now < self._loaded_until and wait > 0 and len(self._waiting) < self._max_size:
                    await asyncio.sleep(wait)
                    continue
                batch, self._waiting = self._waiting[: self._max_size], self._waiting[self._max_size :]
                # Under load while batches hold several items; a batch of one ends it.
                self._loaded_until = now + 1.0 if len(batch) > 1 else 0.0
                try:
                    results = await self._run([item for item, _, _ in batch])
                except Exception as error:
                    for _, future, _ in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future, _), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                batch = []
        except BaseException:
            # Cancelled (while waiting or running): every item still here fails with an ordinary error,
            # so that each submitter can go on (apply it alone, say) rather than wait forever.
            stranded, self._waiting = [*batch, *self._waiting], []
            for _, future, _ in stranded:
                if not future.done():
                    future.set_exception(RuntimeError("the batch was interrupted"))
            raise
