"""Waiting lists, free of I/O: the entries, who may join, and the offer rule.

The offer rule is FIRST FIT IN JOIN ORDER: whenever seats come back to an event with people
waiting, its WAITING entries are walked earliest first; an entry whose seats fit in what is
still free gets them, an entry too big is skipped and keeps its place, and the walk stops
when nothing is free. So a small entry never waits behind a big one that cannot be served,
and a big entry is served as soon as enough seats are free when its turn comes (an entry
earlier than it that fits always goes first).

The repository runs the rule inside every transaction that gives seats back or changes what
fits (a release, an update of the event, a join), under the event's row lock, so an offer is
made exactly once, atomically with the seats coming back.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from event_service.domain import Event, EventState, Limits, Sales, Turn, refusal_error
from service_runtime.errors import Conflict, NotFound
from service_runtime.validation import check_int, check_text, parse_uuid

MAX_USER_ID_LENGTH = 64
# ListWaitlistOffers pages: the booking service records a page per booking-DB transaction.
DEFAULT_OFFERS_PAGE = 100
MAX_OFFERS_PAGE = 1000


class SeatsAvailable(Conflict):
    """Joining a waiting list while the seats can simply be booked: book them instead."""

    def __init__(self, event_id: uuid.UUID, available: int) -> None:
        super().__init__(
            f"event {event_id} has {available} seats available: book them instead of waiting",
            event_id=str(event_id),
            available_seats=available,
        )


class WaitlistEntryNotFound(NotFound):
    def __init__(self, event_id: uuid.UUID, user_id: str) -> None:
        super().__init__(
            f"user {user_id} is not on the waiting list of event {event_id}", event_id=str(event_id), user_id=user_id
        )


class WaitlistState(enum.Enum):
    WAITING = "WAITING"
    OFFERED = "OFFERED"
    LEFT = "LEFT"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class WaitlistEntry:
    id: uuid.UUID
    event_id: uuid.UUID
    user_id: str
    seats: int
    state: WaitlistState
    # Join order within the whole table (so within the event): the queue's order.
    seq: int
    create_time: datetime
    update_time: datetime
    # 1 for the event's first WAITING entry, ...; 0 unless WAITING.
    position: int = 0
    offer_time: datetime | None = None
    booking_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Joined:
    """The outcome of JoinWaitlist: the user's entry, and whether this call created it."""

    entry: WaitlistEntry
    created: bool


@dataclass(frozen=True, slots=True)
class Left:
    """The outcome of LeaveWaitlist: the user's entry, and whether this call made it LEFT."""

    entry: WaitlistEntry
    left_now: bool


@dataclass(frozen=True, slots=True)
class JoinRequest:
    event_id: uuid.UUID
    user_id: str
    seats: int


@dataclass(frozen=True, slots=True)
class CurrentEntry:
    """A user's latest entry on an event's list, and whether the reservation of its offer
    (when OFFERED) still holds the seats."""

    entry: WaitlistEntry
    offer_reserved: bool


def join_request(event_id: str, user_id: str, seats: int, limits: Limits) -> JoinRequest:
    return JoinRequest(
        event_id=parse_uuid("event_id", event_id),
        user_id=check_user_id(user_id),
        seats=check_int("seats", seats, minimum=1, maximum=limits.max_seats_per_booking),
    )


def check_user_id(user_id: str) -> str:
    return check_text("user_id", user_id, max_length=MAX_USER_ID_LENGTH)


def offers_page_size(size: int) -> int:
    """ListWaitlistOffers' page: 0 is the default; above the maximum is the maximum."""
    if size <= 0:
        return DEFAULT_OFFERS_PAGE
    return min(size, MAX_OFFERS_PAGE)


def decide_join(
    event: Event, request: JoinRequest, current: CurrentEntry | None, now: datetime
) -> WaitlistEntry | None:
    """What a join decided at `now` under the event's row lock does: the entry the user
    already has (a join is idempotent: WAITING, or OFFERED with the offer still reserved), or
    None to put them on the list. EventCancelled / SalesNotStarted / SalesEnded when the event
    is not on sale; SeatsAvailable when nobody waits and the seats can be booked."""
    refusal = event.sales.refusal(now)
    if refusal is not None:
        raise refusal_error(
            refusal, event.id, Turn(event.available_seats, event.sales_start_time, event.sales_end_time)
        )
    if current is not None:
        state = current.entry.state
        if state is WaitlistState.WAITING or (state is WaitlistState.OFFERED and current.offer_reserved):
            return current.entry
    if event.waitlist_size == 0 and event.available_seats >= request.seats:
        raise SeatsAvailable(event.id, event.available_seats)
    return None


def offers_open(sales: Sales, now: datetime) -> bool:
    """Whether seats may be offered at `now`: not once the event is cancelled or its sales
    have ended. Before the sales window opens they may (a list exists only after a sell-out)."""
    if sales.state is EventState.CANCELLED:
        return False
    return sales.end_time is None or now < sales.end_time


class Sized(Protocol):
    @property
    def seats(self) -> int: ...


SizedT = TypeVar("SizedT", bound=Sized)


def choose_offers(available: int, waiting_in_join_order: Sequence[SizedT]) -> list[SizedT]:
    """The entries that get seats out of `available` free ones: first fit in join order (see
    the module docstring). `waiting_in_join_order` must be the event's WAITING entries by
    seq (those too big for `available` may be left out: they cannot fit anyway)."""
    free = available
    chosen: list[SizedT] = []
    for entry in waiting_in_join_order:
        if free == 0:
            break
        if entry.seats <= free:
            chosen.append(entry)
            free -= entry.seats
    return chosen
