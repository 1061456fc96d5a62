"""Bookings: the booking service's domain, free of I/O.

A booking is recorded PENDING before its seats are asked for, then settled by what the event
service answered. `outcome()` turns a settled booking into the answer its caller gets, the
same for the first request and every retry with the same idempotency key.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from service_runtime.errors import Conflict, DomainError, NotFound, Unavailable
from service_runtime.validation import check_int, check_text, parse_uuid

MAX_USER_ID_LENGTH = 64
MAX_IDEMPOTENCY_KEY_LENGTH = 128


class BookingStatus(enum.Enum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"


class RejectReason(enum.Enum):
    SOLD_OUT = "SOLD_OUT"
    EVENT_NOT_FOUND = "EVENT_NOT_FOUND"
    # Given up while PENDING (the event service could not be reached in time): its seats,
    # if any were reserved, were released.
    ABANDONED = "ABANDONED"


class SeatOutcome(enum.Enum):
    """What the event service holds for a booking id."""

    RESERVED = "RESERVED"
    SOLD_OUT = "SOLD_OUT"
    EVENT_NOT_FOUND = "EVENT_NOT_FOUND"
    RELEASED = "RELEASED"
    NONE = "NONE"


class SeatsUnavailable(Exception):
    """The event service gave no answer (within its deadline and retries). Raised by the
    seats port; the booking it concerns stays as it is, for a retry or the reconciler."""


class SeatsRejected(Exception):
    """The event service refused a booking's seats in a way the booking service never causes
    (for example BOOKING_ID_REUSED, or a seat count above its own limit)."""


@dataclass(frozen=True, slots=True)
class Booking:
    id: uuid.UUID
    user_id: str
    event_id: uuid.UUID
    seats: int
    status: BookingStatus
    reject_reason: RejectReason | None
    idempotency_key: str | None
    request_hash: bytes | None
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True, slots=True)
class NewBooking:
    id: uuid.UUID
    user_id: str
    event_id: uuid.UUID
    seats: int
    idempotency_key: str | None
    request_hash: bytes | None


# A PENDING booking's outcome: (booking id, status, reason).
Settlement = tuple[uuid.UUID, BookingStatus, RejectReason | None]


@dataclass(frozen=True, slots=True)
class Limits:
    max_seats_per_booking: int = 20


class BookingNotFound(NotFound):
    def __init__(self, booking_id: uuid.UUID) -> None:
        super().__init__(f"booking {booking_id} not found", booking_id=str(booking_id))


class EventNotFound(NotFound):
    def __init__(self, booking: Booking) -> None:
        super().__init__(
            f"event {booking.event_id} not found", event_id=str(booking.event_id), booking_id=str(booking.id)
        )


class SoldOut(Conflict):
    def __init__(self, booking: Booking) -> None:
        super().__init__(
            f"event {booking.event_id} does not have {booking.seats} seat(s) left",
            event_id=str(booking.event_id),
            booking_id=str(booking.id),
        )


class BookingAbandoned(Conflict):
    def __init__(self, booking: Booking) -> None:
        super().__init__(
            f"booking {booking.id} was abandoned: the event service could not be reached in time, "
            "no seats are held; book again with a new Idempotency-Key",
            booking_id=str(booking.id),
        )


class IdempotencyKeyReused(DomainError):
    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used for a different request", idempotency_key=key)


class EventServiceUnavailable(Unavailable):
    def __init__(self, booking_id: uuid.UUID, retry_after_seconds: int) -> None:
        super().__init__(
            f"the event service cannot be reached; booking {booking_id} is PENDING and will be settled "
            "automatically, or retry with the same Idempotency-Key",
            retry_after_seconds=retry_after_seconds,
            booking_id=str(booking_id),
        )


class NotCancellable(Conflict):
    def __init__(self, booking: Booking) -> None:
        super().__init__(
            f"booking {booking.id} is {booking.status.value} and cannot be cancelled",
            booking_id=str(booking.id),
            status=booking.status.value,
        )


def request_hash(event_id: uuid.UUID, user_id: str, seats: int) -> bytes:
    return hashlib.sha256(f"{event_id}\n{user_id}\n{seats}".encode()).digest()


def new_booking(event_id: str, user_id: str, seats: int, idempotency_key: str, limits: Limits) -> NewBooking:
    event = parse_uuid("event_id", event_id)
    check_text("user_id", user_id, max_length=MAX_USER_ID_LENGTH)
    seats = check_int("seats", seats or 1, minimum=1, maximum=limits.max_seats_per_booking)
    key = idempotency_key or None
    if key is not None:
        check_text("idempotency_key", key, max_length=MAX_IDEMPOTENCY_KEY_LENGTH)
    return NewBooking(
        id=uuid.uuid4(),
        user_id=user_id,
        event_id=event,
        seats=seats,
        idempotency_key=key,
        request_hash=request_hash(event, user_id, seats) if key else None,
    )


def check_same_request(existing: Booking, new: NewBooking) -> None:
    """A retry must repeat the original request exactly."""
    if existing.request_hash != new.request_hash:
        assert new.idempotency_key is not None
        raise IdempotencyKeyReused(new.idempotency_key)


def settled_status(outcome: SeatOutcome) -> tuple[BookingStatus, RejectReason | None] | None:
    """The status a PENDING booking settles to, given what the event service holds for it;
    None when nothing is held yet (the caller must release the booking id to settle it)."""
    return {
        SeatOutcome.RESERVED: (BookingStatus.CONFIRMED, None),
        SeatOutcome.SOLD_OUT: (BookingStatus.REJECTED, RejectReason.SOLD_OUT),
        SeatOutcome.EVENT_NOT_FOUND: (BookingStatus.REJECTED, RejectReason.EVENT_NOT_FOUND),
        SeatOutcome.RELEASED: (BookingStatus.REJECTED, RejectReason.ABANDONED),
    }.get(outcome)


def outcome(booking: Booking) -> Booking:
    """The answer to a create request for a settled booking: the booking, or its refusal."""
    if booking.status is BookingStatus.REJECTED:
        if booking.reject_reason is RejectReason.SOLD_OUT:
            raise SoldOut(booking)
        if booking.reject_reason is RejectReason.EVENT_NOT_FOUND:
            raise EventNotFound(booking)
        raise BookingAbandoned(booking)
    return booking


def check_cancellable(booking: Booking) -> None:
    if booking.status in (BookingStatus.PENDING, BookingStatus.REJECTED):
        raise NotCancellable(booking)


def parse_booking_id(value: str) -> uuid.UUID:
    return parse_uuid("booking_id", value)
