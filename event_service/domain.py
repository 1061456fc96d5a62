"""Events, seats and reservations: the event service's domain, free of I/O.

The rules that make seat handling safe live here as plain functions: what a request must look
like, whether an event's seats are on sale at an instant, how a batch of requests is decided,
and what a recorded reservation means for a replayed request. (Changing an event: changes.py.)
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

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
    """Too few seats for the request. While people wait for the event, `available` is 0 (the
    seats free to a newcomer: those that come back go to the waiting list)."""

    def __init__(self, event_id: uuid.UUID, requested: int, available: int, waitlist_size: int = 0) -> None:
        super().__init__(
            f"event {event_id} has {available} seats left, {requested} requested"
            + (f", {waitlist_size} waiting" if waitlist_size else ""),
            event_id=str(event_id),
            requested_seats=requested,
            available_seats=available,
            waitlist_size=waitlist_size,
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


class SalesNotStarted(Conflict):
    def __init__(self, event_id: uuid.UUID, sales_start_time: datetime | None) -> None:
        facts = {} if sales_start_time is None else {"sales_start_time": rfc3339(sales_start_time)}
        super().__init__(f"sales of event {event_id} have not started", event_id=str(event_id), **facts)


class SalesEnded(Conflict):
    def __init__(self, event_id: uuid.UUID, sales_end_time: datetime | None) -> None:
        facts = {} if sales_end_time is None else {"sales_end_time": rfc3339(sales_end_time)}
        super().__init__(f"sales of event {event_id} have ended", event_id=str(event_id), **facts)


class EventCancelled(Conflict):
    def __init__(self, event_id: uuid.UUID) -> None:
        super().__init__(f"event {event_id} is cancelled", event_id=str(event_id))


class ReservationState(enum.Enum):
    RESERVED = "RESERVED"
    RELEASED = "RELEASED"
    SOLD_OUT = "SOLD_OUT"
    REFUSED = "REFUSED"


class EventState(enum.Enum):
    SCHEDULED = "SCHEDULED"
    CANCELLED = "CANCELLED"


class RefusalReason(enum.Enum):
    """Why a REFUSED reservation was refused (seats are SOLD_OUT instead)."""

    SALES_NOT_STARTED = "SALES_NOT_STARTED"
    SALES_ENDED = "SALES_ENDED"
    EVENT_CANCELLED = "EVENT_CANCELLED"


class ReleaseReason(enum.Enum):
    """Why a RELEASED reservation was given back by the event service itself (None: the
    booking service released it)."""

    EVENT_CANCELLED = "EVENT_CANCELLED"


@dataclass(frozen=True, slots=True)
class Sales:
    """What decides whether an event's seats can be taken: its state and its sales window."""

    state: EventState = EventState.SCHEDULED
    # Unset: on sale from the event's creation / until it is cancelled.
    start_time: datetime | None = None
    end_time: datetime | None = None

    def refusal(self, now: datetime) -> RefusalReason | None:
        """Why a reservation decided at `now` is refused, or None when seats may be taken.
        The window is half-open, [start, end): the opening instant sells, the closing one not."""
        if self.state is EventState.CANCELLED:
            return RefusalReason.EVENT_CANCELLED
        if self.start_time is not None and now < self.start_time:
            return RefusalReason.SALES_NOT_STARTED
        if self.end_time is not None and self.end_time <= now:
            return RefusalReason.SALES_ENDED
        return None


@dataclass(frozen=True, slots=True)
class Event:
    id: uuid.UUID
    name: str
    start_time: datetime
    total_seats: int
    available_seats: int
    create_time: datetime
    update_time: datetime
    sales_start_time: datetime | None = None
    sales_end_time: datetime | None = None
    state: EventState = EventState.SCHEDULED
    cancel_time: datetime | None = None
    # Entries WAITING on the event's waiting list (waitlist.py): while above 0, new
    # reservations are SOLD_OUT and the seats that come back are offered to the list.
    waitlist_size: int = 0

    @property
    def sales(self) -> Sales:
        return Sales(self.state, self.sales_start_time, self.sales_end_time)

    @property
    def taken_seats(self) -> int:
        """Seats held by reservations (sold, or held by a booking awaiting confirmation)."""
        return self.total_seats - self.available_seats


@dataclass(frozen=True, slots=True)
class Cancellation:
    """The outcome of CancelEvent: the cancelled event, and whether this call cancelled it
    (False when it was cancelled already: cancelling is idempotent)."""

    event: Event
    cancelled_now: bool


@dataclass(frozen=True, slots=True)
class Reservation:
    booking_id: uuid.UUID
    event_id: uuid.UUID | None
    seats: int
    state: ReservationState
    create_time: datetime
    release_time: datetime | None
    refusal_reason: RefusalReason | None = None
    release_reason: ReleaseReason | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    """What a reservation's answer reports about its event, as the reservation's turn found it
    (the seats left to a newcomer and the list waiting, for SOLD_OUT; the sales window, for
    SALES_NOT_STARTED / SALES_ENDED)."""

    available_seats: int
    sales_start_time: datetime | None = None
    sales_end_time: datetime | None = None
    waitlist_size: int = 0


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
    sales_start_time: datetime | None = None
    sales_end_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class SeatRequest:
    """A request to take `seats` seats of `event_id` for `booking_id`."""

    booking_id: uuid.UUID
    event_id: uuid.UUID
    seats: int


