"""The hold sweeper: a hold not confirmed by its expire_time ends EXPIRED and its seats go
back on sale, without any request triggering it.

Every replica runs it (every HOLD_SWEEP_INTERVAL_SECONDS). A round: one UPDATE moves the due
holds HELD -> EXPIRING (rows leased FOR UPDATE SKIP LOCKED, so replicas share the work and a
confirm racing the expiry is decided by the row: exactly one wins); their seats are released
(ReleaseSeats, idempotent, a bounded number at a time); one UPDATE moves the released ones
EXPIRING -> EXPIRED. If the event service cannot be reached, or the process dies in between,
the bookings stay EXPIRING and the reconciler finishes them (release, then EXPIRED).

As the service runs it (`tick`), the releases of a round run in a task of their own: marking
due holds EXPIRING is a database update that every round makes on time, while a release may
wait seconds for a slow or restarting event service (its retries), and must not keep the next
due holds HELD past their expiry meanwhile. Holds of an event known to be cancelled are left
to the event-cancellation follower (they end CANCELLED, not EXPIRED).
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
        # Shared by every round's releases: at most `concurrency` ReleaseSeats calls at once.
        self._gate = asyncio.Semaphore(concurrency)
        self._releasing: set[asyncio.Task[int]] = set()

    async def run_once(self) -> int:
        """One round, releases included (more while full batches come back); returns how many
        holds expired."""
        expired = 0
        while True:
            due = await self._take_due()
            if not due:
                return expired
            done = await self._expire(due)
            expired += done
            if done < len(due) or len(due) < self._batch:
                return expired

    async def tick(self) -> None:
        """One round as the service runs it: the due holds are marked EXPIRING now, and their
        seats released in the background (see the module docstring)."""
        while True:
            due = await self._take_due()
            if due:
                task = asyncio.create_task(self._expire(due), name="hold releases")
                self._releasing.add(task)
                task.add_done_callback(self._releasing.discard)
            if len(due) < self._batch:
                return

    async def close(self) -> None:
        """Stops the releases in flight: what they did not finish stays EXPIRING, for the
        reconciler."""
        for task in list(self._releasing):
            task.cancel()
        await asyncio.gather(*self._releasing, return_exceptions=True)

    async def _take_due(self) -> list[uuid.UUID]:
        due = await self._store.start_expiring(self._batch)
        for _, lag in due:
            self._on_lag(lag)
        return [booking_id for booking_id, _ in due]

    async def _expire(self, booking_ids: list[uuid.UUID]) -> int:
        """Releases the holds' seats, then EXPIRING -> EXPIRED; returns how many expired."""
        released = await self._release(booking_ids)
        done = await self._store.finish_expiring(released) if released else []
        self._on_expired(len(done))
        if len(released) < len(booking_ids):
            log.warning("event service unavailable; %d hold(s) left EXPIRING", len(booking_ids) - len(released))
        return len(done)

    async def _release(self, booking_ids: list[uuid.UUID]) -> list[uuid.UUID]:
        """Releases the seats of each booking, `concurrency` at a time; returns those released."""

        async def release(booking_id: uuid.UUID) -> bool:
            async with self._gate:
                try:
                    await self._seats.release(booking_id)
                except SeatsUnavailable:
                    return False
                return True

        results = await asyncio.gather(*(release(b) for b in booking_ids))
        return [b for b, ok in zip(booking_ids, results, strict=True) if ok]
