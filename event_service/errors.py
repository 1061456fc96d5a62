"""How the event service's domain errors look on the wire: the service's one error table."""

from __future__ import annotations

import grpc

from event_service.changes import SeatsInUse
from event_service.domain import (
    BookingIdReused,
    EventCancelled,
    EventNotFound,
    ReservationNotFound,
    ReservationReleased,
    SalesEnded,
    SalesNotStarted,
    SoldOut,
)
from event_service.waitlist import SeatsAvailable, WaitlistEntryNotFound
from service_runtime.error_table import ErrorSpec, ErrorTable

_CONFLICT = (409, grpc.StatusCode.FAILED_PRECONDITION)

ERRORS = ErrorTable(
    "event.ticketflow",
    {
        EventNotFound: ErrorSpec(404, grpc.StatusCode.NOT_FOUND, "EVENT_NOT_FOUND"),
        ReservationNotFound: ErrorSpec(404, grpc.StatusCode.NOT_FOUND, "RESERVATION_NOT_FOUND"),
        SoldOut: ErrorSpec(*_CONFLICT, "SOLD_OUT"),
        SalesNotStarted: ErrorSpec(*_CONFLICT, "SALES_NOT_STARTED"),
        SalesEnded: ErrorSpec(*_CONFLICT, "SALES_ENDED"),
        EventCancelled: ErrorSpec(*_CONFLICT, "EVENT_CANCELLED"),
        SeatsInUse: ErrorSpec(*_CONFLICT, "SEATS_IN_USE"),
        ReservationReleased: ErrorSpec(*_CONFLICT, "RESERVATION_RELEASED"),
        BookingIdReused: ErrorSpec(409, grpc.StatusCode.ALREADY_EXISTS, "BOOKING_ID_REUSED"),
        SeatsAvailable: ErrorSpec(*_CONFLICT, "SEATS_AVAILABLE"),
        WaitlistEntryNotFound: ErrorSpec(404, grpc.StatusCode.NOT_FOUND, "WAITLIST_ENTRY_NOT_FOUND"),
    },
)