def new_event(
    name: str,
    start_time: datetime | None,
    total_seats: int,
    limits: Limits,
    sales_start_time: datetime | None = None,
    sales_end_time: datetime | None = None,
) -> NewEvent:
    check_name(name)
    start = check_timestamp("start_time", start_time)
    assert start is not None
    check_total_seats(total_seats, limits)
    check_sales_window(
        check_timestamp("sales_start_time", sales_start_time, required=False),
        check_timestamp("sales_end_time", sales_end_time, required=False),
    )
    return NewEvent(uuid.uuid4(), name, start, total_seats, sales_start_time, sales_end_time)


def check_name(name: str) -> str:
    check_text("name", name, max_length=MAX_NAME_LENGTH)
    if not name.strip():
        raise InvalidArgument("name", "must not be blank")
    return name


def check_total_seats(total_seats: int, limits: Limits) -> int:
    return check_int("total_seats", total_seats, minimum=1, maximum=limits.max_total_seats)


def check_sales_window(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and not start < end:
        raise InvalidArgument("sales_end_time", "must be after sales_start_time")


def seat_request(booking_id: str, event_id: str, seats: int, limits: Limits) -> SeatRequest:
    return SeatRequest(
        booking_id=parse_uuid("booking_id", booking_id),
        event_id=parse_uuid("event_id", event_id),
        seats=check_int("seats", seats, minimum=1, maximum=limits.max_seats_per_booking),
    )


def replay_outcome(recorded: Reservation, request: SeatRequest, turn: Turn) -> Reservation:
    """What a ReserveSeats call gets when its booking id already has a record: the first
    outcome again (the reservation, or the same refusal), never a second set of seats. The
    facts a refusal reports (seats left, sales times) are the event's as `turn` found it."""
    if recorded.state is ReservationState.RELEASED:
        raise ReservationReleased(request.booking_id)
    if recorded.event_id != request.event_id or recorded.seats != request.seats:
        raise BookingIdReused(request.booking_id)
    if recorded.state is ReservationState.SOLD_OUT:
        raise SoldOut(request.event_id, request.seats, turn.available_seats, turn.waitlist_size)
    if recorded.state is ReservationState.REFUSED:
        raise refusal_error(recorded.refusal_reason, request.event_id, turn)
    return recorded


def refusal_error(reason: RefusalReason | None, event_id: uuid.UUID, turn: Turn) -> Conflict:
    """The error a refusal answers with, reporting the sales window as `turn` found it."""
    if reason is RefusalReason.SALES_NOT_STARTED:
        return SalesNotStarted(event_id, turn.sales_start_time)
    if reason is RefusalReason.SALES_ENDED:
        return SalesEnded(event_id, turn.sales_end_time)
    assert reason is RefusalReason.EVENT_CANCELLED, f"a REFUSED reservation without a known reason: {reason}"
    return EventCancelled(event_id)


@dataclass(frozen=True, slots=True)
class Allocation:
    """How a batch of seat requests for one event is decided."""

    # Seats left after the batch (the real count, people waiting or not).
    available: int
    # The records to write for booking ids seen for the first time, in arrival order.
    new_records: list[tuple[SeatRequest, ReservationState]] = field(default_factory=list)
    # Seats left to a newcomer right after each new record was decided (what a SOLD_OUT
    # answer reports): 0 while people wait.
    available_after: dict[uuid.UUID, int] = field(default_factory=dict)
    # Why every new record is REFUSED (the event is not on sale at the batch's instant).
    refusal: RefusalReason | None = None
    # Whether people were waiting for the event: its seats were kept for them.
    waiting: bool = False

    @property
    def free_to_newcomers(self) -> int:
        """Seats a new request could take after the batch: none while people wait."""
        return 0 if self.waiting else self.available


def allocate(
    available: int,
    requests: Sequence[SeatRequest],
    recorded: Collection[uuid.UUID],
    sales: Sales,
    now: datetime,
    waiting: bool = False,
) -> Allocation:
    """Decides a batch exactly as if its requests had run one at a time in arrival order, all
    at the instant `now` (read under the event's lock, so no change of the event can fall
    between the decision and its writing).

    When the event is not on sale at `now` (cancelled, before or after its sales window), every
    booking id seen for the first time is recorded REFUSED with that reason and takes nothing.
    Otherwise each takes its seats if that many are still left, so the last seats go to the
    earliest callers, or is recorded SOLD_OUT. A booking id that already has a record (from
    before the batch, or earlier in it) takes nothing: its caller gets that record, as any
    replay does.

    While people wait for the event (`waiting`), its free seats are kept for the waiting list
    (no queue jumping): every new request that is not refused is SOLD_OUT, and `available`
    stays the real count.
    """
    refusal = sales.refusal(now)
    seen = set(recorded)
    new_records: list[tuple[SeatRequest, ReservationState]] = []
    available_after: dict[uuid.UUID, int] = {}
    left = available
    for request in requests:
        if request.booking_id in seen:
            continue
        seen.add(request.booking_id)
        if refusal is not None:
            state = ReservationState.REFUSED
        elif not waiting and request.seats <= left:
            left -= request.seats
            state = ReservationState.RESERVED
        else:
            state = ReservationState.SOLD_OUT
        new_records.append((request, state))
        available_after[request.booking_id] = 0 if waiting else left
    return Allocation(left, new_records, available_after, refusal, waiting)


def rfc3339(instant: datetime) -> str:
    """An instant as the proto3 JSON mapping writes a Timestamp: UTC, "Z", and 0, 3 or 6
    fractional digits (the form ErrorInfo metadata carries, so clients parse it as they parse
    any timestamp)."""
    utc = instant.astimezone(UTC).replace(tzinfo=None)
    micros = utc.microsecond
    if micros == 0:
        text = utc.isoformat(timespec="seconds")
    elif micros % 1000 == 0:
        text = utc.isoformat(timespec="milliseconds")
    else:
        text = utc.isoformat(timespec="microseconds")
    return text + "Z"
