"""The gRPC API over real channels: every RPC, its error codes and details, health, reflection,
and who may call what: events are created with an admin token, seats are taken and given back
only by a peer with the booking service's client certificate (mutual TLS, SEAT_CALLERS)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from psycopg_pool import AsyncConnectionPool

from event_service import app
from event_service.config import Settings
from service_runtime.auth import testkeys
from service_runtime.auth.access import Access
from service_runtime.config import Env
from service_runtime.error_table import error_info_of
from ticketflow.event.v1 import event_service_pb2 as pb
from ticketflow.event.v1 import event_service_pb2_grpc as pb_grpc
from tools.audit.invariants import assert_seats_consistent
from tools.devkeys import DevTls, dev_tls

START = timestamp_pb2.Timestamp(seconds=1_830_000_000)
Metadata = tuple[tuple[str, str], ...]
OpenChannel = Callable[[grpc.ChannelCredentials | None], grpc.aio.Channel]


async def _event(stub: pb_grpc.EventServiceStub, admin: Metadata, seats: int) -> pb.Event:
    event: pb.Event = await stub.CreateEvent(
        pb.CreateEventRequest(name="Gig", start_time=START, total_seats=seats), metadata=admin, timeout=5
    )
    return event


async def _fails(call: object, code: grpc.StatusCode, reason: str) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call  # type: ignore[misc]
    assert error.value.code() == code, error.value.details()
    info = error_info_of(error.value)
    assert info is not None and info.reason == reason and info.domain == "event.ticketflow"
    return dict(info.metadata)


async def test_created_event_is_returned_by_get_and_list(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata
) -> None:
    created = await _event(stub, admin_metadata, 30)
    assert created.available_seats == 30 and created.start_time == START
    assert await stub.GetEvent(pb.GetEventRequest(event_id=created.id)) == created
    listed = await stub.ListEvents(pb.ListEventsRequest())
    assert list(listed.events) == [created] and listed.total_size == 1 and not listed.next_page_token


async def test_list_pages_follow_the_token(stub: pb_grpc.EventServiceStub, admin_metadata: Metadata) -> None:
    created = {(await _event(stub, admin_metadata, 5)).id for _ in range(5)}
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
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata, dsn: str
) -> None:
    event = await _event(stub, admin_metadata, 50)

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


async def test_sold_out_is_a_distinct_machine_readable_error(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata
) -> None:
    event = await _event(stub, admin_metadata, 2)
    request = pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=event.id, seats=3)
    metadata = await _fails(stub.ReserveSeats(request), grpc.StatusCode.FAILED_PRECONDITION, "SOLD_OUT")
    assert metadata["available_seats"] == "2" and metadata["requested_seats"] == "3"
    # A replay of the refused booking is refused the same way.
    await _fails(stub.ReserveSeats(request), grpc.StatusCode.FAILED_PRECONDITION, "SOLD_OUT")


async def test_replays_of_reserve_and_release_change_nothing(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata, dsn: str
) -> None:
    event = await _event(stub, admin_metadata, 10)
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


async def test_release_before_reserve_blocks_the_late_reserve(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata
) -> None:
    event = await _event(stub, admin_metadata, 10)
    booking = str(uuid.uuid4())
    marker = await stub.ReleaseSeats(pb.ReleaseSeatsRequest(booking_id=booking))
    assert (marker.state, marker.seats, marker.event_id) == (pb.Reservation.RELEASED, 0, "")
    late = stub.ReserveSeats(pb.ReserveSeatsRequest(booking_id=booking, event_id=event.id, seats=1))
    await _fails(late, grpc.StatusCode.FAILED_PRECONDITION, "RESERVATION_RELEASED")
    assert (await stub.GetEvent(pb.GetEventRequest(event_id=event.id))).available_seats == 10


async def test_get_reservation_reports_the_record(stub: pb_grpc.EventServiceStub, admin_metadata: Metadata) -> None:
    event = await _event(stub, admin_metadata, 10)
    booking = str(uuid.uuid4())
    await _fails(
        stub.GetReservation(pb.GetReservationRequest(booking_id=booking)),
        grpc.StatusCode.NOT_FOUND,
        "RESERVATION_NOT_FOUND",
    )
    reserved = await stub.ReserveSeats(pb.ReserveSeatsRequest(booking_id=booking, event_id=event.id, seats=2))
    assert await stub.GetReservation(pb.GetReservationRequest(booking_id=booking)) == reserved


async def test_a_booking_id_reused_for_other_seats_is_refused(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata
) -> None:
    event = await _event(stub, admin_metadata, 10)
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
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata, dsn: str, request_: pb.CreateEventRequest, field: str
) -> None:
    metadata = await _fails(
        stub.CreateEvent(request_, metadata=admin_metadata), grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID"
    )
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


async def test_a_batch_answers_each_reservation_as_its_own_call_would(
    stub: pb_grpc.EventServiceStub, admin_metadata: Metadata, dsn: str
) -> None:
    event = await _event(stub, admin_metadata, 3)
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


# --- Who may create events -------------------------------------------------------------------


def _bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def _count(dsn: str, table: str) -> int:
    """Rows in `table` (one of this test file's own fixed names)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


CREATE = pb.CreateEventRequest(name="Gig", start_time=START, total_seats=5)


async def test_creating_an_event_without_a_token_is_unauthenticated_and_writes_nothing(
    stub: pb_grpc.EventServiceStub, dsn: str
) -> None:
    metadata = await _fails(stub.CreateEvent(CREATE), grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
    assert metadata["cause"] == "TOKEN_MISSING"
    assert _count(dsn, "events") == 0


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda key: "not-a-jwt", id="malformed"),
        pytest.param(
            lambda key: testkeys.sign(key, testkeys.claims(sub="root", roles=["admin"], exp=int(time.time()) - 3600)),
            id="expired",
        ),
        pytest.param(
            lambda key: testkeys.sign(testkeys.signing_key(key.kid), testkeys.claims(sub="root", roles=["admin"])),
            id="bad_signature",
        ),
        pytest.param(
            lambda key: testkeys.sign(key, testkeys.claims(sub="root", roles=["admin"], aud="another-service")),
            id="wrong_audience",
        ),
    ],
)
async def test_creating_an_event_with_a_bad_token_is_unauthenticated_and_writes_nothing(
    stub: pb_grpc.EventServiceStub, dsn: str, signing_key: testkeys.SigningKey, token: Callable[[Any], str]
) -> None:
    call = stub.CreateEvent(CREATE, metadata=_bearer(token(signing_key)))
    await _fails(call, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
    assert _count(dsn, "events") == 0


async def test_a_user_token_cannot_create_events_and_writes_nothing(
    stub: pb_grpc.EventServiceStub, dsn: str, user_token: str
) -> None:
    call = stub.CreateEvent(CREATE, metadata=_bearer(user_token))
    await _fails(call, grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")
    assert _count(dsn, "events") == 0


async def test_an_admin_token_creates_the_event(stub: pb_grpc.EventServiceStub, dsn: str, admin_token: str) -> None:
    created = await stub.CreateEvent(CREATE, metadata=_bearer(admin_token), timeout=5)
    assert created.total_seats == 5
    assert _count(dsn, "events") == 1


async def test_reading_events_needs_no_token(stub: pb_grpc.EventServiceStub, admin_metadata: Metadata) -> None:
    created = await _event(stub, admin_metadata, 5)
    assert await stub.GetEvent(pb.GetEventRequest(event_id=created.id)) == created
    assert list((await stub.ListEvents(pb.ListEventsRequest())).events) == [created]


# --- Who may take and give back seats ----------------------------------------------------------


def _client_certificate(tls: DevTls, name: str, directory: Path) -> tuple[Path, Path]:
    """A client certificate for `name` issued by the dev CA itself (the way
    tools/devkeys/certificates.py issues the booking service's), and its key."""
    ca = x509.load_pem_x509_certificate(tls.ca_file.read_bytes())
    ca_key = serialization.load_pem_private_key((tls.ca_file.parent / "ca-key.pem").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def _credentials(ca_file: Path, cert: Path | None = None, key: Path | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=ca_file.read_bytes(),
        private_key=None if key is None else key.read_bytes(),
        certificate_chain=None if cert is None else cert.read_bytes(),
    )


def _plaintext(tls: DevTls, directory: Path) -> grpc.ChannelCredentials | None:
    return None


def _tls_without_a_client_certificate(tls: DevTls, directory: Path) -> grpc.ChannelCredentials | None:
    return _credentials(tls.ca_file)


def _booking_service_certificate_of_another_ca(tls: DevTls, directory: Path) -> grpc.ChannelCredentials | None:
    stranger = dev_tls(directory / "elsewhere")  # same name, booking-service, but another CA
    return _credentials(tls.ca_file, stranger.booking_cert, stranger.booking_key)


def _certificate_of_an_unlisted_service(tls: DevTls, directory: Path) -> grpc.ChannelCredentials | None:
    return _credentials(tls.ca_file, *_client_certificate(tls, "reporting-service", directory))


# Outsiders refused at the TLS handshake: the call never reaches the service.
HANDSHAKE_REFUSED = [_plaintext, _tls_without_a_client_certificate, _booking_service_certificate_of_another_ca]


@pytest.fixture
async def held(stub: pb_grpc.EventServiceStub, admin_metadata: Metadata) -> tuple[pb.Event, str]:
    """An event of 10 seats of which the booking service holds 2 for one booking."""
    event = await _event(stub, admin_metadata, 10)
    booking = str(uuid.uuid4())
    await stub.ReserveSeats(pb.ReserveSeatsRequest(booking_id=booking, event_id=event.id, seats=2), timeout=5)
    return event, booking


def _seat_calls(stub: pb_grpc.EventServiceStub, event_id: str, booking: str, metadata: Metadata) -> dict[str, Any]:
    """Every seat RPC, as an outsider would try it: take seats, give back the held ones, a
    release of an unused booking id (which would leave a record of its own), and the list of
    cancelled events, which only the booking service may follow."""
    fresh = str(uuid.uuid4())
    return {
        "ReserveSeats": stub.ReserveSeats(
            pb.ReserveSeatsRequest(booking_id=fresh, event_id=event_id, seats=3), metadata=metadata, timeout=5
        ),
        "ReserveSeatsBatch": stub.ReserveSeatsBatch(
            pb.ReserveSeatsBatchRequest(
                requests=[pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=event_id, seats=1)]
            ),
            metadata=metadata,
            timeout=5,
        ),
        "ReleaseSeats": stub.ReleaseSeats(pb.ReleaseSeatsRequest(booking_id=booking), metadata=metadata, timeout=5),
        "ReleaseSeats(unused id)": stub.ReleaseSeats(
            pb.ReleaseSeatsRequest(booking_id=str(uuid.uuid4())), metadata=metadata, timeout=5
        ),
        "GetReservation": stub.GetReservation(
            pb.GetReservationRequest(booking_id=booking), metadata=metadata, timeout=5
        ),
        "ListCancelledEvents": stub.ListCancelledEvents(pb.ListCancelledEventsRequest(), metadata=metadata, timeout=5),
    }


def _assert_only_the_held_seats(dsn: str, event: pb.Event, booking: str) -> None:
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT available_seats FROM events WHERE id = %s", (event.id,)).fetchone() == (8,)
        rows = conn.execute("SELECT booking_id::text, event_id::text, seats, state FROM reservations").fetchall()
    assert rows == [(booking, event.id, 2, "RESERVED")]
    assert_seats_consistent(dsn)


@pytest.mark.parametrize("outsider", HANDSHAKE_REFUSED, ids=lambda way: way.__name__.lstrip("_"))
async def test_seat_calls_from_an_outsider_are_refused_at_the_handshake_and_change_nothing(
    open_channel: OpenChannel,
    tls: DevTls,
    tmp_path: Path,
    dsn: str,
    held: tuple[pb.Event, str],
    admin_metadata: Metadata,
    outsider: Callable[[DevTls, Path], grpc.ChannelCredentials | None],
) -> None:
    event, booking = held
    stranger = pb_grpc.EventServiceStub(open_channel(outsider(tls, tmp_path)))
    # Even an admin's token opens no door a certificate keeps shut.
    for name, call in _seat_calls(stranger, event.id, booking, admin_metadata).items():
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, (name, refused.value.details())
    with pytest.raises(grpc.aio.AioRpcError) as no_connection:
        await stranger.GetEvent(pb.GetEventRequest(event_id=event.id), timeout=5)
    assert no_connection.value.code() == grpc.StatusCode.UNAVAILABLE
    _assert_only_the_held_seats(dsn, event, booking)


@pytest.mark.parametrize("with_admin_token", [False, True], ids=["no_token", "admin_token"])
async def test_seat_calls_with_a_certificate_not_in_seat_callers_are_permission_denied_and_change_nothing(
    open_channel: OpenChannel,
    tls: DevTls,
    tmp_path: Path,
    dsn: str,
    held: tuple[pb.Event, str],
    admin_metadata: Metadata,
    with_admin_token: bool,
) -> None:
    event, booking = held
    stranger = pb_grpc.EventServiceStub(open_channel(_certificate_of_an_unlisted_service(tls, tmp_path)))
    metadata = admin_metadata if with_admin_token else ()
    for name, call in _seat_calls(stranger, event.id, booking, metadata).items():
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, (name, refused.value.details())
        info = error_info_of(refused.value)
        assert info is not None and info.reason == "PERMISSION_DENIED", name
    # The connection itself is fine: the public reads answer on it.
    assert (await stranger.GetEvent(pb.GetEventRequest(event_id=event.id), timeout=5)).available_seats == 8
    _assert_only_the_held_seats(dsn, event, booking)


async def test_the_booking_service_certificate_may_give_seats_back(
    stub: pb_grpc.EventServiceStub, held: tuple[pb.Event, str]
) -> None:
    event, booking = held
    released = await stub.ReleaseSeats(pb.ReleaseSeatsRequest(booking_id=booking), timeout=5)
    assert released.state == pb.Reservation.RELEASED
    assert (await stub.GetEvent(pb.GetEventRequest(event_id=event.id))).available_seats == 10


@pytest.fixture
async def plaintext_stub(
    event_env: dict[str, str], auth_env: dict[str, str], pool: AsyncConnectionPool, access: Access
) -> AsyncIterator[pb_grpc.EventServiceStub]:
    """The service with no GRPC_TLS_* settings: a plaintext gRPC port, so no caller has a
    certificate to show."""
    settings = Settings.from_env(Env({**event_env, **auth_env}))
    assert settings.grpc_tls is None
    components = app.build(settings, pool, access)
    port = components.grpc_server.bind("127.0.0.1:0")
    await components.grpc_server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield pb_grpc.EventServiceStub(channel)
    finally:
        await components.grpc_server.stop(grace=1)


async def test_a_plaintext_server_refuses_every_seat_call_but_serves_events(
    plaintext_stub: pb_grpc.EventServiceStub, admin_metadata: Metadata, dsn: str
) -> None:
    event = await _event(plaintext_stub, admin_metadata, 10)
    for name, call in _seat_calls(plaintext_stub, event.id, str(uuid.uuid4()), admin_metadata).items():
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, (name, refused.value.details())
        info = error_info_of(refused.value)
        assert info is not None and info.reason == "PERMISSION_DENIED", name
    assert await plaintext_stub.GetEvent(pb.GetEventRequest(event_id=event.id), timeout=5) == event
    assert _count(dsn, "reservations") == 0
    assert event.available_seats == 10
    assert (await plaintext_stub.GetEvent(pb.GetEventRequest(event_id=event.id))).available_seats == 10
