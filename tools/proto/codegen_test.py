"""The generated code works end to end: a grpc.aio server and client built from the stubs
that //tools/proto:defs.bzl generates exchange messages over a real TCP port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from ticketflow.booking.v1 import booking_service_pb2, booking_service_pb2_grpc
from ticketflow.event.v1 import event_service_pb2, event_service_pb2_grpc


class _Events(event_service_pb2_grpc.EventServiceServicer):
    async def GetEvent(
        self, request: event_service_pb2.GetEventRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> event_service_pb2.Event:
        if request.event_id != "e-1":
            await context.abort(grpc.StatusCode.NOT_FOUND, f"event {request.event_id} not found")
        return event_service_pb2.Event(
            id=request.event_id,
            name="Concert",
            total_seats=100,
            available_seats=42,
            start_time=timestamp_pb2.Timestamp(seconds=1_800_000_000),
        )


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server()
    event_service_pb2_grpc.add_EventServiceServicer_to_server(_Events(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    assert port > 0
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(grace=None)


async def test_unary_call_round_trips_over_a_real_port(channel: grpc.aio.Channel) -> None:
    stub = event_service_pb2_grpc.EventServiceStub(channel)
    event = await stub.GetEvent(event_service_pb2.GetEventRequest(event_id="e-1"), timeout=5)
    assert (event.id, event.name, event.total_seats, event.available_seats) == ("e-1", "Concert", 100, 42)
    assert event.start_time.seconds == 1_800_000_000


async def test_status_codes_cross_the_wire(channel: grpc.aio.Channel) -> None:
    stub = event_service_pb2_grpc.EventServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.GetEvent(event_service_pb2.GetEventRequest(event_id="nope"), timeout=5)
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    assert "nope" in (failure.value.details() or "")


def test_both_services_are_generated_with_their_methods() -> None:
    events = event_service_pb2.DESCRIPTOR.services_by_name["EventService"]
    assert {m.name for m in events.methods} == {
        "CreateEvent",
        "GetEvent",
        "ListEvents",
        "UpdateEvent",
        "CancelEvent",
        "ListCancelledEvents",
        "ReserveSeats",
        "ReserveSeatsBatch",
        "ReleaseSeats",
        "GetReservation",
        "JoinWaitlist",
        "LeaveWaitlist",
        "ListUserWaitlist",
        "ListEventWaitlist",
        "ListWaitlistOffers",
        "AcknowledgeWaitlistOffers",
    }
    bookings = booking_service_pb2.DESCRIPTOR.services_by_name["BookingService"]
    assert {m.name for m in bookings.methods} == {
        "CreateBooking",
        "ConfirmBooking",
        "GetBooking",
        "ListUserBookings",
        "CancelBooking",
        "JoinWaitlist",
        "LeaveWaitlist",
        "ListUserWaitlist",
    }
    assert hasattr(booking_service_pb2_grpc, "BookingServiceStub")


def test_type_stubs_are_generated_beside_the_modules() -> None:
    for module in (event_service_pb2, event_service_pb2_grpc, booking_service_pb2, booking_service_pb2_grpc):
        assert Path(module.__file__ or "").with_suffix(".pyi").is_file(), module.__name__
