"""The waiting-list use cases: join, leave, and a user's entries. Primitives in, domain objects
out.

Who may call: each use case takes the caller; the user concerned is the caller (empty or `me`),
or anyone for an admin (PermissionDenied otherwise, before anything is read or written). The
event service keeps the lists; it hears of a request only once the request is allowed.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import NoReturn, Protocol

from booking_service.domain import Limits, SeatsUnavailable
from booking_service.waitlist import (
    EventRefusal,
    Joined,
    WaitlistEntry,
    WaitlistPage,
    join_request,
    leave_request,
    waitlist_owner,
)
from booking_service.waitlist_answers import WaitlistUnavailable, WaitlistUserLimitReached, relayed
from service_runtime.auth.principal import Principal
from service_runtime.validation import page_size


class Waitlists(Protocol):
    """The event service's waiting lists. Every method raises SeatsUnavailable when it cannot
    be reached, and EventRefusal when it refuses."""

    async def join_waitlist(self, event_id: uuid.UUID, user_id: str, seats: int) -> Joined: ...
    async def leave_waitlist(self, event_id: uuid.UUID, user_id: str) -> WaitlistEntry: ...
    async def user_waitlist(self, user_id: str, page_size: int, page_token: str) -> WaitlistPage: ...


class HeldSeats(Protocol):
    async def held_seats(self, user_id: str, event_id: uuid.UUID) -> int: ...


class WaitlistService:
    def __init__(
        self, store: HeldSeats, lists: Waitlists, limits: Limits, *, retry_after: timedelta = timedelta(seconds=5)
    ) -> None:
        self._store = store
        self._lists = lists
        self.limits = limits
        self._retry_after = max(1, int(retry_after.total_seconds()))

    async def join(self, caller: Principal, event_id: str, user_id: str, seats: int) -> Joined:
        """Puts the user on the event's waiting list for `seats` seats (0: 1), or returns the
        entry they have (created False). USER_LIMIT_REACHED, before the event service is asked,
        when the seats and what the user holds of the event pass the per-user cap (a snapshot:
        the offer is checked again when it is recorded)."""
        join = join_request(caller, event_id, user_id, seats, self.limits)
        held = await self._store.held_seats(join.user_id, join.event_id)
        cap = self.limits.max_seats_per_user_per_event
        if held + join.seats > cap:
            raise WaitlistUserLimitReached(join.user_id, join.event_id, cap, held)
        try:
            return await self._lists.join_waitlist(join.event_id, join.user_id, join.seats)
        except (SeatsUnavailable, EventRefusal) as error:
            self._refused(error)

    async def leave(self, caller: Principal, event_id: str, user_id: str) -> WaitlistEntry:
        """Takes the user off the event's waiting list (WAITING -> LEFT); an entry LEFT, OFFERED
        or CLOSED is returned as it is; WAITLIST_ENTRY_NOT_FOUND when the user never joined."""
        event, user = leave_request(caller, event_id, user_id)
        try:
            return await self._lists.leave_waitlist(event, user)
        except (SeatsUnavailable, EventRefusal) as error:
            self._refused(error)

    async def list_user(self, caller: Principal, user_id: str, size: int, token: str) -> WaitlistPage:
        """The user's entries, newest first, a page at a time (the event service's tokens)."""
        user = waitlist_owner(caller, user_id)
        limit = page_size("page_size", size)
        try:
            return await self._lists.user_waitlist(user, limit, token)
        except (SeatsUnavailable, EventRefusal) as error:
            self._refused(error)

    def _refused(self, error: SeatsUnavailable | EventRefusal) -> NoReturn:
        if isinstance(error, SeatsUnavailable):
            raise WaitlistUnavailable(self._retry_after) from error
        raise relayed(error) from None
