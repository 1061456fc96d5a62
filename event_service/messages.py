"""Domain objects as protobuf messages (shared by the gRPC and REST adapters)."""

from __future__ import annotations

from event_service.domain import Event, Reservation, ReservationState
from service_runtime.error_table import ErrorTable
from service_runtime.errors import DomainError
from service_runtime.protojson import timestamp
from ticketflow.event.v1 import event_service_pb2 as pb

_STATES = {
    ReservationState.RESERVED: pb.Reservation.RESERVED,
    ReservationState.RELEASED: pb.Reservation.RELEASED,
    ReservationState.SOLD_OUT: pb.Reservation.SOLD_OUT,
}


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
