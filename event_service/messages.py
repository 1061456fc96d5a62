"""Domain objects as protobuf messages (shared by the gRPC and REST adapters)."""

from __future__ import annotations

from event_service.changes import EventValues
from event_service.domain import Event, EventState, Reservation, ReservationState
from event_service.waitlist import WaitlistEntry, WaitlistState
from service_runtime.error_table import ErrorTable
from service_runtime.errors import DomainError
from service_runtime.protojson import optional_datetime, timestamp
from ticketflow.event.v1 import event_service_pb2 as pb

_STATES = {
    ReservationState.RESERVED: pb.Reservation.RESERVED,
    ReservationState.RELEASED: pb.Reservation.RELEASED,
    ReservationState.SOLD_OUT: pb.Reservation.SOLD_OUT,
    ReservationState.REFUSED: pb.Reservation.REFUSED,
}
_EVENT_STATES = {EventState.SCHEDULED: pb.Event.SCHEDULED, EventState.CANCELLED: pb.Event.CANCELLED}
_WAITLIST_STATES = {
    WaitlistState.WAITING: pb.WaitlistEntry.WAITING,
    WaitlistState.OFFERED: pb.WaitlistEntry.OFFERED,
    WaitlistState.LEFT: pb.WaitlistEntry.LEFT,
    WaitlistState.CLOSED: pb.WaitlistEntry.CLOSED,
}


def event_message(event: Event) -> pb.Event:
    message = pb.Event(
        id=str(event.id),
        name=event.name,
        start_time=timestamp(event.start_time),
        total_seats=event.total_seats,
        available_seats=event.available_seats,
        create_time=timestamp(event.create_time),
        update_time=timestamp(event.update_time),
        state=_EVENT_STATES[event.state],
        waitlist_size=event.waitlist_size,
    )
    # Unset timestamps stay unset (absent from JSON), as the proto documents them.
    if event.sales_start_time is not None:
        message.sales_start_time.CopyFrom(timestamp(event.sales_start_time))
    if event.sales_end_time is not None:
        message.sales_end_time.CopyFrom(timestamp(event.sales_end_time))
    if event.cancel_time is not None:
        message.cancel_time.CopyFrom(timestamp(event.cancel_time))
    return message


def event_values(event: pb.Event) -> EventValues:
    """The changeable fields of an UpdateEvent request's `event` (output-only fields, such as
    available_seats, are ignored, as AIP-203 says a server does)."""
    return EventValues(
        name=event.name,
        start_time=optional_datetime(event, "start_time"),
        sales_start_time=optional_datetime(event, "sales_start_time"),
        sales_end_time=optional_datetime(event, "sales_end_time"),
        total_seats=event.total_seats,
    )


def reservation_message(reservation: Reservation) -> pb.Reservation:
    message = pb.Reservation(
        booking_id=str(reservation.booking_id),
        event_id=str(reservation.event_id) if reservation.event_id else "",
        seats=reservation.seats,
        state=_STATES[reservation.state],
        create_time=timestamp(reservation.create_time),
        refusal_reason=reservation.refusal_reason.value if reservation.refusal_reason else "",
        release_reason=reservation.release_reason.value if reservation.release_reason else "",
    )
    if reservation.release_time is not None:
        message.release_time.CopyFrom(timestamp(reservation.release_time))
    return message


def reserve_result(result: Reservation | DomainError, errors: ErrorTable) -> pb.ReserveSeatsResult:
    """One entry of a ReserveSeatsBatch answer: the reservation, or the error (as the error
    table renders it) that a ReserveSeats call of its own would have failed with."""
    if isinstance(result, Reservation):
        return pb.ReserveSeatsResult(reservation=reservation_message(result))
    spec = errors.spec(result)
    return pb.ReserveSeatsResult(
        error=pb.ReserveSeatsError(
            code=spec.grpc_code.value[0], message=result.message, reason=spec.reason, metadata=result.metadata
        )
    )


def waitlist_entry_message(entry: WaitlistEntry) -> pb.WaitlistEntry:
    message = pb.WaitlistEntry(
        id=str(entry.id),
        event_id=str(entry.event_id),
        user_id=entry.user_id,
        seats=entry.seats,
        state=_WAITLIST_STATES[entry.state],
        position=entry.position,
        create_time=timestamp(entry.create_time),
        update_time=timestamp(entry.update_time),
        booking_id=str(entry.booking_id) if entry.booking_id else "",
    )
    if entry.offer_time is not None:
        message.offer_time.CopyFrom(timestamp(entry.offer_time))
    return message


def waitlist_message(entries: list[WaitlistEntry], next_page_token: str = "") -> pb.ListWaitlistResponse:
    return pb.ListWaitlistResponse(
        entries=[waitlist_entry_message(e) for e in entries], next_page_token=next_page_token
    )
