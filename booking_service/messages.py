"""Domain objects as protobuf messages (shared by the gRPC and REST adapters)."""

from __future__ import annotations

from booking_service.domain import SHOWS_EXPIRY, Booking, BookingStatus
from booking_service.waitlist import WaitlistEntry, WaitlistState
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
_ENTRY_STATES = {
    WaitlistState.WAITING: pb.WaitlistEntry.WAITING,
    WaitlistState.OFFERED: pb.WaitlistEntry.OFFERED,
    WaitlistState.LEFT: pb.WaitlistEntry.LEFT,
    WaitlistState.CLOSED: pb.WaitlistEntry.CLOSED,
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
        waitlist_entry_id=str(booking.waitlist_entry_id) if booking.waitlist_entry_id else "",
    )
    # A confirmed (or cancelled) hold keeps its expire_time in storage; it no longer runs out.
    if booking.expire_time is not None and booking.status in SHOWS_EXPIRY:
        message.expire_time.CopyFrom(timestamp(booking.expire_time))
    return message


def waitlist_entry_message(entry: WaitlistEntry) -> pb.WaitlistEntry:
    message = pb.WaitlistEntry(
        id=str(entry.id),
        event_id=str(entry.event_id),
        user_id=entry.user_id,
        seats=entry.seats,
        state=_ENTRY_STATES[entry.state],
        position=entry.position,
        create_time=timestamp(entry.create_time),
        update_time=timestamp(entry.update_time),
        booking_id=str(entry.booking_id) if entry.booking_id else "",
    )
    if entry.offer_time is not None:
        message.offer_time.CopyFrom(timestamp(entry.offer_time))
    return message
