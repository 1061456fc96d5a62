"""Waiting lists over real gRPC channels and the REST route: the RPCs, their errors and
details, the metrics, and who may call what: the booking service's certificate (SEAT_CALLERS)
for joining, leaving and following offers; an admin token for an event's whole list."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf import timestamp_pb2
from psycopg_pool import AsyncConnectionPool
from quart.typing import TestClientProtocol as Client

from event_service import app
from event_service.config import Settings
from event_service.conftest import Metadata, assert_waitlists_consistent, client_tls
from service_runtime.auth.access import Access
from service_runtime.config import Env
from service_runtime.error_table import error_info_of
from ticketflow.event.v1 import event_service_pb2 as pb
from ticketflow.event.v1 import event_service_pb2_grpc as pb_grpc
from tools.audit.invariants import assert_seats_consistent
from tools.devkeys import DevTls

START = timestamp_pb2.Timestamp(seconds=1_830_000_000)


async def _fails(call: object, code: grpc.StatusCode, reason: str) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call  # type: ignore[misc]
    assert error.value.code() == code, error.value.details()
    info = error_info_of(error.value)
    assert info is not None and info.reason == reason and info.domain == "event.ticketflow"
    return dict(info.metadata)


async def _reserve(stub: pb_grpc.EventServiceStub, event_id: str, seats: int = 1) -> str:
    booking = str(uuid.uuid4())
    await stub.ReserveSeats(pb.ReserveSeatsRequest(booking_id=booking, event_id=event_id, seats=seats), timeout=5)
    return booking


@pytest.fixture
async def sold_out(stub: pb_grpc.EventServiceStub, admin_metadata: Metadata) -> tuple[pb.Event, list[str]]:
    """An event of 2 seats, both reserved, one per booking."""
    event = await stub.CreateEvent(
        pb.CreateEventRequest(name="Gig", start_time=START, total_seats=2), metadata=admin_metadata, timeout=5
    )
    return event, [await _reserve(stub, event.id) for _ in range(2)]


def _join(event_id: str, user: str, seats: int = 1) -> pb.JoinWaitlistRequest:
    return pb.JoinWaitlistRequest(event_id=event_id, user_id=user, seats=seats)


async def test_a_user_joins_once_and_waits_at_a_position(
    stub: pb_grpc.EventServiceStub, sold_out: tuple[pb.Event, list[str]], dsn: str
) -> None:
    event, _ = sold_out
    first = await stub.JoinWaitlist(_join(event.id, "alice", 2), timeout=5)
    assert first.created
    entry = first.entry
    assert (entry.event_id, entry.user_id, entry.seats, entry.state, entry.position) == (
        event.id,
        "alice",
        2,
        pb.WaitlistEntry.WAITING,
        1,
    )
    assert entry.id and not entry.booking_id and not entry.HasField("offer_time")
    again = await stub.JoinWaitlist(_join(event.id, "alice", 1), timeout=5)
    assert not again.created and again.entry == entry
    assert (await stub.GetEvent(pb.GetEventRequest(event_id=event.id))).waitlist_size == 1
    assert_waitlists_consistent(dsn)


async def test_joining_with_seats_to_book_answers_seats_available(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata, dsn: str
) -> None:
    event = await stub.CreateEvent(
        pb.CreateEventRequest(name="Gig", start_time=START, total_seats=3), metadata=admin_metadata, timeout=5
    )
    call = stub.JoinWaitlist(_join(event.id, "alice", 2), timeout=5)
    metadata = await _fails(call, grpc.StatusCode.FAILED_PRECONDITION, "SEATS_AVAILABLE")
    assert metadata["available_seats"] == "3"
    assert_waitlists_consistent(dsn)


@pytest.mark.parametrize(
    ("user", "seats", "field"), [("", 1, "user_id"), ("alice", 0, "seats"), ("alice", 11, "seats")]
)
async def test_bad_joins_name_the_field_and_write_nothing(
    stub: pb_grpc.EventServiceStub, sold_out: tuple[pb.Event, list[str]], dsn: str, user: str, seats: int, field: str
) -> None:
    event, _ = sold_out
    metadata = await _fails(
        stub.JoinWaitlist(_join(event.id, user, seats), timeout=5), grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID"
    )
    assert metadata["field"] == field
    assert _entries(dsn) == 0


async def test_leaving_and_leaving_a_list_one_is_not_on(
    stub: pb_grpc.EventServiceStub, sold_out: tuple[pb.Event, list[str]]
) -> None:
    event, _ = sold_out
    await stub.JoinWaitlist(_join(event.id, "alice"), timeout=5)
    left = await stub.LeaveWaitlist(pb.LeaveWaitlistRequest(event_id=event.id, user_id="alice"), timeout=5)
    assert (left.state, left.position) == (pb.WaitlistEntry.LEFT, 0)
    assert await stub.LeaveWaitlist(pb.LeaveWaitlistRequest(event_id=event.id, user_id="alice"), timeout=5) == left
    call = stub.LeaveWaitlist(pb.LeaveWaitlistRequest(event_id=event.id, user_id="bob"), timeout=5)
    metadata = await _fails(call, grpc.StatusCode.NOT_FOUND, "WAITLIST_ENTRY_NOT_FOUND")
    assert metadata == {"event_id": event.id, "user_id": "bob"}
    assert (await stub.GetEvent(pb.GetEventRequest(event_id=event.id))).waitlist_size == 0


async def test_seats_given_back_are_offered_followed_and_acknowledged(
    stub: pb_grpc.EventServiceStub, sold_out: tuple[pb.Event, list[str]], dsn: str
) -> None:
    event, bookings = sold_out
    await stub.JoinWaitlist(_join(event.id, "alice", 2), timeout=5)
    await stub.JoinWaitlist(_join(event.id, "bob", 1), timeout=5)
    # One seat back: alice (2) does not fit, bob does. No newcomer gets it meanwhile.
    await stub.ReleaseSeats(pb.ReleaseSeatsRequest(booking_id=bookings[0]), timeout=5)
    offers = await stub.ListWaitlistOffers(pb.ListWaitlistOffersRequest(), timeout=5)
    [offer] = offers.entries
    assert (offer.user_id, offer.state, offer.seats) == ("bob", pb.WaitlistEntry.OFFERED, 1)
    assert offer.booking_id and offer.HasField("offer_time") and not offers.next_page_token
    reservation = await stub.GetReservation(pb.GetReservationRequest(booking_id=offer.booking_id), timeout=5)
    assert (reservation.state, reservation.event_id, reservation.seats) == (pb.Reservation.RESERVED, event.id, 1)
    assert reservation.create_time == offer.offer_time
    acknowledge = pb.AcknowledgeWaitlistOffersRequest(booking_ids=[offer.booking_id])
    assert (await stub.AcknowledgeWaitlistOffers(acknowledge, timeout=5)).acknowledged == 1
    assert (await stub.AcknowledgeWaitlistOffers(acknowledge, timeout=5)).acknowledged == 0
    assert not (await stub.ListWaitlistOffers(pb.ListWaitlistOffersRequest(), timeout=5)).entries
    # The next seat back goes to alice's turn... she needs 2: both seats must be back.
    await stub.ReleaseSeats(pb.ReleaseSeatsRequest(booking_id=offer.booking_id), timeout=5)
    assert not (await stub.ListWaitlistOffers(pb.ListWaitlistOffersRequest(), timeout=5)).entries
    await stub.ReleaseSeats(pb.ReleaseSeatsRequest(booking_id=bookings[1]), timeout=5)
    [alice] = (await stub.ListWaitlistOffers(pb.ListWaitlistOffersRequest(), timeout=5)).entries
    assert (alice.user_id, alice.seats) == ("alice", 2)
    assert_seats_consistent(dsn)
    assert_waitlists_consistent(dsn)


async def test_while_someone_waits_a_new_reservation_is_sold_out_with_the_list_in_its_details(
    stub: pb_grpc.EventServiceStub, sold_out: tuple[pb.Event, list[str]]
) -> None:
    event, bookings = sold_out
    await stub.JoinWaitlist(_join(event.id, "alice", 2), timeout=5)
    await stub.ReleaseSeats(pb.ReleaseSeatsRequest(booking_id=bookings[0]), timeout=5)
    assert (await stub.GetEvent(pb.GetEventRequest(event_id=event.id))).available_seats == 1
    request = pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=event.id, seats=1)
    metadata = await _fails(stub.ReserveSeats(request, timeout=5), grpc.StatusCode.FAILED_PRECONDITION, "SOLD_OUT")
    assert (metadata["available_seats"], metadata["waitlist_size"]) == ("0", "1")
    batch = await stub.ReserveSeatsBatch(
        pb.ReserveSeatsBatchRequest(
            requests=[pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=event.id, seats=1)]
        ),
        timeout=5,
    )
    assert batch.results[0].error.reason == "SOLD_OUT"


async def test_a_users_entries_page_newest_first(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata, sold_out: tuple[pb.Event, list[str]]
) -> None:
    event, _ = sold_out
    other = await stub.CreateEvent(
        pb.CreateEventRequest(name="Other", start_time=START, total_seats=1), metadata=admin_metadata, timeout=5
    )
    await _reserve(stub, other.id)
    await stub.JoinWaitlist(_join(event.id, "alice"), timeout=5)
    await stub.JoinWaitlist(_join(other.id, "alice"), timeout=5)
    first = await stub.ListUserWaitlist(pb.ListUserWaitlistRequest(user_id="alice", page_size=1), timeout=5)
    assert [e.event_id for e in first.entries] == [other.id] and first.next_page_token
    rest = await stub.ListUserWaitlist(
        pb.ListUserWaitlistRequest(user_id="alice", page_size=1, page_token=first.next_page_token), timeout=5
    )
    assert [e.event_id for e in rest.entries] == [event.id] and not rest.next_page_token
    call = stub.ListUserWaitlist(pb.ListUserWaitlistRequest(user_id="alice", page_token="bogus"), timeout=5)
    assert (await _fails(call, grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID"))["field"] == "page_token"


async def test_the_metrics_count_joins_offers_and_leaves(
    stub: pb_grpc.EventServiceStub, sold_out: tuple[pb.Event, list[str]], components: app.Components
) -> None:
    event, bookings = sold_out
    for user in ("alice", "bob", "bob"):
        await stub.JoinWaitlist(_join(event.id, user), timeout=5)
    await stub.ReleaseSeats(pb.ReleaseSeatsRequest(booking_id=bookings[0]), timeout=5)
    for _ in range(2):
        await stub.LeaveWaitlist(pb.LeaveWaitlistRequest(event_id=event.id, user_id="bob"), timeout=5)
    exposition = components.metrics.exposition()
    assert b"waitlist_joins_total 2.0" in exposition
    assert b"waitlist_offers_total 1.0" in exposition
    assert b"waitlist_offered_seats_total 1.0" in exposition
    assert b"waitlist_leaves_total 1.0" in exposition


# --- An event's whole list: admins --------------------------------------------------------------


async def test_an_admin_lists_an_events_list_in_join_order(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata, sold_out: tuple[pb.Event, list[str]]
) -> None:
    event, _ = sold_out
    for user in ("alice", "bob", "carol"):
        await stub.JoinWaitlist(_join(event.id, user), timeout=5)
    await stub.LeaveWaitlist(pb.LeaveWaitlistRequest(event_id=event.id, user_id="bob"), timeout=5)
    request = pb.ListEventWaitlistRequest(event_id=event.id, page_size=2)
    first = await stub.ListEventWaitlist(request, metadata=admin_metadata, timeout=5)
    assert [(e.user_id, e.position) for e in first.entries] == [("alice", 1), ("bob", 0)]
    request.page_token = first.next_page_token
    rest = await stub.ListEventWaitlist(request, metadata=admin_metadata, timeout=5)
    assert [(e.user_id, e.position) for e in rest.entries] == [("carol", 2)] and not rest.next_page_token
    unknown = stub.ListEventWaitlist(pb.ListEventWaitlistRequest(event_id=str(uuid.uuid4())), metadata=admin_metadata)
    await _fails(unknown, grpc.StatusCode.NOT_FOUND, "EVENT_NOT_FOUND")


async def test_an_events_list_is_refused_without_an_admin_token(
    stub: pb_grpc.EventServiceStub, user_token: str, sold_out: tuple[pb.Event, list[str]]
) -> None:
    event, _ = sold_out
    request = pb.ListEventWaitlistRequest(event_id=event.id)
    # The booking service's certificate is no admin either.
    await _fails(stub.ListEventWaitlist(request, timeout=5), grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
    user = (("authorization", f"Bearer {user_token}"),)
    call = stub.ListEventWaitlist(request, metadata=user, timeout=5)
    await _fails(call, grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")


async def test_the_rest_route_lists_an_events_list_for_admins_only(
    client: Client,
    stub: pb_grpc.EventServiceStub,
    sold_out: tuple[pb.Event, list[str]],
    admin_headers: dict[str, str],
    user_token: str,
) -> None:
    event, _ = sold_out
    await stub.JoinWaitlist(_join(event.id, "alice", 2), timeout=5)
    path = f"/events/{event.id}/waitlist"
    assert (await client.get(path)).status_code == 401
    assert (await client.get(path, headers={"Authorization": f"Bearer {user_token}"})).status_code == 403
    response = await client.get(f"{path}?pageSize=10", headers=admin_headers)
    assert response.status_code == 200
    body: dict[str, Any] = await response.get_json()
    [entry] = body["entries"]
    assert (entry["userId"], entry["seats"], entry["state"], entry["position"]) == ("alice", 2, "WAITING", 1)
    assert "nextPageToken" not in body or body["nextPageToken"] == ""
    missing = await client.get(f"/events/{uuid.uuid4()}/waitlist", headers=admin_headers)
    assert missing.status_code == 404


# --- Who may join, leave and follow offers: the booking service only ----------------------------


@pytest.fixture
async def outsider(
    event_env: dict[str, str],
    auth_env: dict[str, str],
    tls_env: dict[str, str],
    tls: DevTls,
    pool: AsyncConnectionPool,
    access: Access,
) -> AsyncIterator[pb_grpc.EventServiceStub]:
    """A verified peer that is not a seat caller: the service trusts only another name in
    SEAT_CALLERS, so the booking service's certificate opens no seat door here."""
    settings = Settings.from_env(Env({**event_env, **auth_env, **tls_env, "SEAT_CALLERS": "reporting-service"}))
    components = app.build(settings, pool, access)
    assert settings.grpc_tls is not None
    port = components.grpc_server.bind("127.0.0.1:0", settings.grpc_tls.credentials())
    await components.grpc_server.start()
    try:
        credentials = client_tls(tls.ca_file, tls.booking_cert, tls.booking_key)
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
            yield pb_grpc.EventServiceStub(channel)
    finally:
        await components.grpc_server.stop(grace=1)


