"""Natural batching: concurrent calls for the same key share one batched operation.

The first call for a key starts a batch at once, so a lone call waits for nothing; calls that
arrive while a batch runs queue up and form the next one. Under load, batches grow by
themselves to the arrival rate times the batch's duration, which turns N round trips and N
commits into one of each. Each caller gets its own result, in its arrival position; when a
batch fails, only its own callers get the error. The batch runs in a task of its own, so a
caller that goes away (a cancelled request) never cancels the batch it is part of.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Failed:
    """A batch result that fails only its own caller, with `error`."""

    error: Exception


class Batcher(Generic[K, T, R]):
    def __init__(
        self,
        run_batch: Callable[[K, list[T]], Awaitable[list[R | Failed]]],
        *,
        max_batch: int = 256,
        max_in_flight: int = 1,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:
        """`run_batch(key, items)` must return one result per item, in order (a `Failed` for
        an item that failed on its own); if it raises, every caller of the batch gets the error.

        `max_in_flight` batches of one key may run at once. With 1, batches of a key run one
        after the other, in arrival order (what the event service's seat decisions need); more
        lets independent writes overlap, trading a little batch size for less waiting."""
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._on_batch = on_batch
        self._queues: dict[K, list[tuple[T, asyncio.Future[R]]]] = {}
        self._drainers: dict[K, set[asyncio.Task[None]]] = {}

    async def submit(self, key: K, item: T) -> R:
        return await asyncio.shield(self._enqueue(key, [item])[0])

    async def submit_many(self, key: K, items: Sequence[T]) -> list[R]:
        """Queues `items` together, in order, so that they share batches with each other (and
        with whatever else is queued); one result per item. A failed item raises its error."""
        if not items:
            return []
        futures = self._enqueue(key, items)
        return list(await asyncio.shield(asyncio.gather(*futures)))

    def _enqueue(self, key: K, items: Sequence[T]) -> list[asyncio.Future[R]]:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[R]] = [loop.create_future() for _ in items]
        self._queues.setdefault(key, []).extend(zip(items, futures, strict=True))
        drainers = self._drainers.setdefault(key, set())
        if len(drainers) < self._max_in_flight:
            drainers.add(asyncio.create_task(self._drain(key)))
        return futures

    async def _drain(self, key: K) -> None:
        try:
            while queue := self._queues.get(key):
                batch = queue[: self._max_batch]
                del queue[: self._max_batch]
                self._on_batch(len(batch))
                try:
                    results = await self._run_batch(key, [item for item, _ in batch])
                except Exception as error:
                    log.warning("batch of %d for %s failed: %r", len(batch), key, error)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                if len(results) != len(batch):
                    raise AssertionError(f"batch of {len(batch)} got {len(results)} results")
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, Failed):
                        future.set_exception(result.error)
                    else:
                        future.set_result(result)
        finally:
            # No await between the loop's empty check and here: no call can slip in between.
            drainers = self._drainers[key]
            current = asyncio.current_task()
            assert current is not None
            drainers.discard(current)
            if not drainers:
                del self._drainers[key]
                self._queues.pop(key, None)

    async def close(self) -> None:
        """Waits for the batches in flight (at shutdown, once no new calls come in)."""
        tasks = [task for drainers in self._drainers.values() for task in drainers]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
