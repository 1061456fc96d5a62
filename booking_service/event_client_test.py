"""EventClient against a stand-in event service over a real gRPC channel: batch calls, retries,
refusals, and the fallback for an event service without ReserveSeatsBatch."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from booking_service.domain import Booking, BookingStatus, SeatOutcome, SeatsUnavailable
from booking_service.event_client import ClientSettings, EventClient
from ticketflow.event.v1 import event_service_pb2 as pb
from ticketflow.event.v1 import event_service_pb2_grpc as pb_grpc


class _Events(pb_grpc.EventServiceServicer):
    """Grants odd seat counts, refuses even ones as SOLD_OUT; fails the first `flaky` calls."""

    def __init__(self, flaky: int = 0) -> None:
        self.flaky = flaky
        self.internal = False
        self.calls: list[str] = []

    async def _maybe_fail(self, context: grpc.aio.ServicerContext[Any, Any], name: str) -> None:
        self.calls.append(name)
        if self.internal:
            await context.abort(grpc.StatusCode.INTERNAL, "database went away")
        if self.flaky > 0:
            self.flaky -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "try again")

    @staticmethod
    def _result(request: pb.ReserveSeatsRequest) -> pb.ReserveSeatsResult:
        if request.seats % 2 == 0:
            return pb.ReserveSeatsResult(error=pb.ReserveSeatsError(code=9, reason="SOLD_OUT", message="gone"))
        reservation = pb.Reservation(booking_id=request.booking_id, state=pb.Reservation.RESERVED, seats=request.seats)
        return pb.ReserveSeatsResult(reservation=reservation)

    async def ReserveSeatsBatch(
        self, request: pb.ReserveSeatsBatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ReserveSeatsBatchResponse:
        await self._maybe_fail(context, f"batch:{len(request.requests)}")
        return pb.ReserveSeatsBatchResponse(results=[self._result(r) for r in request.requests])

    async def GetReservation(
        self, request: pb.GetReservationRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Reservation:
        await self._maybe_fail(context, "get")
        await context.abort(grpc.StatusCode.NOT_FOUND, "no reservation")
        raise AssertionError


class _OldEvents(pb_grpc.EventServiceServicer):
    """An event service from before ReserveSeatsBatch."""

    async def ReserveSeats(
        self, request: pb.ReserveSeatsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Reservation:
        return pb.Reservation(booking_id=request.booking_id, state=pb.Reservation.RESERVED)


async def _serve(servicer: pb_grpc.EventServiceServicer) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    pb_grpc.add_EventServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
async def events() -> AsyncIterator[tuple[_Events, str]]:
    servicer = _Events()
    server, address = await _serve(servicer)
    yield servicer, address
    await server.stop(None)


def _booking(seats: int = 1) -> Booking:
    now = datetime.now(UTC)
    return Booking(uuid.uuid4(), "alice", uuid.uuid4(), seats, BookingStatus.PENDING, None, None, None, now, now)


async def test_many_reservations_travel_in_one_call(events: tuple[_Events, str]) -> None:
    servicer, address = events
    client = EventClient(ClientSettings(address, timeout=2))
    outcomes = await client.reserve([_booking(seats) for seats in (1, 2, 3, 4, 5)])
    await client.close()
    assert outcomes == [SeatOutcome.RESERVED, SeatOutcome.SOLD_OUT] * 2 + [SeatOutcome.RESERVED]
    assert servicer.calls == ["batch:5"]


async def test_unavailable_is_retried_then_reported(events: tuple[_Events, str]) -> None:
    servicer, address = events
    client = EventClient(ClientSettings(address, timeout=2, attempts=3, backoff=0.001))
    servicer.flaky = 2
    assert await client.reserve([_booking()]) == [SeatOutcome.RESERVED]
    servicer.flaky = 3
    with pytest.raises(SeatsUnavailable):
        await client.reserve([_booking()])
    await client.close()


async def test_a_failing_event_service_is_unavailable_at_once(events: tuple[_Events, str]) -> None:
    servicer, address = events
    servicer.internal = True
    client = EventClient(ClientSettings(address, timeout=2, attempts=3, backoff=0.001))
    with pytest.raises(SeatsUnavailable):
        await client.reserve([_booking()])
    await client.close()
    assert servicer.calls == ["batch:1"]


async def test_a_missing_reservation_reads_as_none(events: tuple[_Events, str]) -> None:
    _, address = events
    client = EventClient(ClientSettings(address))
    assert await client.lookup(uuid.uuid4()) is SeatOutcome.NONE
    await client.close()


async def test_an_event_service_without_batches_is_called_one_by_one_and_said_once() -> None:
    server, address = await _serve(_OldEvents())
    said: list[str] = []
    client = EventClient(ClientSettings(address), on_batch_unsupported=lambda: said.append("unsupported"))
    assert await client.reserve([_booking(), _booking()]) == [SeatOutcome.RESERVED] * 2
    assert await client.reserve([_booking()]) == [SeatOutcome.RESERVED]
    await client.close()
    await server.stop(None)
    assert said == ["unsupported"]


async def test_an_unreachable_event_service_is_unavailable() -> None:
    client = EventClient(ClientSettings("127.0.0.1:1", timeout=0.2, attempts=2, backoff=0.001))
    with pytest.raises(SeatsUnavailable):
        await client.reserve([_booking()])
    assert not await client.ready(timeout=0.2)
    await client.close()
