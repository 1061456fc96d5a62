"""The gRPC side of issue 13 over real channels: sales windows decided where seats are taken
(single calls and batches, replays refused the same way), UpdateEvent with a FieldMask,
CancelEvent, ListCancelledEvents, and who may call them: an admin token for UpdateEvent and
CancelEvent (UNAUTHENTICATED without a token, PERMISSION_DENIED for a user, nothing written),
the booking service's certificate for ListCancelledEvents (see also grpc_api_test's seat-call
refusals, which cover it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2

from event_service import app
from service_runtime.error_table import error_info_of
from ticketflow.event.v1 import event_service_pb2 as pb
from ticketflow.event.v1 import event_service_pb2_grpc as pb_grpc
from tools.audit.invariants import assert_seats_consistent

START = timestamp_pb2.Timestamp(seconds=1_830_000_000)
Metadata = tuple[tuple[str, str], ...]


def _ts(instant: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(instant)
    return ts


async def _event(stub: pb_grpc.EventServiceStub, admin: Metadata, seats: int, **window: Any) -> pb.Event:
    request = pb.CreateEventRequest(name="Gig", start_time=START, total_seats=seats, **window)
    event: pb.Event = await stub.CreateEvent(request, metadata=admin, timeout=5)
    return event


async def _fails(call: object, code: grpc.StatusCode, reason: str) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call  # type: ignore[misc]
    assert error.value.code() == code, error.value.details()
    info = error_info_of(error.value)
    assert info is not None and info.reason == reason and info.domain == "event.ticketflow"
    return dict(info.metadata)


def _rows(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        events = conn.execute("SELECT * FROM events ORDER BY id").fetchall()
        reservations = conn.execute("SELECT * FROM reservations ORDER BY booking_id").fetchall()
    return events + reservations


def _reserve(event_id: str, seats: int = 1, booking: str | None = None) -> pb.ReserveSeatsRequest:
    return pb.ReserveSeatsRequest(booking_id=booking or str(uuid.uuid4()), event_id=event_id, seats=seats)


# --- Sales windows -----------------------------------------------------------------------------


async def test_before_the_sales_start_reservations_are_refused_with_the_start_time(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata, components: app.Components
) -> None:
    opening = datetime(2099, 1, 1, 10, 0, tzinfo=UTC)
    event = await _event(stub, admin_metadata, 10, sales_start_time=_ts(opening))
    assert event.sales_start_time == _ts(opening) and not event.HasField("sales_end_time")
    request = _reserve(event.id, 2)
    metadata = await _fails(stub.ReserveSeats(request), grpc.StatusCode.FAILED_PRECONDITION, "SALES_NOT_STARTED")
    assert metadata == {"event_id": event.id, "sales_start_time": "2099-01-01T10:00:00Z"}
    # The replay is refused the same way, and the record says why.
    await _fails(stub.ReserveSeats(request), grpc.StatusCode.FAILED_PRECONDITION, "SALES_NOT_STARTED")
    recorded = await stub.GetReservation(pb.GetReservationRequest(booking_id=request.booking_id))
    assert (recorded.state, recorded.refusal_reason, recorded.seats) == (pb.Reservation.REFUSED, "SALES_NOT_STARTED", 2)
    assert (await stub.GetEvent(pb.GetEventRequest(event_id=event.id))).available_seats == 10
    assert b'reservations_refused_total{reason="SALES_NOT_STARTED"} 2.0' in components.metrics.exposition()


async def test_after_the_sales_end_a_batch_answers_sales_ended_per_reservation(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata
) -> None:
    closed = datetime(2020, 1, 1, tzinfo=UTC)
    ended = await _event(stub, admin_metadata, 10, sales_end_time=_ts(closed))
    open_ = await _event(stub, admin_metadata, 10)
    reply = await stub.ReserveSeatsBatch(
        pb.ReserveSeatsBatchRequest(requests=[_reserve(ended.id), _reserve(open_.id)]), timeout=10
    )
    refused, reserved = reply.results
    assert (refused.error.reason, refused.error.code) == ("SALES_ENDED", grpc.StatusCode.FAILED_PRECONDITION.value[0])
    assert refused.error.metadata["sales_end_time"] == "2020-01-01T00:00:00Z"
    assert reserved.reservation.state == pb.Reservation.RESERVED


# --- UpdateEvent -------------------------------------------------------------------------------


async def test_update_with_a_mask_changes_the_named_fields(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata
) -> None:
    event = await _event(stub, admin_metadata, 10, sales_end_time=_ts(datetime(2099, 1, 1, tzinfo=UTC)))
    changed = await stub.UpdateEvent(
        pb.UpdateEventRequest(
            event=pb.Event(id=event.id, name="Renamed", total_seats=1),
            update_mask=field_mask_pb2.FieldMask(paths=["name", "sales_end_time"]),
        ),
        metadata=admin_metadata,
        timeout=5,
    )
    assert (changed.name, changed.total_seats, changed.HasField("sales_end_time")) == ("Renamed", 10, False)
    assert await stub.GetEvent(pb.GetEventRequest(event_id=event.id)) == changed


async def test_update_without_a_mask_changes_the_fields_set(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata
) -> None:
    event = await _event(stub, admin_metadata, 10)
    changed = await stub.UpdateEvent(
        pb.UpdateEventRequest(event=pb.Event(id=event.id, total_seats=25)), metadata=admin_metadata, timeout=5
    )
    assert (changed.name, changed.total_seats, changed.available_seats) == ("Gig", 25, 25)


async def test_removing_seats_below_those_taken_is_seats_in_use(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata, dsn: str
) -> None:
    event = await _event(stub, admin_metadata, 10)
    await stub.ReserveSeats(_reserve(event.id, 6), timeout=5)
    update = pb.UpdateEventRequest(event=pb.Event(id=event.id, total_seats=5))
    metadata = await _fails(
        stub.UpdateEvent(update, metadata=admin_metadata), grpc.StatusCode.FAILED_PRECONDITION, "SEATS_IN_USE"
    )
    assert (metadata["taken_seats"], metadata["total_seats"]) == ("6", "5")
    assert_seats_consistent(dsn)


@pytest.mark.parametrize(
    ("update", "field"),
    [
        (
            pb.UpdateEventRequest(event=pb.Event(name="x"), update_mask=field_mask_pb2.FieldMask(paths=["id"])),
            "update_mask",
        ),
        (pb.UpdateEventRequest(event=pb.Event(total_seats=100_001)), "total_seats"),
    ],
)
async def test_bad_updates_name_the_field_and_change_nothing(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata, dsn: str, update: pb.UpdateEventRequest, field: str
) -> None:
    event = await _event(stub, admin_metadata, 10)
    update.event.id = event.id
    before = _rows(dsn)
    metadata = await _fails(
        stub.UpdateEvent(update, metadata=admin_metadata), grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID"
    )
    assert metadata["field"] == field
    assert _rows(dsn) == before


# --- CancelEvent and ListCancelledEvents ---------------------------------------------------------


async def test_cancel_releases_the_seats_refuses_later_reservations_and_is_listed(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata, dsn: str
) -> None:
    event = await _event(stub, admin_metadata, 10)
    other = await _event(stub, admin_metadata, 10)
    held = await stub.ReserveSeats(_reserve(event.id, 3), timeout=5)
    cancelled = await stub.CancelEvent(pb.CancelEventRequest(event_id=event.id), metadata=admin_metadata, timeout=5)
    assert (cancelled.state, cancelled.available_seats) == (pb.Event.CANCELLED, 10)
    assert cancelled.HasField("cancel_time")
    assert await stub.CancelEvent(pb.CancelEventRequest(event_id=event.id), metadata=admin_metadata) == cancelled

    released = await stub.ReleaseSeats(pb.ReleaseSeatsRequest(booking_id=held.booking_id), timeout=5)
    assert (released.state, released.release_reason) == (pb.Reservation.RELEASED, "EVENT_CANCELLED")
    late = stub.ReserveSeats(_reserve(event.id))
    assert await _fails(late, grpc.StatusCode.FAILED_PRECONDITION, "EVENT_CANCELLED") == {"event_id": event.id}
    changed = stub.UpdateEvent(pb.UpdateEventRequest(event=pb.Event(id=event.id, name="x")), metadata=admin_metadata)
    await _fails(changed, grpc.StatusCode.FAILED_PRECONDITION, "EVENT_CANCELLED")

    listed = await stub.ListCancelledEvents(pb.ListCancelledEventsRequest(), timeout=5)
    assert list(listed.events) == [cancelled] and not listed.next_page_token
    assert other.id not in {e.id for e in listed.events}
    later = _ts(cancelled.cancel_time.ToDatetime(tzinfo=UTC) + timedelta(seconds=1))
    assert not (await stub.ListCancelledEvents(pb.ListCancelledEventsRequest(cancelled_after=later))).events
    assert_seats_consistent(dsn)


async def test_cancelled_events_are_listed_page_by_page(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata
) -> None:
    ids = set()
    for _ in range(5):
        event = await _event(stub, admin_metadata, 1)
        await stub.CancelEvent(pb.CancelEventRequest(event_id=event.id), metadata=admin_metadata, timeout=5)
        ids.add(event.id)
    seen: list[pb.Event] = []
    token = ""
    while True:
        page = await stub.ListCancelledEvents(pb.ListCancelledEventsRequest(page_size=2, page_token=token))
        seen += page.events
        token = page.next_page_token
        if not token:
            break
    assert {e.id for e in seen} == ids and len(seen) == 5
    keys = [(e.cancel_time.ToDatetime(), e.id) for e in seen]
    assert keys == sorted(keys)
    bad = stub.ListCancelledEvents(pb.ListCancelledEventsRequest(page_token="garbage"))
    assert (await _fails(bad, grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID"))["field"] == "page_token"


async def test_cancelling_an_unknown_event_is_not_found(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata
) -> None:
    call = stub.CancelEvent(pb.CancelEventRequest(event_id=str(uuid.uuid4())), metadata=admin_metadata)
    await _fails(call, grpc.StatusCode.NOT_FOUND, "EVENT_NOT_FOUND")


# --- Who may change and cancel events ------------------------------------------------------------


def _admin_calls(stub: pb_grpc.EventServiceStub, event_id: str, metadata: Metadata) -> dict[str, Any]:
    return {
        "UpdateEvent": stub.UpdateEvent(
            pb.UpdateEventRequest(event=pb.Event(id=event_id, name="Renamed", total_seats=2)),
            metadata=metadata,
            timeout=5,
        ),
        "UpdateEvent(invalid)": stub.UpdateEvent(
            pb.UpdateEventRequest(event=pb.Event(id=event_id, total_seats=-1)), metadata=metadata, timeout=5
        ),
        "CancelEvent": stub.CancelEvent(pb.CancelEventRequest(event_id=event_id), metadata=metadata, timeout=5),
    }


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("nobody", grpc.StatusCode.UNAUTHENTICATED),
        ("bad_token", grpc.StatusCode.UNAUTHENTICATED),
        ("user", grpc.StatusCode.PERMISSION_DENIED),
    ],
)
async def test_only_an_admin_may_change_or_cancel_events_and_refusals_write_nothing(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata, user_token: str, dsn: str, who: str, code: grpc.StatusCode
) -> None:
    event = await _event(stub, admin_metadata, 10)
    await stub.ReserveSeats(_reserve(event.id, 4), timeout=5)
    before = _rows(dsn)
    metadata: Metadata = {
        "nobody": (),
        "bad_token": (("authorization", "Bearer not-a-jwt"),),
        "user": (("authorization", f"Bearer {user_token}"),),
    }[who]
    # The booking service's certificate (this stub's channel) gives no admin rights either.
    for name, call in _admin_calls(stub, event.id, metadata).items():
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == code, (name, refused.value.details())
    assert _rows(dsn) == before
