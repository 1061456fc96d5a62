"""Events, seats and reservations: the event service's domain, free of I/O.

The rules that make seat handling safe live here as plain functions: what a request must look
like, and what a recorded reservation means for a replayed request.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from service_runtime.errors import Conflict, InvalidArgument, NotFound
from service_runtime.validation import check_int, check_text, check_timestamp, parse_uuid

MAX_NAME_LENGTH = 200


class EventNotFound(NotFound):
    def __init__(self, event_id: uuid.UUID | str) -> None:
        super().__init__(f"event {event_id} not found", event_id=str(event_id))


class ReservationNotFound(NotFound):
    def __init__(self, booking_id: uuid.UUID) -> None:
        super().__init__(f"no reservation for booking {booking_id}", booking_id=str(booking_id))


class SoldOut(Conflict):
    def __init__(self, event_id: uuid.UUID, requested: int, available: int) -> None:
        super().__init__(
            f"event {event_id} has {available} seats left, {requested} requested",
            event_id=str(event_id),
            requested_seats=requested,
            available_seats=available,
        )


class ReservationReleased(Conflict):
    def __init__(self, booking_id: uuid.UUID) -> None:
        super().__init__(
            f"booking {booking_id} was released and can no longer reserve seats", booking_id=str(booking_id)
        )


class BookingIdReused(Conflict):
    def __init__(self, booking_id: uuid.UUID) -> None:
        super().__init__(
            f"booking {booking_id} already has a reservation for another event or seat count",
            booking_id=str(booking_id),
        )


class ReservationState(enum.Enum):
    RESERVED = "RESERVED"
    RELEASED = "RELEASED"
    SOLD_OUT = "SOLD_OUT"


@dataclass(frozen=True, slots=True)
class Event:
    id: uuid.UUID
    name: str
    start_time: datetime
    total_seats: int
    available_seats: int
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True, slots=True)
class Reservation:
    booking_id: uuid.UUID
    event_id: uuid.UUID | None
    seats: int
    state: ReservationState
    create_time: datetime
    release_time: datetime | None


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what callers may ask for (configurable per deployment)."""

    max_total_seats: int = 1_000_000
    max_seats_per_booking: int = 20


@dataclass(frozen=True, slots=True)
class NewEvent:
    id: uuid.UUID
    name: str
    start_time: datetime
    total_seats: int


@dataclass(frozen=True, slots=True)
class SeatRequest:
    """A request to take `seats` seats of `event_id` for `booking_id`."""

    booking_id: uuid.UUID
    event_id: uuid.UUID
    seats: int


def new_event(name: str, start_time: datetime | None, total_seats: int, limits: Limits) -> NewEvent:
    check_text("name", name, max_length=MAX_NAME_LENGTH)
    if not name.strip():
        raise InvalidArgument("name", "must not be blank")
    start = check_timestamp("start_time", start_time)
    assert start is not None
    check_int("total_seats", total_seats, minimum=1, maximum=limits.max_total_seats)
    return NewEvent(id=uuid.uuid4(), name=name, start_time=start, total_seats=total_seats)


def seat_request(booking_id: str, event_id: str, seats: int, limits: Limits) -> SeatRequest:
    return SeatRequest(
        booking_id=parse_uuid("booking_id", booking_id),
        event_id=parse_uuid("event_id", event_id),
        seats=check_int("seats", seats, minimum=1, maximum=limits.max_seats_per_booking),
    )


def replay_outcome(recorded: Reservation, request: SeatRequest, available_seats: int) -> Reservation:
    """What a ReserveSeats call gets when its booking id already has a record: the first
    outcome again (the reservation, or the same refusal), never a second set of seats."""
    if recorded.state is ReservationState.RELEASED:
        raise ReservationReleased(request.booking_id)
    if recorded.event_id != request.event_id or recorded.seats != request.seats:
        raise BookingIdReused(request.booking_id)
    if recorded.state is ReservationState.SOLD_OUT:
        raise SoldOut(request.event_id, request.seats, available_seats)
    return recorded


@dataclass(frozen=True, slots=True)
class Allocation:
    """How a batch of seat requests for one event is decided."""

    # Seats left after the batch.
    available: int
    # The records to write for booking ids seen for the first time, in arrival order.
    new_records: list[tuple[SeatRequest, ReservationState]] = field(default_factory=list)
    # Seats left right after each new record was decided (what a SOLD_OUT answer reports).
    available_after: dict[uuid.UUID, int] = field(default_factory=dict)


def allocate(available: int, requests: Sequence[SeatRequest], recorded: Collection[uuid.UUID]) -> Allocation:
    """Decides a batch exactly as if its requests had run one at a time in arrival order.

    Each booking id seen for the first time takes its seats if that many are still left, so
    the last seats go to the earliest callers; otherwise it is recorded SOLD_OUT. A booking id
    that already has a record (from before the batch, or earlier in it) takes nothing: its
    caller gets that record, as any replay does.
    """
    seen = set(recorded)
    allocation = Allocation(available)
    left = available
    for request in requests:
        if request.booking_id in seen:
            continue
        seen.add(request.booking_id)
        if request.seats <= left:
            left -= request.seats
            state = ReservationState.RESERVED
        else:
            state = ReservationState.SOLD_OUT
        allocation.new_records.append((request, state))
        allocation.available_after[request.booking_id] = left
    return Allocation(left, allocation.new_records, allocation.available_after)
