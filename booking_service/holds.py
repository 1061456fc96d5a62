"""The hold sweeper: a hold not confirmed by its expire_time ends EXPIRED and its seats go
back on sale, without any request triggering it.

Every replica runs it (every HOLD_SWEEP_INTERVAL_SECONDS). A round: one UPDATE moves the due
holds HELD -> EXPIRING (rows leased FOR UPDATE SKIP LOCKED, so replicas share the work and a
confirm racing the expiry is decided by the row: exactly one wins); their seats are released
(ReleaseSeats, idempotent, a bounded number at a time); one UPDATE moves the released ones
EXPIRING -> EXPIRED. If the event service cannot be reached, or the process dies in between,
the bookings stay EXPIRING and the reconciler finishes them (release, then EXPIRED).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Protocol

from booking_service.domain import SeatsUnavailable
from booking_service.service import Seats

log = logging.getLogger(__name__)


class HoldStore(Protocol):
    async def start_expiring(self, limit: int) -> list[tuple[uuid.UUID, float]]: ...
    async def finish_expiring(self, booking_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]: ...


class HoldSweeper:
    def __init__(
        self,
        store: HoldStore,
        seats: Seats,
        *,
        batch: int = 500,
        concurrency: int = 16,
        on_expired: Callable[[int], None] = lambda count: None,
        on_lag: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        self._store = store
        self._seats = seats
        self._batch = batch
        self._concurrency = concurrency
        self._on_expired = on_expired
        self._on_lag = on_lag

    async def run_once(self) -> int:
        """One round (more while full batches come back); returns how many holds expired."""
        expired = 0
        while True:
            due = await self._store.start_expiring(self._batch)
            if not due:
                return expired
            for _, lag in due:
                self._on_lag(lag)
            released = await self._release([booking_id for booking_id, _ in due])
            done = await self._store.finish_expiring(released) if released else []
            expired += len(done)
            self._on_expired(len(done))
            if len(released) < len(due):
                log.warning("event service unavailable; %d hold(s) left EXPIRING", len(due) - len(released))
                return expired
            if len(due) < self._batch:
                return expired

    async def _release(self, booking_ids: list[uuid.UUID]) -> list[uuid.UUID]:
        """Releases the seats of each booking, `concurrency` at a time; returns those released."""
        gate = asyncio.Semaphore(self._concurrency)

        async def release(booking_id: uuid.UUID) -> bool:
            async with gate:
                try:
                    await self._seats.release(booking_id)
                except SeatsUnavailable:
                    return False
                return True

        results = await asyncio.gather(*(release(b) for b in booking_ids))
        return [b for b, ok in zip(booking_ids, results, strict=True) if ok]
