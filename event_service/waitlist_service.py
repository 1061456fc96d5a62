"""The waiting-list use cases: primitives in, domain objects out.

Who may call: joining, leaving and listing a user's entries, and following the offers, are
seat use cases, for the booking service only (the gRPC edge admits only SEAT_CALLERS peers;
the booking service passes the user it authenticated). An event's whole list is for admins,
decided here from the caller's principal.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from event_service.domain import EventNotFound, Limits
from event_service.waitlist import (
    Joined,
    JoinRequest,
    Left,
    WaitlistEntry,
    check_user_id,
    join_request,
    offers_page_size,
)
from service_runtime.auth.errors import PermissionDenied
from service_runtime.auth.principal import Principal
from service_runtime.errors import InvalidArgument
from service_runtime.validation import decode_page_token, encode_page_token, page_size, parse_uuid

# AcknowledgeWaitlistOffers: as many as ListWaitlistOffers hands out at most.
MAX_ACKNOWLEDGE = 1000


class WaitlistStore(Protocol):
    async def join(self, request: JoinRequest) -> Joined: ...
    async def leave(self, event_id: uuid.UUID, user_id: str) -> Left: ...
    async def list_for_user(self, user_id: str, limit: int, before: int | None) -> list[WaitlistEntry]: ...
    async def list_for_event(
        self, event_id: uuid.UUID, limit: int, after: int | None
    ) -> list[WaitlistEntry] | None: ...
    async def list_offers(self, limit: int) -> list[WaitlistEntry]: ...
    async def acknowledge(self, booking_ids: Sequence[uuid.UUID]) -> int: ...


@dataclass(frozen=True)
class WaitlistTally:
    """What the waiting-list use cases count (Prometheus counters, as app.py wires them)."""

    # A user put on a list (not an idempotent repeat).
    joined: Callable[[], None] = lambda: None
    # A WAITING entry taken off its list by its user (not a repeat).
    left: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class WaitlistPage:
    entries: list[WaitlistEntry]
    next_page_token: str


class WaitlistService:
    def __init__(self, store: WaitlistStore, limits: Limits, tally: WaitlistTally | None = None) -> None:
        self._store = store
        self._limits = limits
        self._tally = tally or WaitlistTally()

    async def join(self, event_id: str, user_id: str, seats: int) -> Joined:
        """Puts the user on the event's list (seats: 1 to the per-booking maximum); the entry
        they already have when WAITING, or OFFERED with the offer still reserved. SeatsAvailable,
        EventCancelled, SalesNotStarted, SalesEnded, EventNotFound, InvalidArgument."""
        joined = await self._store.join(join_request(event_id, user_id, seats, self._limits))
        if joined.created:
            self._tally.joined()
        return joined

    async def leave(self, event_id: str, user_id: str) -> WaitlistEntry:
        """Takes the user's WAITING entry off the list; an entry in another state is returned
        as it is. WaitlistEntryNotFound, EventNotFound, InvalidArgument."""
        left = await self._store.leave(parse_uuid("event_id", event_id), check_user_id(user_id))
        if left.left_now:
            self._tally.left()
        return left.entry

    async def list_for_user(self, user_id: str, size: int, token: str) -> WaitlistPage:
        """The user's entries across events, newest first."""
        user = check_user_id(user_id)
        limit = page_size("page_size", size)
        entries = await self._store.list_for_user(user, limit + 1, _seq("page_token", token))
        return _page(entries, limit)

    async def list_for_event(self, caller: Principal, event_id: str, size: int, token: str) -> WaitlistPage:
        """Admins: the event's list in join order, every state."""
        if not caller.is_admin:
            raise PermissionDenied("only an admin may list an event's waiting list")
        parsed = parse_uuid("event_id", event_id)
        limit = page_size("page_size", size)
        entries = await self._store.list_for_event(parsed, limit + 1, _seq("page_token", token))
        if entries is None:
            raise EventNotFound(parsed)
        return _page(entries, limit)

    async def list_offers(self, size: int) -> list[WaitlistEntry]:
        """Offers not acknowledged yet, oldest first (page size 0: 100; at most 1000)."""
        return await self._store.list_offers(offers_page_size(size))

    async def acknowledge_offers(self, booking_ids: Sequence[str]) -> int:
        """Marks the offers as recorded; how many this call marked (idempotent)."""
        if len(booking_ids) > MAX_ACKNOWLEDGE:
            raise InvalidArgument("booking_ids", f"at most {MAX_ACKNOWLEDGE} per call, got {len(booking_ids)}")
        parsed = [parse_uuid("booking_ids", booking_id) for booking_id in booking_ids]
        return await self._store.acknowledge(parsed) if parsed else 0


def _page(entries: list[WaitlistEntry], limit: int) -> WaitlistPage:
    if len(entries) <= limit:
        return WaitlistPage(entries, "")
    entries = entries[:limit]
    return WaitlistPage(entries, encode_page_token([str(entries[-1].seq)]))


def _seq(field: str, token: str) -> int | None:
    """The join-order position (seq) a page token carries; None for the first page."""
    position = decode_page_token(field, token, 1)
    if position is None:
        return None
    if not (position[0].isascii() and position[0].isdigit()) or len(position[0]) > 18:
        raise InvalidArgument(field, "is not a token this server issued")
    return int(position[0])