def _entries(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM waitlist_entries").fetchone()
    assert row is not None
    return int(row[0])


def _snapshot(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT id, state, acknowledge_time, update_time FROM waitlist_entries ORDER BY seq"
        ).fetchall()


async def test_waitlist_calls_from_a_peer_that_is_no_seat_caller_are_denied_and_change_nothing(
    stub: pb_grpc.EventServiceStub,
    outsider: pb_grpc.EventServiceStub,
    sold_out: tuple[pb.Event, list[str]],
    admin_metadata: Metadata,
    dsn: str,
) -> None:
    event, bookings = sold_out
    await stub.JoinWaitlist(_join(event.id, "alice"), timeout=5)
    await stub.JoinWaitlist(_join(event.id, "bob"), timeout=5)
    await stub.ReleaseSeats(pb.ReleaseSeatsRequest(booking_id=bookings[0]), timeout=5)
    [offer] = (await stub.ListWaitlistOffers(pb.ListWaitlistOffersRequest(), timeout=5)).entries
    before = _snapshot(dsn)
    calls: dict[str, Any] = {
        "JoinWaitlist": outsider.JoinWaitlist(_join(event.id, "mallory"), metadata=admin_metadata, timeout=5),
        "LeaveWaitlist": outsider.LeaveWaitlist(
            pb.LeaveWaitlistRequest(event_id=event.id, user_id="bob"), metadata=admin_metadata, timeout=5
        ),
        "ListUserWaitlist": outsider.ListUserWaitlist(
            pb.ListUserWaitlistRequest(user_id="alice"), metadata=admin_metadata, timeout=5
        ),
        "ListWaitlistOffers": outsider.ListWaitlistOffers(
            pb.ListWaitlistOffersRequest(), metadata=admin_metadata, timeout=5
        ),
        "AcknowledgeWaitlistOffers": outsider.AcknowledgeWaitlistOffers(
            pb.AcknowledgeWaitlistOffersRequest(booking_ids=[offer.booking_id]), metadata=admin_metadata, timeout=5
        ),
    }
    for name, call in calls.items():
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, (name, refused.value.details())
        info = error_info_of(refused.value)
        assert info is not None and info.reason == "PERMISSION_DENIED", name
    assert _snapshot(dsn) == before
    # An admin's list is a matter of the token, not of the certificate.
    listed = await outsider.ListEventWaitlist(
        pb.ListEventWaitlistRequest(event_id=event.id), metadata=admin_metadata, timeout=5
    )
    assert [e.user_id for e in listed.entries] == ["alice", "bob"]
