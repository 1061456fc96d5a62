"""Domain objects as protobuf messages (shared by the gRPC and REST adapters)."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from event_service.domain import Event, Reservation, ReservationState
from ticketflow.event.v1 import event_service_pb2 as pb

_STATES = {
    ReservationState.RESERVED: pb.Reservation.RESERVED,
    ReservationState.RELEASED: pb.Reservation.RELEASED,
    ReservationState.SOLD_OUT: pb.Reservation.SOLD_OUT,
}


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def optional_datetime(message: Message, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    value: Timestamp = getattr(message, field)
    return value.ToDatetime(tzinfo=UTC)


def event_message(event: Event) -> pb.Event:
    return pb.Event(
        id=str(event.id),
        name=event.name,
        start_time=timestamp(event.start_time),
        total_seats=event.total_seats,
        available_seats=event.available_seats,
        create_time=timestamp(event.create_time),
        update_time=timestamp(event.update_time),
    )


def reservation_message(reservation: Reservation) -> pb.Reservation:
    message = pb.Reservation(
        booking_id=str(reservation.booking_id),
        event_id=str(reservation.event_id) if reservation.event_id else "",
        seats=reservation.seats,
        state=_STATES[reservation.state],
        create_time=timestamp(reservation.create_time),
    )
    if reservation.release_time is not None:
        message.release_time.CopyFrom(timestamp(reservation.release_time))
    return message
