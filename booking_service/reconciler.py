"""Settles bookings that their request (or the hold sweeper) left unsettled (the event service
was down, or the process died between two steps), so that no booking stays PENDING,
CANCELLING or EXPIRING for good and no seat is held without a CONFIRMED or HELD booking.

Each round leases the unsettled bookings older than `min_age` (other replicas skip leased
ones), then settles each under its row lock, which keeps requests from confirming a booking
while its seats are being released:
- PENDING: ask the event service what it holds for the booking id. RESERVED -> CONFIRMED
  (HELD for a hold; CANCELLED if its event is listed cancelled, as in the request's own
  settlement); SOLD_OUT / RELEASED / refused -> REJECTED. Nothing -> ReleaseSeats(booking
  id), which records the id as released so a reservation still on its way is refused, then
  REJECTED (ABANDONED).
- CANCELLING: ReleaseSeats (idempotent), then CANCELLED.
- EXPIRING: ReleaseSeats (idempotent), then EXPIRED.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Protocol

from booking_service.domain import (
    Booking,
    BookingStatus,
    RejectReason,
    SeatsRejected,
    SeatsUnavailable,
    Settlement,
    settlement,
)
from booking_service.service import Seats

log = logging.getLogger(__name__)


class LockedBooking(Protocol):
    """A booking held under its row lock for as long as the `locked_unsettled` block lasts."""

    booking: Booking

    async def transition(self, to: BookingStatus, reason: RejectReason | None = None) -> Booking: ...
    async def settle(self, settlement: Settlement) -> Booking: ...


class UnsettledStore(Protocol):
    async def lease_unsettled(self, min_age: timedelta, lease: timedelta, limit: int) -> list[uuid.UUID]: ...
    def locked_unsettled(self, booking_id: uuid.UUID) -> AbstractAsyncContextManager[LockedBooking | None]: ...


class Reconciler:
    def __init__(
        self,
        store: UnsettledStore,
        seats: Seats,
        *,
        min_age: timedelta,
        interval: timedelta,
        batch: int = 100,
        on_settled: Callable[[str], None] = lambda result: None,
    ) -> None:
        self._store = store
        self._seats = seats
        self.min_age = min_age
        self.interval = interval
        self._batch = batch
        self._on_settled = on_settled

    async def run_once(self) -> int:
        """One round; returns how many bookings it settled."""
        ids = await self._store.lease_unsettled(
            self.min_age, lease=self.interval * 3 + timedelta(seconds=10), limit=self._batch
        )
        settled = 0
        for booking_id in ids:
            try:
                async with self._store.locked_unsettled(booking_id) as locked:
                    if locked is not None and await self._settle(locked):
                        settled += 1
            except SeatsUnavailable:
                log.warning("event service unavailable; %d booking(s) left for the next round", len(ids) - settled)
                break
        return settled

    async def _settle(self, locked: LockedBooking) -> bool:
        booking = locked.booking
        finished = {BookingStatus.CANCELLING: BookingStatus.CANCELLED, BookingStatus.EXPIRING: BookingStatus.EXPIRED}
        if booking.status in finished:
            await self._seats.release(booking.id)
            await locked.transition(finished[booking.status])
            self._record(booking.id, finished[booking.status].value)
            return True
        settled = settlement(booking, await self._seats.lookup(booking.id))
        if settled is None:
            # Nothing held: release the id, which also blocks a reservation still in flight
            # (or releases one that landed after the lookup).
            settled = settlement(booking, await self._seats.release(booking.id))
            if settled is None:
                raise SeatsRejected(f"ReleaseSeats of booking {booking.id} answered with nothing released")
        done = await locked.settle(settled)
        self._record(booking.id, done.reject_reason.value if done.reject_reason else done.status.value)
        return True

    def _record(self, booking_id: uuid.UUID, result: str) -> None:
        log.info("reconciler settled booking %s: %s", booking_id, result)
        self._on_settled(result)
