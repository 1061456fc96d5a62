"""Coalesces concurrent seat reservations for the same event into one transaction.

In a flash sale every reservation updates the same event row, so one statement per call
serialises every caller on that row's lock and pays a commit each. Here calls are batched per
event (`service_runtime.batching`), and each batch is one transaction that locks the event
row once and is decided exactly as one-by-one calls in arrival order would be
(`domain.allocate`): the last seats go to the earliest callers and every caller gets its own
answer. A batch that fails fails only its own calls, and being one transaction it leaves no
seat taken without its reservation.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol

from event_service.domain import Reservation, SeatRequest
from service_runtime.batching import Batcher, Failed

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
        self._batcher: Batcher[uuid.UUID, SeatRequest, Result] = Batcher(
            self._run, max_batch=max_batch, on_batch=on_batch
        )

    async def reserve(self, request: SeatRequest) -> Result:
        """Same contract as `EventRepository.reserve`, shared with concurrent callers."""
        return await self._batcher.submit(request.event_id, request)

    async def _run(self, event_id: uuid.UUID, requests: list[SeatRequest]) -> list[Result | Failed]:
        results = await self._store.reserve_batch(event_id, requests)
        if results is None:  # no such event: every caller hears so
            return [None] * len(requests)
        return list(results)

    async def close(self) -> None:
        await self._batcher.close()
