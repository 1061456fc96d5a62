"""How the booking service's domain errors look on the wire: the service's one error table."""

from __future__ import annotations

import grpc

from booking_service.answers import (
    BookingAbandoned,
    BookingNotFound,
    EventCancelled,
    EventNotFound,
    EventServiceUnavailable,
    HoldExpired,
    IdempotencyKeyReused,
    NotCancellable,
    NotConfirmable,
    SalesEnded,
    SalesNotStarted,
    SoldOut,
    UserLimitReached,
)
from booking_service.waitlist_answers import SeatsAvailable, WaitlistEntryNotFound
from service_runtime.error_table import ErrorSpec, ErrorTable

ERRORS = ErrorTable(
    "booking.ticketflow",
    {
        BookingNotFound: ErrorSpec(404, grpc.StatusCode.NOT_FOUND, "BOOKING_NOT_FOUND"),
        EventNotFound: ErrorSpec(404, grpc.StatusCode.NOT_FOUND, "EVENT_NOT_FOUND"),
        SoldOut: ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION, "SOLD_OUT"),
        UserLimitReached: ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION, "USER_LIMIT_REACHED"),
        SalesNotStarted: ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION, "SALES_NOT_STARTED"),
        SalesEnded: ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION, "SALES_ENDED"),
        EventCancelled: ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION, "EVENT_CANCELLED"),
        HoldExpired: ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION, "HOLD_EXPIRED"),
        NotConfirmable: ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION, "BOOKING_NOT_CONFIRMABLE"),
        BookingAbandoned: ErrorSpec(409, grpc.StatusCode.ABORTED, "BOOKING_ABANDONED"),
        NotCancellable: ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION, "BOOKING_NOT_CANCELLABLE"),
        IdempotencyKeyReused: ErrorSpec(422, grpc.StatusCode.FAILED_PRECONDITION, "IDEMPOTENCY_KEY_REUSED"),
        EventServiceUnavailable: ErrorSpec(503, grpc.StatusCode.UNAVAILABLE, "EVENT_SERVICE_UNAVAILABLE"),
        # Waiting lists; the event service's other refusals are answered as the errors above of
        # the same reason (see waitlist_answers).
        SeatsAvailable: ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION, "SEATS_AVAILABLE"),
        WaitlistEntryNotFound: ErrorSpec(404, grpc.StatusCode.NOT_FOUND, "WAITLIST_ENTRY_NOT_FOUND"),
    },
)
