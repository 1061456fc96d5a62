"""What a request is answered when it does not get its booking as it asked: the booking
service's domain errors, and the rules that pick one for a booking as it stands (`outcome`
for a create and its retries, `confirm_outcome` for a confirm, `check_cancellable`,
`check_same_request`). Free of I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from booking_service.domain import Booking, BookingStatus, CancelReason, Limits, NewBooking, RejectReason
from service_runtime.errors import Conflict, DomainError, NotFound, Unavailable


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


class UserLimitReached(Conflict):
    def __init__(self, booking: Booking, limit: int) -> None:
        super().__init__(
            f"user {booking.user_id} may hold at most {limit} seat(s) of event {booking.event_id}",
            event_id=str(booking.event_id),
            booking_id=str(booking.id),
            limit=limit,
        )


class SalesNotStarted(Conflict):
    def __init__(self, booking: Booking) -> None:
        facts = {k: v for k, v in (booking.reject_metadata or {}).items() if k == "sales_start_time"}
        super().__init__(
            f"sales of event {booking.event_id} have not started",
            event_id=str(booking.event_id),
            booking_id=str(booking.id),
            **facts,
        )


class SalesEnded(Conflict):
    def __init__(self, booking: Booking) -> None:
        facts = {k: v for k, v in (booking.reject_metadata or {}).items() if k == "sales_end_time"}
        super().__init__(
            f"sales of event {booking.event_id} have ended",
            event_id=str(booking.event_id),
            booking_id=str(booking.id),
            **facts,
        )


class EventCancelled(Conflict):
    def __init__(self, booking: Booking) -> None:
        super().__init__(
            f"event {booking.event_id} is cancelled", event_id=str(booking.event_id), booking_id=str(booking.id)
        )


class HoldExpired(Conflict):
    def __init__(self, booking: Booking) -> None:
        super().__init__(
            f"the hold of booking {booking.id} ran out; its seats were given back",
            booking_id=str(booking.id),
            status=booking.status.value,
        )


class NotConfirmable(Conflict):
    def __init__(self, booking: Booking) -> None:
        super().__init__(
            f"booking {booking.id} is {booking.status.value}; only a HELD booking can be confirmed",
            booking_id=str(booking.id),
            status=booking.status.value,
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


def check_same_request(existing: Booking, new: NewBooking) -> None:
    """A retry must repeat the original request exactly."""
    if existing.request_hash != new.request_hash:
        assert new.idempotency_key is not None
        raise IdempotencyKeyReused(new.idempotency_key)


_REFUSALS: dict[RejectReason, Callable[[Booking], DomainError]] = {
    RejectReason.SOLD_OUT: SoldOut,
    RejectReason.EVENT_NOT_FOUND: EventNotFound,
    RejectReason.SALES_NOT_STARTED: SalesNotStarted,
    RejectReason.SALES_ENDED: SalesEnded,
    RejectReason.EVENT_CANCELLED: EventCancelled,
    RejectReason.ABANDONED: BookingAbandoned,
}


def outcome(booking: Booking, limits: Limits) -> Booking:
    """The answer to a create request for a settled booking: the booking (CONFIRMED, HELD,
    or as it stands since), or its refusal."""
    if booking.status is BookingStatus.REJECTED:
        if booking.reject_reason is RejectReason.USER_LIMIT_REACHED:
            raise UserLimitReached(booking, limits.max_seats_per_user_per_event)
        refusal = _REFUSALS.get(booking.reject_reason or RejectReason.ABANDONED, BookingAbandoned)
        raise refusal(booking)
    return booking


def confirm_outcome(booking: Booking, expired: bool, event_cancelled: bool) -> Booking | None:
    """The answer to a confirm whose conditional update moved nothing, from the booking as
    it is now: `expired` is whether its expire_time has passed (by the database's clock),
    `event_cancelled` whether its event is known cancelled. None: it is a HELD booking that
    may be confirmed after all (it became HELD since); the caller tries again."""
    if booking.status is BookingStatus.CONFIRMED:
        return booking  # confirming twice answers the same booking
    if booking.status in (BookingStatus.EXPIRING, BookingStatus.EXPIRED):
        raise HoldExpired(booking)
    if booking.cancel_reason is CancelReason.EVENT_CANCELLED or (
        booking.status is BookingStatus.HELD and event_cancelled
    ):
        raise EventCancelled(booking)
    if booking.status is BookingStatus.HELD:
        if expired:
            raise HoldExpired(booking)
        return None
    raise NotConfirmable(booking)


def check_cancellable(booking: Booking) -> None:
    if booking.status in (BookingStatus.PENDING, BookingStatus.REJECTED):
        raise NotCancellable(booking)
