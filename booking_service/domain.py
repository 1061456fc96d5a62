"""Bookings: the booking service's domain, free of I/O.

A booking is recorded PENDING before its seats are asked for, then settled by what the event
service answered (`settlement`): CONFIRMED, or HELD for a hold (until its expire_time), or
REJECTED. What a caller is answered for a booking as it stands is `answers`' business.

    PENDING -> CONFIRMED | HELD | REJECTED | CANCELLED (its event was cancelled)
    HELD -> CONFIRMED (ConfirmBooking before expire_time)
    HELD -> EXPIRING -> EXPIRED (the hold ran out; the seats are given back)
    HELD, CONFIRMED -> CANCELLING -> CANCELLED (DELETE)
    HELD, CONFIRMED -> CANCELLED (its event was cancelled: cancel_reason EVENT_CANCELLED)

A waiting-list offer is recorded as a hold straight away (no PENDING): HELD, or REJECTED
(USER_LIMIT_REACHED) / CANCELLED (EVENT_CANCELLED) when holding it would break a rule; from
HELD on it is a hold like any other (see `waitlist`).
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from service_runtime.auth.errors import PermissionDenied
from service_runtime.auth.principal import Principal
from service_runtime.validation import check_int, check_text, parse_uuid

MAX_USER_ID_LENGTH = 64
MAX_IDEMPOTENCY_KEY_LENGTH = 128
# Seats of a booking that does not say (`seats` absent or 0: proto3 cannot tell them apart).
DEFAULT_SEATS = 1


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
    # Set when the booking is a waiting-list offer (recorded by `waitlist_offers`): the entry
    # whose seats it holds.
    waitlist_entry_id: uuid.UUID | None = None


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
    # Left out and `"seats": 0` arrive alike (proto3 has no presence for int32): one seat, as the
    # proto and the README say. A negative count is refused.
    if seats == 0:
        seats = DEFAULT_SEATS
    seats = check_int("seats", seats, minimum=1, maximum=limits.max_seats_per_booking)
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


def parse_booking_id(value: str) -> uuid.UUID:
    return parse_uuid("booking_id", value)
