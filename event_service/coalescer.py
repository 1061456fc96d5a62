"""Coalesces concurrent seat reservations for the same event into one transaction.

In a flash sale every reservation updates the same event row, so one-statement-per-call
serialises every caller on that row's lock and pays a commit each. The coalescer queues the
calls per event and has one task per event drain the queue: the first call starts a batch at
once (no added delay when the load is light); calls arriving while it runs form the next
batch. Each batch is decided as if its calls had run one by one in arrival order
(`domain.allocate`), so the last seats go to the earliest callers and every caller gets its
own answer. A batch that fails fails only its own calls, and being one transaction it leaves
no seat taken without its reservation.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Protocol

from event_service.domain import Reservation, SeatRequest

log = logging.getLogger(__name__)

Result = tuple[Reservation, int] | None


class BatchStore(Protocol):
    async def reserve_batch(
        self, event_id: uuid.UUID, requests: list[SeatRequest]
    ) -> list[tuple[Reservation, int]] | None: ...


class ReservationCoalescer:
    def __init__(
        self, store: BatchStore, max_batch: int = 256, on_batch: Callable[[int], None] = lambda size: None
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._on_batch = on_batch
        self._queues: dict[uuid.UUID, list[tuple[SeatRequest, asyncio.Future[Result]]]] = {}
        self._drainers: dict[uuid.UUID, asyncio.Task[None]] = {}

    async def reserve(self, request: SeatRequest) -> Result:
        """Same contract as `EventRepository.reserve`, shared with concurrent callers."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(request.event_id, []).append((request, future))
        if request.event_id not in self._drainers:
            self._drainers[request.event_id] = asyncio.create_task(self._drain(request.event_id))
        # A caller that goes away (cancelled RPC) does not cancel the batch it is part of.
        return await asyncio.shield(future)

    async def _drain(self, event_id: uuid.UUID) -> None:
        try:
            while queue := self._queues.get(event_id):
                batch = queue[: self._max_batch]
                del queue[: self._max_batch]
                self._on_batch(len(batch))
                try:
                    results: list[tuple[Reservation, int]] | None = await self._store.reserve_batch(
                        event_id, [request for request, _ in batch]
                    )
                except Exception as error:
                    log.warning("reservation batch of %d for event %s failed: %r", len(batch), event_id, error)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for index, (_, future) in enumerate(batch):
                    if not future.done():
                        future.set_result(None if results is None else results[index])
        finally:
            # No await between the empty check above and here: no call can slip in between.
            self._queues.pop(event_id, None)
            del self._drainers[event_id]

    async def close(self) -> None:
        """Waits for batches in flight (at shutdown, after the servers stopped taking calls)."""
        if self._drainers:
            await asyncio.gather(*self._drainers.values(), return_exceptions=True)
