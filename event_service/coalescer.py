"""Coalesces concurrent seat reservations into one transaction.

In a flash sale every reservation updates the same event row, so one statement per call
serialises every caller on that row's lock and pays a commit each. Here concurrent calls are
batched (`service_runtime.batching`), one batch at a time so that arrival order is kept, and
each batch is one transaction that locks each of its events' rows once and decides each
event's calls exactly as one-by-one calls in arrival order would be (`domain.allocate`): the
last seats go to the earliest callers and every caller gets its own answer. Calls for many
events share one batch too, so a load spread over many events also pays one commit per batch.
A batch that fails fails only its own calls, and being one transaction it leaves no seat taken
without its reservation.
"""

from __future__ import annotations

from collections.abc import Callable

from event_service.domain import SeatRequest
from event_service.service import Decided, ReserveMany
from service_runtime.batching import Batcher, Failed


class ReservationCoalescer:
    def __init__(
        self, decide: ReserveMany, max_batch: int = 256, on_batch: Callable[[int], None] = lambda size: None
    ) -> None:
        self._decide = decide
        # One batch at a time: arrival order decides who gets the last seats.
        self._batcher: Batcher[None, SeatRequest, Decided] = Batcher(
            self._run, max_batch=max_batch, max_in_flight=1, on_batch=on_batch
        )

    async def reserve_many(self, requests: list[SeatRequest]) -> list[Decided]:
        """Same contract as `EventRepository.reserve_batch`; the requests join the queue
        together, in order, and share a transaction with whatever else is queued."""
        return await self._batcher.submit_many(None, requests)

    async def _run(self, _: None, requests: list[SeatRequest]) -> list[Decided | Failed]:
        return list(await self._decide(requests))

    async def close(self) -> None:
        await self._batcher.close()
