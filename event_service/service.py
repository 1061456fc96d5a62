"""The event service's use cases: primitives in, domain objects out.

Input is validated here, before anything is read or written, so a bad request never touches a
seat. Storage is behind the `Store` protocol (PostgreSQL in production, fakes in unit tests).

Seats are taken in batches: `reserve_seats_batch` validates each call on its own and hands the
valid ones to the `ReserveMany` port in one go, which decides them in one transaction
(`EventRepository.reserve_batch`), or, as wired in production, queues them in the
`ReservationCoalescer` so that calls arriving meanwhile share that transaction. A single
`reserve_seats` is a batch of one.

Who may do what is decided here, from the caller's principal: admins create, change and cancel
events; anyone reads them. The seat use cases (and `list_cancelled_events`, which only the
booking service needs) have no principal: the gRPC edge admits only SEAT_CALLERS peers to them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from event_service.changes import EventUpdate, EventValues, event_update
from event_service.domain import (
    Cancellation,
    Event,
    EventCancelled,
    EventNotFound,
    Limits,
    NewEvent,
    Reservation,
    ReservationNotFound,
    SalesEnded,
    SalesNotStarted,
    SeatRequest,
    Turn,
    new_event,
    replay_outcome,
    seat_request,
)
from service_runtime.auth.errors import PermissionDenied
from service_runtime.auth.principal import Principal
from service_runtime.errors import DomainError
from service_runtime.validation import check_timestamp, decode_position, encode_position, page_size, parse_uuid

# What is recorded for a request's booking id and its event as the request's turn found it
# (seats left, sales window); None when its event does not exist.
Decided = tuple[Reservation, Turn] | None
# Decides many seat requests as one-by-one calls in list order would; one result per request.
ReserveMany = Callable[[list[SeatRequest]], Awaitable[list[Decided]]]


class Store(Protocol):
    async def create_event(self, new: NewEvent) -> Event: ...
    async def get_event(self, event_id: uuid.UUID) -> Event | None: ...
    async def list_events(self, limit: int, after: tuple[datetime, uuid.UUID] | None) -> tuple[list[Event], int]: ...
    async def update_event(self, event_id: uuid.UUID, update: EventUpdate) -> Event | None: ...
    async def cancel_event(self, event_id: uuid.UUID) -> Cancellation | None: ...
    async def list_cancelled_events(
        self, after: datetime | None, limit: int, position: tuple[datetime, uuid.UUID] | None
    ) -> list[Event]: ...
    async def release(self, booking_id: uuid.UUID) -> Reservation: ...
    async def get_reservation(self, booking_id: uuid.UUID) -> tuple[Reservation, Turn] | None: ...


@dataclass(frozen=True)
class Tally:
    """What the use cases count as they go (Prometheus counters, as app.py wires them)."""

    # A reservation answered SALES_NOT_STARTED, SALES_ENDED or EVENT_CANCELLED (replays too).
    refused: Callable[[str], None] = lambda reason: None
    # An event cancelled (once per event, not per idempotent repeat).
    cancelled: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    next_page_token: str
    total_size: int


class EventService:
    def __init__(self, store: Store, limits: Limits, reserve_many: ReserveMany, tally: Tally | None = None) -> None:
        """`reserve_many` takes the seats: `store.reserve_batch` (a transaction per call), or a
        `ReservationCoalescer`'s `reserve_many` (concurrent calls share transactions)."""
        self._store = store
        self.limits = limits
        self._reserve_many = reserve_many
        self._tally = tally or Tally()

    async def create_event(
        self,
        caller: Principal,
        name: str,
        start_time: datetime | None,
        total_seats: int,
        sales_start_time: datetime | None = None,
        sales_end_time: datetime | None = None,
    ) -> Event:
        """Admins create events."""
        if not caller.is_admin:
            raise PermissionDenied("only an admin may create events")
        new = new_event(name, start_time, total_seats, self.limits, sales_start_time, sales_end_time)
        return await self._store.create_event(new)

    async def update_event(self, caller: Principal, event_id: str, values: EventValues, mask: Sequence[str]) -> Event:
        """Admins change events: the fields named in `mask` (empty: those set in `values`)
        take their values in `values`. EventCancelled, SeatsInUse, InvalidArgument."""
        if not caller.is_admin:
            raise PermissionDenied("only an admin may change events")
        parsed = parse_uuid("event_id", event_id)
        event = await self._store.update_event(parsed, event_update(values, mask, self.limits))
        if event is None:
            raise EventNotFound(parsed)
        return event

    async def cancel_event(self, caller: Principal, event_id: str) -> Event:
        """Admins cancel events; the event's reserved seats all come back. Cancelling a
        cancelled event returns it as it is."""
        if not caller.is_admin:
            raise PermissionDenied("only an admin may cancel events")
        parsed = parse_uuid("event_id", event_id)
        cancellation = await self._store.cancel_event(parsed)
        if cancellation is None:
            raise EventNotFound(parsed)
        if cancellation.cancelled_now:
            self._tally.cancelled()
        return cancellation.event

    async def list_cancelled_events(self, cancelled_after: datetime | None, size: int, token: str) -> EventPage:
        """Events cancelled at or after `cancelled_after` (None: all), by cancel time, then id.
        The page's total_size is 0: the booking service follows tokens, it does not count."""
        after = check_timestamp("cancelled_after", cancelled_after, required=False)
        limit = page_size("page_size", size)
        position = decode_position("page_token", token)
        events = await self._store.list_cancelled_events(after, limit + 1, position)
        next_token = ""
        if len(events) > limit:
            events = events[:limit]
            last = events[-1]
            assert last.cancel_time is not None
            next_token = encode_position(last.cancel_time, last.id)
        return EventPage(events, next_token, 0)

    async def get_event(self, event_id: str) -> Event:
        parsed = parse_uuid("event_id", event_id)
        event = await self._store.get_event(parsed)
        if event is None:
            raise EventNotFound(parsed)
        return event

    async def list_events(self, size: int, token: str) -> EventPage:
        limit = page_size("page_size", size)
        after = decode_position("page_token", token)
        events, total = await self._store.list_events(limit + 1, after)
        next_token = ""
        if len(events) > limit:
            events = events[:limit]
            next_token = encode_position(events[-1].start_time, events[-1].id)
        return EventPage(events, next_token, total)

    async def reserve_seats(self, booking_id: str, event_id: str, seats: int) -> Reservation:
        """Takes the seats for the booking, or raises SoldOut / SalesNotStarted / SalesEnded /
        EventCancelled / EventNotFound / ReservationReleased / BookingIdReused. Replays return
        the first outcome."""
        [result] = await self.reserve_seats_batch([(booking_id, event_id, seats)])
        if isinstance(result, DomainError):
            raise result
        return result

    async def reserve_seats_batch(self, calls: Sequence[tuple[str, str, int]]) -> list[Reservation | DomainError]:
        """Many `reserve_seats` calls (booking id, event id, seats), each answered on its own:
        its reservation, or the error it would have raised alone."""
        parsed: list[SeatRequest | DomainError] = []
        for booking_id, event_id, seats in calls:
            try:
                parsed.append(seat_request(booking_id, event_id, seats, self.limits))
            except DomainError as error:
                parsed.append(error)
        valid = [request for request in parsed if isinstance(request, SeatRequest)]
        decided = iter(await self._reserve_many(valid) if valid else [])
        answers = [_answer(item, next(decided)) if isinstance(item, SeatRequest) else item for item in parsed]
        for answer in answers:
            if isinstance(answer, SalesNotStarted | SalesEnded | EventCancelled):
                self._tally.refused(_REFUSALS[type(answer)])
        return answers

    async def release_seats(self, booking_id: str) -> Reservation:
        return await self._store.release(parse_uuid("booking_id", booking_id))

    async def get_reservation(self, booking_id: str) -> Reservation:
        parsed = parse_uuid("booking_id", booking_id)
        result = await self._store.get_reservation(parsed)
        if result is None:
            raise ReservationNotFound(parsed)
        return result[0]


_REFUSALS = {SalesNotStarted: "SALES_NOT_STARTED", SalesEnded: "SALES_ENDED", EventCancelled: "EVENT_CANCELLED"}


def _answer(request: SeatRequest, decided: Decided) -> Reservation | DomainError:
    if decided is None:
        return EventNotFound(request.event_id)
    recorded, turn = decided
    try:
        return replay_outcome(recorded, request, turn)
    except DomainError as error:
        return error
