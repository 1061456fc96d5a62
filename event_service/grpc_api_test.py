"""The gRPC API over a real channel: every RPC, its error codes and details, health, reflection."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import psycopg
import pytest
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from service_runtime.error_table import error_info_of
from ticketflow.event.v1 import event_service_pb2 as pb
from ticketflow.event.v1 import event_service_pb2_grpc as pb_grpc
from tools.audit.invariants import assert_seats_consistent

START = timestamp_pb2.Timestamp(seconds=1_830_000_000)


async def _event(stub: pb_grpc.EventServiceStub, seats: int) -> pb.Event:
    event: pb.Event = await stub.CreateEvent(
        pb.CreateEventRequest(name="Gig", start_time=START, total_seats=seats), timeout=5
    )
    return event


async def _fails(call: object, code: grpc.StatusCode, reason: str) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call  # type: ignore[misc]
    assert error.value.code() == code, error.value.details()
    info = error_info_of(error.value)
    assert info is not None and info.reason == reason and info.domain == "event.ticketflow"
    return dict(info.metadata)


async def test_created_event_is_returned_by_get_and_list(stub: pb_grpc.EventServiceStub) -> None:
    created = await _event(stub, 30)
    assert created.available_seats == 30 and created.start_time == START
    assert await stub.GetEvent(pb.GetEventRequest(event_id=created.id)) == created
    listed = await stub.ListEvents(pb.ListEventsRequest())
    assert list(listed.events) == [created] and listed.total_size == 1 and not listed.next_page_token


async def test_list_pages_follow_the_token(stub: pb_grpc.EventServiceStub) -> None:
    created = {(await _event(stub, 5)).id for _ in range(5)}
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListEvents(pb.ListEventsRequest(page_size=2, page_token=token))
        seen += [e.id for e in page.events]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == 5 and set(seen) == created


async def test_200_concurrent_reservations_of_one_seat_sell_exactly_50(
    stub: pb_grpc.EventServiceStub, dsn: str
) -> None:
    event = await _event(stub, 50)

    async def reserve() -> grpc.StatusCode:
        try:
            await stub.ReserveSeats(
                pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=event.id, seats=1), timeout=30
            )
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    codes = await asyncio.gather(*(reserve() for _ in range(200)))
    assert codes.count(grpc.StatusCode.OK) == 50
    assert codes.count(grpc.StatusCode.FAILED_PRECONDITION) == 150
    assert (await stub.GetEvent(pb.GetEventRequest(event_id=event.id))).available_seats == 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM reservations WHERE state = 'RESERVED'").fetchone() == (50,)
    assert_seats_consistent(dsn)


async def test_sold_out_is_a_distinct_machine_readable_error(stub: pb_grpc.EventServiceStub) -> None:
    event = await _event(stub, 2)
    request = pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=event.id, seats=3)
    metadata = await _fails(stub.ReserveSeats(request), grpc.StatusCode.FAILED_PRECONDITION, "SOLD_OUT")
    assert metadata["available_seats"] == "2" and metadata["requested_seats"] == "3"
    # A replay of the refused booking is refused the same way.
    await _fails(stub.ReserveSeats(request), grpc.StatusCode.FAILED_PRECONDITION, "SOLD_OUT")


async def test_replays_of_reserve_and_release_change_nothing(stub: pb_grpc.EventServiceStub, dsn: str) -> None:
    event = await _event(stub, 10)
    request = pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=event.id, seats=4)
    first = await stub.ReserveSeats(request)
    assert first.state == pb.Reservation.RESERVED
    assert await stub.ReserveSeats(request) == first
    assert (await stub.GetEvent(pb.GetEventRequest(event_id=event.id))).available_seats == 6

    release = pb.ReleaseSeatsRequest(booking_id=request.booking_id)
    released = await stub.ReleaseSeats(release)
    assert released.state == pb.Reservation.RELEASED and released.HasField("release_time")
    assert await stub.ReleaseSeats(release) == released
    assert (await stub.GetEvent(pb.GetEventRequest(event_id=event.id))).available_seats == 10
    await _fails(stub.ReserveSeats(request), grpc.StatusCode.FAILED_PRECONDITION, "RESERVATION_RELEASED")
    assert_seats_consistent(dsn)


async def test_release_before_reserve_blocks_the_late_reserve(stub: pb_grpc.EventServiceStub) -> None:
    event = await _event(stub, 10)
    booking = str(uuid.uuid4())
    marker = await stub.ReleaseSeats(pb.ReleaseSeatsRequest(booking_id=booking))
    assert (marker.state, marker.seats, marker.event_id) == (pb.Reservation.RELEASED, 0, "")
    late = stub.ReserveSeats(pb.ReserveSeatsRequest(booking_id=booking, event_id=event.id, seats=1))
    await _fails(late, grpc.StatusCode.FAILED_PRECONDITION, "RESERVATION_RELEASED")
    assert (await stub.GetEvent(pb.GetEventRequest(event_id=event.id))).available_seats == 10


async def test_get_reservation_reports_the_record(stub: pb_grpc.EventServiceStub) -> None:
    event = await _event(stub, 10)
    booking = str(uuid.uuid4())
    await _fails(
        stub.GetReservation(pb.GetReservationRequest(booking_id=booking)),
        grpc.StatusCode.NOT_FOUND,
        "RESERVATION_NOT_FOUND",
    )
    reserved = await stub.ReserveSeats(pb.ReserveSeatsRequest(booking_id=booking, event_id=event.id, seats=2))
    assert await stub.GetReservation(pb.GetReservationRequest(booking_id=booking)) == reserved


async def test_a_booking_id_reused_for_other_seats_is_refused(stub: pb_grpc.EventServiceStub) -> None:
    event = await _event(stub, 10)
    booking = str(uuid.uuid4())
    await stub.ReserveSeats(pb.ReserveSeatsRequest(booking_id=booking, event_id=event.id, seats=2))
    other = stub.ReserveSeats(pb.ReserveSeatsRequest(booking_id=booking, event_id=event.id, seats=3))
    await _fails(other, grpc.StatusCode.ALREADY_EXISTS, "BOOKING_ID_REUSED")


async def test_unknown_event_is_not_found(stub: pb_grpc.EventServiceStub) -> None:
    missing = str(uuid.uuid4())
    await _fails(stub.GetEvent(pb.GetEventRequest(event_id=missing)), grpc.StatusCode.NOT_FOUND, "EVENT_NOT_FOUND")
    reserve = stub.ReserveSeats(pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=missing, seats=1))
    await _fails(reserve, grpc.StatusCode.NOT_FOUND, "EVENT_NOT_FOUND")


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ReserveSeatsRequest(booking_id="nope", event_id=str(uuid.uuid4()), seats=1), "booking_id"),
        (pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id="", seats=1), "event_id"),
        (pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=str(uuid.uuid4()), seats=0), "seats"),
        (pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=str(uuid.uuid4()), seats=-3), "seats"),
        (pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=str(uuid.uuid4()), seats=11), "seats"),
    ],
)
async def test_bad_reservations_name_the_field_and_touch_nothing(
    stub: pb_grpc.EventServiceStub, dsn: str, request_: pb.ReserveSeatsRequest, field: str
) -> None:
    metadata = await _fails(stub.ReserveSeats(request_), grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID")
    assert metadata["field"] == field
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM reservations").fetchone() == (0,)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.CreateEventRequest(name="", start_time=START, total_seats=5), "name"),
        (pb.CreateEventRequest(name="x" * 201, start_time=START, total_seats=5), "name"),
        (pb.CreateEventRequest(name="Gig", total_seats=5), "start_time"),
        (pb.CreateEventRequest(name="Gig", start_time=START, total_seats=0), "total_seats"),
        (pb.CreateEventRequest(name="Gig", start_time=START, total_seats=100_001), "total_seats"),
    ],
)
async def test_bad_events_name_the_field_and_create_nothing(
    stub: pb_grpc.EventServiceStub, dsn: str, request_: pb.CreateEventRequest, field: str
) -> None:
    metadata = await _fails(stub.CreateEvent(request_), grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID")
    assert metadata["field"] == field
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)


async def test_standard_health_check_answers_serving(grpc_channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(grpc_channel)
    for service in ("", "ticketflow.event.v1.EventService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_services(grpc_channel: grpc.aio.Channel) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(grpc_channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for reply in reflection.ServerReflectionInfo(iter([request])):
        names = {s.name for s in reply.list_services_response.service}
        break
    assert {"ticketflow.event.v1.EventService", "grpc.health.v1.Health"} <= names


async def test_a_batch_answers_each_reservation_as_its_own_call_would(stub: pb_grpc.EventServiceStub, dsn: str) -> None:
    event = await _event(stub, 3)
    replayed = pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=event.id, seats=1)
    first = await stub.ReserveSeats(replayed)
    requests = [
        replayed,  # a replay: the same reservation, nothing taken
        pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=event.id, seats=2),  # the last 2 seats
        pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=event.id, seats=1),  # sold out
        pb.ReserveSeatsRequest(booking_id="not-a-uuid", event_id=event.id, seats=1),  # invalid
        pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=str(uuid.uuid4()), seats=1),  # no event
    ]
    reply = await stub.ReserveSeatsBatch(pb.ReserveSeatsBatchRequest(requests=requests), timeout=10)
    results = list(reply.results)
    assert results[0].reservation == first
    assert results[1].reservation.state == pb.Reservation.RESERVED and results[1].reservation.seats == 2
    assert (results[2].error.reason, results[2].error.code) == (
        "SOLD_OUT",
        grpc.StatusCode.FAILED_PRECONDITION.value[0],
    )
    assert results[3].error.reason == "FIELD_INVALID" and results[3].error.metadata["field"] == "booking_id"
    assert results[4].error.reason == "EVENT_NOT_FOUND"
    assert (await stub.GetEvent(pb.GetEventRequest(event_id=event.id))).available_seats == 0
    assert_seats_consistent(dsn)


async def test_an_oversized_batch_is_refused(stub: pb_grpc.EventServiceStub) -> None:
    request = pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=str(uuid.uuid4()), seats=1)
    batch = pb.ReserveSeatsBatchRequest(requests=[request] * 1001)
    await _fails(stub.ReserveSeatsBatch(batch), grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID")
