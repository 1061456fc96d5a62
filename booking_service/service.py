"""The booking service's use cases: primitives in, domain objects out.

Creating a booking is a small saga across two databases: the booking row first (PENDING),
then the seats (ReserveSeats, idempotent by booking id), then the booking's final status.
Once the row is written, the rest runs as detached work that a client disconnect cannot
cancel; if the process dies in between, the reconciler settles the booking.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from booking_service.domain import (
    Booking,
    BookingNotFound,
    BookingStatus,
    EventServiceUnavailable,
    Limits,
    NewBooking,
    RejectReason,
    SeatOutcome,
    SeatsUnavailable,
    check_cancellable,
    check_same_request,
    new_booking,
    outcome,
    parse_booking_id,
    settled_status,
)
from service_runtime.faults import Faults
from service_runtime.tasks import DetachedTasks
from service_runtime.validation import check_text, decode_position, encode_position, page_size


class Store(Protocol):
    async def insert_pending(self, new: NewBooking) -> Booking | None: ...
    async def get(self, booking_id: uuid.UUID) -> Booking | None: ...
    async def get_by_key(self, key: str) -> Booking | None: ...
    async def transition(
        self, booking_id: uuid.UUID, frm: list[BookingStatus], to: BookingStatus, reason: RejectReason | None = None
    ) -> Booking | None: ...
    async def list_for_user(
        self, user_id: str, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Booking]: ...


class Seats(Protocol):
    """The event service. Every method raises SeatsUnavailable when it cannot be reached."""

    async def reserve(self, booking_id: uuid.UUID, event_id: uuid.UUID, seats: int) -> SeatOutcome: ...
    async def release(self, booking_id: uuid.UUID) -> SeatOutcome: ...
    async def lookup(self, booking_id: uuid.UUID) -> SeatOutcome: ...


@dataclass(frozen=True)
class BookingPage:
    bookings: list[Booking]
    next_page_token: str


class BookingService:
    def __init__(
        self,
        store: Store,
        seats: Seats,
        limits: Limits,
        tasks: DetachedTasks,
        *,
        retry_after: timedelta = timedelta(seconds=5),
        faults: Faults | None = None,
        on_outcome: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self._store = store
        self._seats = seats
        self.limits = limits
        self._tasks = tasks
        self._retry_after = max(1, int(retry_after.total_seconds()))
        self._faults = faults or Faults()
        self._on_outcome = on_outcome

    async def create_booking(self, event_id: str, user_id: str, seats: int, idempotency_key: str) -> Booking:
        """Books the seats; returns the CONFIRMED booking, or raises SoldOut, EventNotFound,
        BookingAbandoned, IdempotencyKeyReused or EventServiceUnavailable. A retry with the
        same idempotency key gets the same answer without booking again."""
        new = new_booking(event_id, user_id, seats, idempotency_key, self.limits)
        booking = await self._tasks.run(self._create(new))
        self._on_outcome(booking.reject_reason.value if booking.reject_reason else booking.status.value)
        return outcome(booking)

    async def _create(self, new: NewBooking) -> Booking:
        booking = await self._store.insert_pending(new)
        if booking is None:
            assert new.idempotency_key is not None
            existing = await self._store.get_by_key(new.idempotency_key)
            assert existing is not None, "the key's booking exists: the insert conflicted with it"
            check_same_request(existing, new)
            booking = existing
        if booking.status is BookingStatus.PENDING:
            booking = await self._settle_pending(booking)
        return booking

    async def _settle_pending(self, booking: Booking) -> Booking:
        try:
            seats = await self._seats.reserve(booking.id, booking.event_id, booking.seats)
        except SeatsUnavailable:
            self._on_outcome("UNAVAILABLE")
            raise EventServiceUnavailable(booking.id, self._retry_after) from None
        self._faults.point("after_reserve")
        settled = settled_status(seats)
        assert settled is not None, f"ReserveSeats answered {seats}"
        status, reason = settled
        updated = await self._store.transition(booking.id, [BookingStatus.PENDING], status, reason)
        # None: someone else settled it first (a concurrent retry, or the reconciler).
        return updated or await self._get(booking.id)

    async def get_booking(self, booking_id: str) -> Booking:
        return await self._get(parse_booking_id(booking_id))

    async def list_user_bookings(self, user_id: str, size: int, token: str) -> BookingPage:
        check_text("user_id", user_id, max_length=64)
        limit = page_size("page_size", size)
        after = decode_position("page_token", token)
        bookings = await self._store.list_for_user(user_id, limit + 1, after)
        next_token = ""
        if len(bookings) > limit:
            bookings = bookings[:limit]
            next_token = encode_position(bookings[-1].create_time, bookings[-1].id)
        return BookingPage(bookings, next_token)

    async def cancel_booking(self, booking_id: str) -> Booking:
        """CONFIRMED -> CANCELLING -> (seats given back) -> CANCELLED, exactly once however
        many cancels race; a cancelled booking is returned as it is."""
        parsed = parse_booking_id(booking_id)
        return await self._tasks.run(self._cancel(parsed))

    async def _cancel(self, booking_id: uuid.UUID) -> Booking:
        booking = await self._store.transition(booking_id, [BookingStatus.CONFIRMED], BookingStatus.CANCELLING)
        if booking is None:
            booking = await self._get(booking_id)
            if booking.status is BookingStatus.CANCELLED:
                return booking
            check_cancellable(booking)
        # CANCELLING: ours, or one a concurrent cancel (or a crash) left half-way.
        self._faults.point("cancel_before_release")
        try:
            await self._seats.release(booking.id)
        except SeatsUnavailable:
            raise EventServiceUnavailable(booking.id, self._retry_after) from None
        done = await self._store.transition(booking.id, [BookingStatus.CANCELLING], BookingStatus.CANCELLED)
        return done or await self._get(booking.id)

    async def _get(self, booking_id: uuid.UUID) -> Booking:
        booking = await self._store.get(booking_id)
        if booking is None:
            raise BookingNotFound(booking_id)
        return booking
