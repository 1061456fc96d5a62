"""Waiting lists as the booking service sees them, free of I/O.

The event service keeps the lists and makes the offers (first fit in join order, in the very
transaction that gives seats back); the booking service authenticates who joins, leaves or
lists (`join_request`, `leave_request`, `waitlist_owner`), checks the per-user cap before a
join, and records every offer as a booking of its user (`decide_offers`, applied by the offer
follower, `waitlist_offers`): HELD until WAITLIST_OFFER_TTL_SECONDS from its recording, then a
hold like any other (confirmed, cancelled, expired, or cancelled with its event).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from booking_service.domain import DEFAULT_SEATS, MAX_USER_ID_LENGTH, BookingStatus, Limits
from service_runtime.auth.errors import PermissionDenied
from service_runtime.auth.principal import Principal
from service_runtime.validation import check_int, check_text, parse_uuid


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
    # 1 for the event's first WAITING entry...; 0 unless WAITING.
    position: int
    create_time: datetime
    update_time: datetime
    # Set once OFFERED: when, and the booking id the seats are reserved for.
    offer_time: datetime | None = None
    booking_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Joined:
    entry: WaitlistEntry
    # Whether this join put the user on the list (else it is the entry they already had).
    created: bool


@dataclass(frozen=True, slots=True)
class WaitlistPage:
    entries: list[WaitlistEntry]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class JoinRequest:
    event_id: uuid.UUID
    user_id: str
    seats: int


class EventRefusal(Exception):
    """The event service refused a waiting-list call with a reason of its own (its ErrorInfo):
    passed on to the caller with that reason and metadata (see `waitlist_answers.relayed`)."""

    def __init__(self, reason: str, message: str, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.metadata = dict(metadata or {})


def _user(caller: Principal, user_id: str, what: str) -> str:
    """The user a waiting-list call is about: the caller when empty (or `me`); another user
    only for an admin."""
    user = caller.subject if user_id in ("", "me") else user_id
    check_text("user_id", user, max_length=MAX_USER_ID_LENGTH)
    if user != caller.subject and not caller.is_admin:
        raise PermissionDenied(f"user_id differs from the caller's identity; only an admin {what} another user")
    return user


def join_request(caller: Principal, event_id: str, user_id: str, seats: int, limits: Limits) -> JoinRequest:
    """A validated join: for the caller, or (admins only) for `user_id`; seats 0 means 1."""
    event = parse_uuid("event_id", event_id)
    user = _user(caller, user_id, "puts on a waiting list")
    seats = check_int("seats", seats or DEFAULT_SEATS, minimum=1, maximum=limits.max_seats_per_booking)
    return JoinRequest(event, user, seats)


def leave_request(caller: Principal, event_id: str, user_id: str) -> tuple[uuid.UUID, str]:
    """(event, user) of a leave: the caller, or (admins only) `user_id`."""
    return parse_uuid("event_id", event_id), _user(caller, user_id, "takes off a waiting list")


def waitlist_owner(caller: Principal, user_id: str) -> str:
    """Whose entries a listing shows: `me` for any caller, another user's for an admin."""
    return _user(caller, user_id, "lists the waiting-list entries of")


def decide_offers(
    offers: Sequence[WaitlistEntry],
    held: Mapping[tuple[str, uuid.UUID], int],
    cancelled: Collection[uuid.UUID],
    limit: int,
) -> list[BookingStatus]:
    """How each offer is recorded, in order: CANCELLED when its event is known cancelled (the
    event's cancellation gave its seats back); REJECTED when its seats would take the user past
    `limit` seats of the event (`held`: what each (user, event) holds already; offers recorded
    HELD before it in the same page count too); HELD otherwise."""
    totals = dict(held)
    outcomes = []
    for offer in offers:
        key = (offer.user_id, offer.event_id)
        if offer.event_id in cancelled:
            outcomes.append(BookingStatus.CANCELLED)
        elif totals.get(key, 0) + offer.seats > limit:
            outcomes.append(BookingStatus.REJECTED)
        else:
            totals[key] = totals.get(key, 0) + offer.seats
            outcomes.append(BookingStatus.HELD)
    return outcomes
