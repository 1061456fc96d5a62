"""Bookings: the booking service's domain, free of I/O.

A booking is recorded PENDING before its seats are asked for, then settled by what the event
service answered: CONFIRMED, or HELD for a hold (until its expire_time), or REJECTED.
`outcome()` turns a settled booking into the answer its caller gets, the same for the first
request and every retry with the same idempotency key; `confirm_outcome()` does the same for
a confirm that did not move the hold itself.

    PENDING -> CONFIRMED | HELD | REJECTED | CANCELLED (its event was cancelled)
    HELD -> CONFIRMED (ConfirmBooking before expire_time)
    HELD -> EXPIRING -> EXPIRED (the hold ran out; the seats are given back)
    HELD, CONFIRMED -> CANCELLING -> CANCELLED (DELETE)
    HELD, CONFIRMED -> CANCELLED (its event was cancelled: cancel_reason EVENT_CANCELLED)
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from service_runtime.auth.errors import PermissionDenied
from service_runtime.auth.principal import Principal
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
    HELD = "HELD"
    EXPIRING = "EXPIRING"
    EXPIRED = "EXPIRED"


class RejectReason(enum.Enum):
    SOLD_OUT = "SOLD_OUT"
    EVENT_NOT_FOUND = "EVENT_NOT_FOUND"
    # Given up while PENDING (the event service could not be reached in time): its seats,
    # if any were reserved, were released.
    ABANDONED = "ABANDONED"
    # Refused before any seat was asked for: the user already holds their cap of seats of
    # the event (MAX_SEATS_PER_USER_PER_EVENT).
    USER_LIMIT_REACHED = "USER_LIMIT_REACHED"
    # Refused by the event service: outside the event's sales window, or the event is cancelled.
    SALES_NOT_STARTED = "SALES_NOT_STARTED"
    SALES_ENDED = "SALES_ENDED"
    EVENT_CANCELLED = "EVENT_CANCELLED"


class CancelReason(enum.Enum):
    # The booking's event was cancelled (the event service gave its seats back itself).
    EVENT_CANCELLED = "EVENT_CANCELLED"


class SeatOutcome(enum.Enum):
    """What the event service holds for a booking id."""

    RESERVED = "RESERVED"
    SOLD_OUT = "SOLD_OUT"
    EVENT_NOT_FOUND = "EVENT_NOT_FOUND"
    RELEASED = "RELEASED"
    NONE = "NONE"


# Facts of a refusal that its answer repeats on every retry (ErrorInfo metadata), kept in
# the booking's reject_metadata.
REFUSAL_FACTS = ("sales_start_time", "sales_end_time")


@dataclass(frozen=True, slots=True)
class Refused:
    """Nothing is held for a booking, for a reason of the event's: its reservation was refused
    (SALES_NOT_STARTED, SALES_ENDED, EVENT_CANCELLED), or given back by the event's
    cancellation (EVENT_CANCELLED). `facts` are those of REFUSAL_FACTS the event service gave."""

    reason: RejectReason
    facts: Mapping[str, str] = field(default_factory=dict)


# What the event service holds for a booking id.
SeatAnswer = SeatOutcome | Refused


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
    hold: bool = False
    # When a hold runs out (the database's clock decides); None for other bookings.
    expire_time: datetime | None = None
    cancel_reason: CancelReason | None = None
    reject_metadata: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class NewBooking:
    id: uuid.UUID
    user_id: str
    event_id: uuid.UUID
    seats: int
    idempotency_key: str | None
    request_hash: bytes | None
    hold: bool = False


@dataclass(frozen=True, slots=True)
class Settlement:
    """A PENDING booking's outcome. Storage never applies CONFIRMED or HELD to a booking of
    an event it knows cancelled: that booking becomes CANCELLED (EVENT_CANCELLED) instead."""

    booking_id: uuid.UUID
    status: BookingStatus
    reason: RejectReason | None = None
    metadata: Mapping[str, str] | None = None


# Statuses whose seats count against the user's cap: held, or on their way to being held.
HOLDING = (
    BookingStatus.PENDING,
    BookingStatus.CONFIRMED,
    BookingStatus.CANCELLING,
    BookingStatus.HELD,
    BookingStatus.EXPIRING,
)
# Statuses whose message shows a hold's expire_time.
SHOWS_EXPIRY = (BookingStatus.PENDING, BookingStatus.HELD, BookingStatus.EXPIRING, BookingStatus.EXPIRED)


@dataclass(frozen=True, slots=True)
class Limits:
    max_seats_per_booking: int = 20
    # Anti-scalping: seats one user may hold of one event, over all their bookings.
    max_seats_per_user_per_event: int = 20


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


def request_hash(event_id: uuid.UUID, user_id: str, seats: int, hold: bool = False) -> bytes:
    """What a retry must repeat. A hold marker is appended only for a hold, so the hash of
    every other request is the one stored before holds existed (keys sent then still work)."""
    text = f"{event_id}\n{user_id}\n{seats}" + ("\nhold" if hold else "")
    return hashlib.sha256(text.encode()).digest()


def new_booking(
    caller: Principal,
    event_id: str,
    user_id: str,
    seats: int,
    idempotency_key: str,
    limits: Limits,
    hold: bool = False,
) -> NewBooking:
    """A validated request to book for `user_id` (the caller's own subject when empty). Only an
    admin books on behalf of someone else."""
    event = parse_uuid("event_id", event_id)
    user = user_id or caller.subject
    check_text("user_id", user, max_length=MAX_USER_ID_LENGTH)
    if user != caller.subject and not caller.is_admin:
        raise PermissionDenied("user_id differs from the caller's identity; only an admin books for another user")
    seats = check_int("seats", seats or 1, minimum=1, maximum=limits.max_seats_per_booking)
    key = idempotency_key or None
    if key is not None:
        check_text("idempotency_key", key, max_length=MAX_IDEMPOTENCY_KEY_LENGTH)
    return NewBooking(
        id=uuid.uuid4(),
        user_id=user,
        event_id=event,
        seats=seats,
        idempotency_key=key,
        request_hash=request_hash(event, user, seats, hold) if key else None,
        hold=hold,
    )


def may_see(caller: Principal, booking: Booking) -> bool:
    """A booking is its owner's business, and an admin's; to anyone else it does not exist."""
    return caller.is_admin or booking.user_id == caller.subject


def bookings_owner(caller: Principal, user_id: str) -> str:
    """Whose bookings a listing shows: `me` (or the caller's own id) for any caller, another
    user's only for an admin."""
    user = caller.subject if user_id in ("me", "") else user_id
    check_text("user_id", user, max_length=MAX_USER_ID_LENGTH)
    if user != caller.subject and not caller.is_admin:
        raise PermissionDenied("only an admin may list another user's bookings")
    return user


def within_user_limit(held: Mapping[tuple[str, uuid.UUID], int], news: Sequence[NewBooking], limit: int) -> list[bool]:
    """Which requests stay within the per-user cap, decided in arrival order: `held` is what
    each (user, event) already holds; a request that fits takes its seats, one that does not
    is refused and takes nothing."""
    totals = dict(held)
    allowed = []
    for new in news:
        key = (new.user_id, new.event_id)
        fits = totals.get(key, 0) + new.seats <= limit
        if fits:
            totals[key] = totals.get(key, 0) + new.seats
        allowed.append(fits)
    return allowed


def check_same_request(existing: Booking, new: NewBooking) -> None:
    """A retry must repeat the original request exactly."""
    if existing.request_hash != new.request_hash:
        assert new.idempotency_key is not None
        raise IdempotencyKeyReused(new.idempotency_key)


def settlement(booking: Booking, answer: SeatAnswer) -> Settlement | None:
    """How a PENDING booking settles, given what the event service holds for it: RESERVED
    seats make a hold HELD and any other booking CONFIRMED. None when nothing is held yet
    (the caller must release the booking id to settle it)."""
    if isinstance(answer, Refused):
        facts = {k: v for k, v in answer.facts.items() if k in REFUSAL_FACTS}
        return Settlement(booking.id, BookingStatus.REJECTED, answer.reason, facts or None)
    settled = {
        SeatOutcome.RESERVED: (BookingStatus.HELD if booking.hold else BookingStatus.CONFIRMED, None),
        SeatOutcome.SOLD_OUT: (BookingStatus.REJECTED, RejectReason.SOLD_OUT),
        SeatOutcome.EVENT_NOT_FOUND: (BookingStatus.REJECTED, RejectReason.EVENT_NOT_FOUND),
        SeatOutcome.RELEASED: (BookingStatus.REJECTED, RejectReason.ABANDONED),
    }.get(answer)
    return None if settled is None else Settlement(booking.id, *settled)


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


def parse_booking_id(value: str) -> uuid.UUID:
    return parse_uuid("booking_id", value)
