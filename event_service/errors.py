"""How the event service's domain errors look on the wire: the service's one error table."""

from __future__ import annotations

import grpc

from event_service.domain import BookingIdReused, EventNotFound, ReservationNotFound, ReservationReleased, SoldOut
from service_runtime.error_table import ErrorSpec, ErrorTable

ERRORS = ErrorTable(
    "event.ticketflow",
    {
        EventNotFound: ErrorSpec(404, grpc.StatusCode.NOT_FOUND, "EVENT_NOT_FOUND"),
        ReservationNotFound: ErrorSpec(404, grpc.StatusCode.NOT_FOUND, "RESERVATION_NOT_FOUND"),
        SoldOut: ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION, "SOLD_OUT"),
        ReservationReleased: ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION, "RESERVATION_RELEASED"),
        BookingIdReused: ErrorSpec(409, grpc.StatusCode.ALREADY_EXISTS, "BOOKING_ID_REUSED"),
    },
)
