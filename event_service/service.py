"""The event service's use cases: primitives in, domain objects out.

Input is validated here, before anything is read or written, so a bad request never touches a
seat. Storage is behind the `Store` protocol (PostgreSQL in production, fakes in unit tests).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from event_service.domain import (
    Event,
    EventNotFound,
    Limits,
    NewEvent,
    Reservation,
    ReservationNotFound,
    SeatRequest,
    new_event,
    replay_outcome,
    seat_request,
)
from service_runtime.validation import decode_position, encode_position, page_size, parse_uuid

Reserve = Callable[[SeatRequest], Awaitable[tuple[Reservation, int] | None]]


class Store(Protocol):
    async def create_event(self, new: NewEvent) -> Event: ...
    async def get_event(self, event_id: uuid.UUID) -> Event | None: ...
    async def list_events(self, limit: int, after: tuple[datetime, uuid.UUID] | None) -> tuple[list[Event], int]: ...
    async def reserve(self, request: SeatRequest) -> tuple[Reservation, int] | None: ...
    async def release(self, booking_id: uuid.UUID) -> Reservation: ...
    async def get_reservation(self, booking_id: uuid.UUID) -> tuple[Reservation, int] | None: ...


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    next_page_token: str
    total_size: int


class EventService:
    def __init__(self, store: Store, limits: Limits, reserve: Reserve | None = None) -> None:
        """`reserve` takes the seats of one request: by default the store's one-statement
        `reserve`; in production a `ReservationCoalescer` that batches concurrent calls."""
        self._store = store
        self.limits = limits
        self._reserve = reserve or store.reserve

    async def create_event(self, name: str, start_time: datetime | None, total_seats: int) -> Event:
        return await self._store.create_event(new_event(name, start_time, total_seats, self.limits))

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
        """Takes the seats for the booking, or raises SoldOut / EventNotFound /
        ReservationReleased / BookingIdReused. Replays return the first outcome."""
        request = seat_request(booking_id, event_id, seats, self.limits)
        result = await self._reserve(request)
        if result is None:
            raise EventNotFound(request.event_id)
        recorded, available = result
        return replay_outcome(recorded, request, available)

    async def release_seats(self, booking_id: str) -> Reservation:
        return await self._store.release(parse_uuid("booking_id", booking_id))

    async def get_reservation(self, booking_id: str) -> Reservation:
        parsed = parse_uuid("booking_id", booking_id)
        result = await self._store.get_reservation(parsed)
        if result is None:
            raise ReservationNotFound(parsed)
        return result[0]
