"""In-memory stand-ins for the booking service's ports, for unit tests of its logic."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from booking_service.domain import (
    Booking,
    BookingStatus,
    NewBooking,
    RejectReason,
    SeatOutcome,
    SeatsRejected,
    SeatsUnavailable,
    Settlement,
)
from service_runtime.batching import Failed


class FakeStore:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Booking] = {}
        self.writes = 0
        self.statements = 0

    async def insert_pending(self, news: Sequence[NewBooking]) -> list[Booking | Failed | None]:
        self.statements += 1
        return [self._insert(new) for new in news]

    def _insert(self, new: NewBooking) -> Booking | None:
        if new.idempotency_key and any(b.idempotency_key == new.idempotency_key for b in self.rows.values()):
            return None
        now = datetime.now(UTC)
        booking = Booking(
            new.id,
            new.user_id,
            new.event_id,
            new.seats,
            BookingStatus.PENDING,
            None,
            new.idempotency_key,
            new.request_hash,
            now,
            now,
        )
        self.rows[new.id] = booking
        self.writes += 1
        return booking

    async def get(self, booking_id: uuid.UUID) -> Booking | None:
        return self.rows.get(booking_id)

    async def get_by_keys(self, keys: Collection[str]) -> dict[str, Booking]:
        return {
            b.idempotency_key: b
            for b in self.rows.values()
            if b.idempotency_key is not None and b.idempotency_key in keys
        }

    async def settle(self, settlements: Sequence[Settlement]) -> dict[uuid.UUID, Booking]:
        self.statements += 1
        settled = {}
        for booking_id, status, reason in settlements:
            if (moved := await self.transition(booking_id, [BookingStatus.PENDING], status, reason)) is not None:
                settled[booking_id] = moved
        return settled

    async def transition(
        self, booking_id: uuid.UUID, frm: Any, to: BookingStatus, reason: RejectReason | None = None
    ) -> Booking | None:
        booking = self.rows.get(booking_id)
        if booking is None or booking.status not in frm:
            return None
        self.rows[booking_id] = replace(booking, status=to, reject_reason=reason, update_time=datetime.now(UTC))
        self.writes += 1
        return self.rows[booking_id]

    async def list_for_user(self, user_id: str, limit: int, after: Any) -> list[Booking]:
        mine = sorted(
            (b for b in self.rows.values() if b.user_id == user_id), key=lambda b: (b.create_time, b.id), reverse=True
        )
        if after is not None:
            mine = [b for b in mine if (b.create_time, b.id) < after]
        return mine[:limit]

    async def lease_unsettled(self, min_age: timedelta, lease: timedelta, limit: int) -> list[uuid.UUID]:
        cutoff = datetime.now(UTC) - min_age
        return [
            b.id
            for b in self.rows.values()
            if b.status in (BookingStatus.PENDING, BookingStatus.CANCELLING) and b.update_time <= cutoff
        ][:limit]

    @asynccontextmanager
    async def locked_unsettled(self, booking_id: uuid.UUID) -> AsyncIterator[Any]:
        found = self.rows.get(booking_id)
        if found is None or found.status not in (BookingStatus.PENDING, BookingStatus.CANCELLING):
            yield None
            return
        store = self

        class Locked:
            def __init__(self, booking: Booking) -> None:
                self.booking = booking

            async def transition(self, to: BookingStatus, reason: RejectReason | None = None) -> Booking:
                updated = await store.transition(booking_id, [self.booking.status], to, reason)
                assert updated is not None
                self.booking = updated
                return updated

        yield Locked(found)


class FakeSeats:
    """The event service: seats per event, a record per booking id, and an on/off switch."""

    def __init__(self, seats: dict[uuid.UUID, int]) -> None:
        self.available = dict(seats)
        self.records: dict[uuid.UUID, tuple[SeatOutcome, uuid.UUID | None, int]] = {}
        self.up = True
        self.calls: list[str] = []
        self.batches: list[int] = []

    def _check(self, name: str) -> None:
        self.calls.append(name)
        if not self.up:
            raise SeatsUnavailable("down")

    async def reserve(self, bookings: Sequence[Booking]) -> list[SeatOutcome | SeatsRejected]:
        self._check("reserve")
        self.batches.append(len(bookings))
        return [self.reserve_one(b.id, b.event_id, b.seats) for b in bookings]

    def reserve_one(self, booking_id: uuid.UUID, event_id: uuid.UUID, seats: int) -> SeatOutcome:
        if booking_id in self.records:
            return self.records[booking_id][0]
        if event_id not in self.available:
            return SeatOutcome.EVENT_NOT_FOUND
        if self.available[event_id] < seats:
            self.records[booking_id] = (SeatOutcome.SOLD_OUT, event_id, seats)
            return SeatOutcome.SOLD_OUT
        self.available[event_id] -= seats
        self.records[booking_id] = (SeatOutcome.RESERVED, event_id, seats)
        return SeatOutcome.RESERVED

    async def release(self, booking_id: uuid.UUID) -> SeatOutcome:
        self._check("release")
        state, event_id, seats = self.records.get(booking_id, (SeatOutcome.NONE, None, 0))
        if state is SeatOutcome.RESERVED and event_id is not None:
            self.available[event_id] += seats
        if state in (SeatOutcome.RESERVED, SeatOutcome.NONE):
            self.records[booking_id] = (SeatOutcome.RELEASED, event_id, seats)
            return SeatOutcome.RELEASED
        return state

    async def lookup(self, booking_id: uuid.UUID) -> SeatOutcome:
        self._check("lookup")
        return self.records.get(booking_id, (SeatOutcome.NONE, None, 0))[0]
