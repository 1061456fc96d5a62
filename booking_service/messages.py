"""Domain objects as protobuf messages (shared by the gRPC and REST adapters)."""

from __future__ import annotations

from booking_service.domain import SHOWS_EXPIRY, Booking, BookingStatus
from service_runtime.protojson import timestamp
from ticketflow.booking.v1 import booking_service_pb2 as pb

_STATUSES = {
    BookingStatus.PENDING: pb.Booking.PENDING,
    BookingStatus.CONFIRMED: pb.Booking.CONFIRMED,
    BookingStatus.REJECTED: pb.Booking.REJECTED,
    BookingStatus.CANCELLING: pb.Booking.CANCELLING,
    BookingStatus.CANCELLED: pb.Booking.CANCELLED,
    BookingStatus.HELD: pb.Booking.HELD,
    BookingStatus.EXPIRING: pb.Booking.EXPIRING,
    BookingStatus.EXPIRED: pb.Booking.EXPIRED,
}


def booking_message(booking: Booking) -> pb.Booking:
    message = pb.Booking(
        id=str(booking.id),
        user_id=booking.user_id,
        event_id=str(booking.event_id),
        seats=booking.seats,
        status=_STATUSES[booking.status],
        reject_reason=booking.reject_reason.value if booking.reject_reason else "",
        create_time=timestamp(booking.create_time),
        update_time=timestamp(booking.update_time),
        hold=booking.hold,
        cancel_reason=booking.cancel_reason.value if booking.cancel_reason else "",
    )
    # A confirmed (or cancelled) hold keeps its expire_time in storage; it no longer runs out.
    if booking.expire_time is not None and booking.status in SHOWS_EXPIRY:
        message.expire_time.CopyFrom(timestamp(booking.expire_time))
    return message
