"""EventClient against a stand-in event service over a real gRPC channel: batch calls, retries,
refusals (the event's among them), the fallback for an event service without
ReserveSeatsBatch, and the cancelled events' listing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from unittest.mock import ANY

import grpc
import pytest
from google.protobuf import timestamp_pb2

from booking_service.domain import Booking, BookingStatus, Refused, RejectReason, SeatOutcome, SeatsUnavailable
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


class _EventRefusals(pb_grpc.EventServiceServicer):
    """Refuses by seat count: 1 SALES_NOT_STARTED, 2 SALES_ENDED, 3 EVENT_CANCELLED, 4 a
    replay of an id the event's cancellation released; lists cancelled events in pages of two."""

    START = "2027-01-01T10:00:00Z"

    def __init__(self) -> None:
        self.cancelled = [
            pb.Event(id=str(uuid.uuid4()), cancel_time=timestamp_pb2.Timestamp(seconds=1_800_000_000 + n))
            for n in range(5)
        ]
        self.asked_after: list[int] = []
        # Ids whose record is REFUSED (SALES_NOT_STARTED); any other id's is RELEASED by the
        # event's cancellation.
        self.refused_ids: set[str] = set()

    async def ReserveSeatsBatch(
        self, request: pb.ReserveSeatsBatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ReserveSeatsBatchResponse:
        errors = {
            1: ("SALES_NOT_STARTED", {"event_id": request.requests[0].event_id, "sales_start_time": self.START}),
            2: ("SALES_ENDED", {"sales_end_time": "2026-01-01T00:00:00Z"}),
            3: ("EVENT_CANCELLED", {}),
            4: ("RESERVATION_RELEASED", {}),
        }
        results = []
        for r in request.requests:
            reason, metadata = errors[r.seats]
            results.append(
                pb.ReserveSeatsResult(
                    error=pb.ReserveSeatsError(code=9, reason=reason, message="no", metadata=metadata)
                )
            )
        return pb.ReserveSeatsBatchResponse(results=results)

    async def GetReservation(
        self, request: pb.GetReservationRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Reservation:
        if request.booking_id in self.refused_ids:
            return pb.Reservation(
                booking_id=request.booking_id, state=pb.Reservation.REFUSED, refusal_reason="SALES_NOT_STARTED"
            )
        return pb.Reservation(
            booking_id=request.booking_id, state=pb.Reservation.RELEASED, release_reason="EVENT_CANCELLED"
        )

    async def GetEvent(self, request: pb.GetEventRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.Event:
        event = pb.Event(id=request.event_id)
        event.sales_start_time.FromJsonString(self.START)
        return event

    async def ListCancelledEvents(
        self, request: pb.ListCancelledEventsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListCancelledEventsResponse:
        self.asked_after.append(request.cancelled_after.seconds)
        start = int(request.page_token or "0")
        page = self.cancelled[start : start + 2]
        more = start + 2 < len(self.cancelled)
        return pb.ListCancelledEventsResponse(events=page, next_page_token=str(start + 2) if more else "")


async def test_refusals_of_the_event_come_back_with_their_reason_and_facts() -> None:
    servicer = _EventRefusals()
    server, address = await _serve(servicer)
    client = EventClient(ClientSettings(address))
    answers = await client.reserve([_booking(seats) for seats in (1, 2, 3, 4)])
    await client.close()
    await server.stop(None)
    assert answers == [
        Refused(RejectReason.SALES_NOT_STARTED, {"event_id": ANY, "sales_start_time": servicer.START}),
        Refused(RejectReason.SALES_ENDED, {"sales_end_time": "2026-01-01T00:00:00Z"}),
        Refused(RejectReason.EVENT_CANCELLED, {}),
        # RESERVATION_RELEASED: the record says the event's cancellation released it.
        Refused(RejectReason.EVENT_CANCELLED),
    ]


async def test_a_refused_record_reads_as_its_reason_with_the_sales_start() -> None:
    servicer = _EventRefusals()
    server, address = await _serve(servicer)
    client = EventClient(ClientSettings(address))
    refused_id = uuid.uuid4()
    servicer.refused_ids.add(str(refused_id))
    refused = await client.lookup(refused_id)
    released = await client.lookup(uuid.uuid4())
    await client.close()
    await server.stop(None)
    assert refused == Refused(RejectReason.SALES_NOT_STARTED, {"sales_start_time": servicer.START})
    assert released == Refused(RejectReason.EVENT_CANCELLED)


async def test_cancelled_events_are_read_over_all_pages() -> None:
    servicer = _EventRefusals()
    server, address = await _serve(servicer)
    client = EventClient(ClientSettings(address))
    after = datetime.fromtimestamp(1_799_999_000, UTC)
    listed = await client.cancelled_events(after)
    everything = await client.cancelled_events(None)
    await client.close()
    await server.stop(None)
    assert [str(e) for e, _ in listed] == [e.id for e in servicer.cancelled] and listed == everything
    assert listed[0][1] == datetime.fromtimestamp(1_800_000_000, UTC)
    assert servicer.asked_after == [1_799_999_000] * 3 + [0] * 3


async def test_an_unreachable_event_service_cannot_list_cancelled_events() -> None:
    client = EventClient(ClientSettings("127.0.0.1:1", timeout=0.2, attempts=1))
    with pytest.raises(SeatsUnavailable):
        await client.cancelled_events(None)
    await client.close()
