"""The event-cancellation follower: every CONFIRMED or HELD booking of a cancelled event ends
CANCELLED (cancel_reason EVENT_CANCELLED), exactly once, even if processes die half-way.

The event service gives a cancelled event's seats back itself (its reservations become
RELEASED in the cancelling transaction), so here nothing is released: bookings only change
status. Every replica runs a round every EVENT_CANCELLATION_POLL_SECONDS:
1. ListCancelledEvents from 10 minutes before the latest cancel time already listed (cancels
   that commit late, or from a clock a little behind, are not missed), all pages, into
   cancelled_events (already listed ones stay as they are);
2. for each event not yet done, the earliest cancelled first: cancel its bookings in chunks
   (SKIP LOCKED: replicas share the work), until a chunk changes nothing; then mark it done
   if no booking of it is PENDING, CONFIRMED or HELD (else a later round sweeps again).
From the moment an event is listed, no booking of it settles to CONFIRMED or HELD and no hold
of it is confirmed (see `repository`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from booking_service.domain import SeatsUnavailable
from service_runtime.faults import Faults

log = logging.getLogger(__name__)

# How far before the latest listed cancel time each poll starts again.
OVERLAP = timedelta(minutes=10)
# Bookings per chunk: one short UPDATE each, so a chunk never holds many row locks for long.
CHUNK = 200


class CancelledEventsSource(Protocol):
    async def cancelled_events(self, after: datetime | None) -> list[tuple[uuid.UUID, datetime]]: ...


class CancellationStore(Protocol):
    async def latest_cancel_time(self) -> datetime | None: ...
    async def record_cancelled(self, events: Sequence[tuple[uuid.UUID, datetime]]) -> None: ...
    async def open_cancelled(self) -> list[uuid.UUID]: ...
    async def cancel_chunk(self, event_id: uuid.UUID, limit: int) -> int: ...
    async def finish_cancelled(self, event_id: uuid.UUID) -> bool: ...


class CancellationFollower:
    def __init__(
        self,
        store: CancellationStore,
        events: CancelledEventsSource,
        *,
        chunk: int = CHUNK,
        faults: Faults | None = None,
        on_cancelled: Callable[[int], None] = lambda count: None,
        on_open: Callable[[int], None] = lambda count: None,
    ) -> None:
        self._store = store
        self._events = events
        self._chunk = chunk
        self._faults = faults or Faults()
        self._on_cancelled = on_cancelled
        self._on_open = on_open

    async def run_once(self) -> int:
        """One round; returns how many bookings it cancelled."""
        await self.poll()
        return await self.sweep()

    async def poll(self) -> None:
        """Lists the events cancelled since the last poll (minus the overlap)."""
        latest = await self._store.latest_cancel_time()
        try:
            events = await self._events.cancelled_events(None if latest is None else latest - OVERLAP)
        except SeatsUnavailable as error:
            # The events listed already are still swept below.
            log.warning("cannot list cancelled events: %s", error)
            return
        if events:
            await self._store.record_cancelled(events)

    async def sweep(self) -> int:
        """Cancels the bookings of every listed event not yet done."""
        cancelled = still_open = 0
        for event_id in await self._store.open_cancelled():
            cancelled += await self._sweep_event(event_id)
            if await self._store.finish_cancelled(event_id):
                log.info("event %s cancelled: all its bookings are cancelled", event_id)
            else:
                still_open += 1
        self._on_open(still_open)
        return cancelled

    async def _sweep_event(self, event_id: uuid.UUID) -> int:
        cancelled = 0
        while changed := await self._store.cancel_chunk(event_id, self._chunk):
            cancelled += changed
            self._on_cancelled(changed)
            self._faults.point("event_cancel_after_chunk")
        return cancelled
