"""What a waiting-list request is answered when it is refused: the refusals the event service
gives (passed on with its reason, message and metadata, `relayed`), the booking service's own
cap check, and an unreachable event service. Free of I/O.

A relayed refusal is a subclass of the booking service's error of the same reason (so the
error table answers it alike) built from what the event service said instead of a booking.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from booking_service.answers import (
    EventCancelled,
    EventNotFound,
    EventServiceUnavailable,
    SalesEnded,
    SalesNotStarted,
    UserLimitReached,
)
from booking_service.domain import SeatsRejected
from booking_service.waitlist import EventRefusal
from service_runtime.errors import Conflict, DomainError, InvalidArgument, NotFound, Unavailable


class Relayed(DomainError):
    """A refusal of the event service's, with its message and metadata as they came."""

    def __init__(self, message: str, metadata: Mapping[str, str]) -> None:
        DomainError.__init__(self, message, **metadata)


class SeatsAvailable(Relayed, Conflict):
    """Joining a waiting list while nobody waits and the seats can simply be booked."""


class WaitlistEntryNotFound(Relayed, NotFound):
    """Leaving a waiting list the user never joined."""


class RelayedEventNotFound(Relayed, EventNotFound):
    pass


class RelayedEventCancelled(Relayed, EventCancelled):
    pass


class RelayedSalesNotStarted(Relayed, SalesNotStarted):
    pass


class RelayedSalesEnded(Relayed, SalesEnded):
    pass


class RelayedInvalidArgument(Relayed, InvalidArgument):
    def __init__(self, message: str, metadata: Mapping[str, str]) -> None:
        super().__init__(message, metadata)
        self.field = self.metadata.get("field", "")


_RELAYED: dict[str, type[Relayed]] = {
    "SEATS_AVAILABLE": SeatsAvailable,
    "WAITLIST_ENTRY_NOT_FOUND": WaitlistEntryNotFound,
    "EVENT_NOT_FOUND": RelayedEventNotFound,
    "EVENT_CANCELLED": RelayedEventCancelled,
    "SALES_NOT_STARTED": RelayedSalesNotStarted,
    "SALES_ENDED": RelayedSalesEnded,
    "FIELD_INVALID": RelayedInvalidArgument,
}


def relayed(refusal: EventRefusal) -> Exception:
    """The answer to a request the event service refused: its own refusal for a reason the
    caller can act on; any other (PERMISSION_DENIED of a misconfigured peer, say) is the
    booking service's problem, not the caller's, and ends as an internal error."""
    error = _RELAYED.get(refusal.reason)
    if error is None:
        return SeatsRejected(f"event service refused: {refusal}")
    return error(refusal.message, refusal.metadata)


class WaitlistUserLimitReached(UserLimitReached):
    def __init__(self, user_id: str, event_id: uuid.UUID, limit: int, held: int) -> None:
        Conflict.__init__(
            self,
            f"user {user_id} may hold at most {limit} seat(s) of event {event_id} and holds {held}",
            event_id=str(event_id),
            limit=limit,
            held_seats=held,
        )


class WaitlistUnavailable(EventServiceUnavailable):
    def __init__(self, retry_after_seconds: int) -> None:
        Unavailable.__init__(
            self,
            "the event service cannot be reached; retry later (joining and leaving a waiting list are idempotent)",
            retry_after_seconds=retry_after_seconds,
        )
