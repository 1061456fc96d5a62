"""Who may do what, across both services running as real processes with identity on.

Every REST route and every gRPC method is called with every kind of credential — none, a
malformed one, tokens that must be refused (expired, not yet valid, wrong issuer or audience,
a bad signature, `alg: none`, HMAC signed with the public key, an unknown key id) and valid
tokens of the owner, of another user and of an admin — and answers exactly as the rules say.
Every refused call is checked to have written nothing and taken no seat. Seat calls reach
the event service only over mutual TLS with the booking service's certificate.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import field_mask_pb2, timestamp_pb2

from ticketflow.booking.v1 import booking_service_pb2 as bpb
from ticketflow.booking.v1 import booking_service_pb2_grpc as bpb_grpc
from ticketflow.event.v1 import event_service_pb2 as epb
from ticketflow.event.v1 import event_service_pb2_grpc as epb_grpc
from tools.devkeys.certificates import DevTls, dev_tls
from tools.devkeys.identity import DevIdentity, mint_token
from tools.embedded_postgres.server import free_port
from tools.stack.environment import service_environment
from tools.stack.services import BOOKING, launch
from tools.stack.stack import Stack
from tools.testing.launch import running_stack
from tools.testing.postgres import PostgresServer

# Credentials that must be refused with 401 / UNAUTHENTICATED, by name.
BAD = (
    "none",
    "malformed",
    "expired",
    "not_yet_valid",
    "wrong_issuer",
    "wrong_audience",
    "bad_signature",
    "alg_none",
    "hmac_with_public_key",
    "unknown_kid",
)
GOOD = ("owner", "other", "admin")
ALL = BAD + GOOD


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


@dataclass(frozen=True)
class Credentials:
    """An `Authorization` header value per case (None: no header)."""

    headers: dict[str, str | None]

    @classmethod
    def make(cls, identity: DevIdentity) -> Credentials:
        now = int(time.time())

        def claims(**changes: Any) -> dict[str, Any]:
            base = {"iss": identity.issuer, "aud": identity.audience, "sub": "alice", "iat": now, "exp": now + 600}
            return {**base, **changes}

        def signed(payload: dict[str, Any], key: bytes = identity.private_key_pem, kid: str = identity.kid) -> str:
            return jwt.encode(payload, key, algorithm="ES256", headers={"kid": kid})

        stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public_pem = (
            serialization.load_pem_private_key(identity.private_key_pem, None)
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        tokens: dict[str, str | None] = {
            "none": None,
            "malformed": "Bearer not-a-jwt",
            # Past the services' 30 s leeway on both sides.
            "expired": signed(claims(iat=now - 7200, exp=now - 3600)),
            "not_yet_valid": signed(claims(nbf=now + 3600, exp=now + 7200)),
            "wrong_issuer": signed(claims(iss="https://evil.example/")),
            "wrong_audience": signed(claims(aud="someone-else")),
            "bad_signature": signed(claims(), key=stranger),
            "alg_none": _forged({"alg": "none", "typ": "JWT", "kid": identity.kid}, claims(), None),
            "hmac_with_public_key": _forged({"alg": "HS256", "typ": "JWT", "kid": identity.kid}, claims(), public_pem),
            "unknown_kid": signed(claims(), kid="no-such-key"),
            "owner": mint_token(identity, "alice"),
            "other": mint_token(identity, "bob"),
            "admin": mint_token(identity, "root", admin=True),
        }
        return cls(
            {
                case: token if token is None or token.startswith("Bearer ") else f"Bearer {token}"
                for case, token in tokens.items()
            }
        )

    def rest(self, case: str) -> dict[str, str]:
        value = self.headers[case]
        return {} if value is None else {"Authorization": value}

    def grpc(self, case: str) -> tuple[tuple[str, str], ...]:
        value = self.headers[case]
        return () if value is None else (("authorization", value),)


@pytest.fixture
def stack(postgresql_server: PostgresServer, tmp_path: Path) -> Iterator[Stack]:
    # The booking service logs everything it can (debug, access log): still no credential.
    with running_stack(postgresql_server, tmp_path, LOG_LEVEL="DEBUG", ACCESS_LOG="true") as stack:
        yield stack


@pytest.fixture
def creds(stack: Stack) -> Credentials:
    return Credentials.make(stack.identity)


@pytest.fixture
def tls(stack: Stack) -> DevTls:
    """The stack's dev certificates (its CA, and the booking service's client certificate)."""
    return dev_tls(stack.config.dev_home)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@dataclass(frozen=True)
class Counts:
    events: int
    bookings: int
    reservations: int
    available: int
    # Waiting-list entries by state (a refused join or leave changes none).
    waitlist: tuple[tuple[str, int], ...] = ()


def _counts(stack: Stack) -> Counts:
    with psycopg.connect(stack.event_dsn) as events, psycopg.connect(stack.booking_dsn) as bookings:
        e = events.execute("SELECT count(*), coalesce(sum(available_seats), 0) FROM events").fetchone()
        r = events.execute("SELECT count(*) FROM reservations").fetchone()
        w = events.execute("SELECT state, count(*) FROM waitlist_entries GROUP BY state ORDER BY state").fetchall()
        b = bookings.execute("SELECT count(*) FROM bookings").fetchone()
    assert e is not None and r is not None and b is not None
    waitlist = tuple((state, n) for state, n in w)
    return Counts(events=e[0], bookings=b[0], reservations=r[0], available=int(e[1]), waitlist=waitlist)


def _event_row(stack: Stack, event_id: str) -> tuple[Any, ...]:
    """Everything recorded of an event (a refused change or cancel must leave it as it was)."""
    with psycopg.connect(stack.event_dsn) as conn:
        row = conn.execute(
            "SELECT name, total_seats, state, sales_start_time, update_time FROM events WHERE id = %s", (event_id,)
        ).fetchone()
    assert row is not None
    return tuple(row)


async def _new_event(http: aiohttp.ClientSession, stack: Stack, creds: Credentials, seats: int = 50) -> str:
    body = {"name": "Gig", "startTime": "2027-06-01T20:00:00Z", "totalSeats": seats}
    async with http.post(f"{stack.event_url}/events", json=body, headers=creds.rest("admin")) as response:
        assert response.status == 201, await response.text()
        return str((await response.json())["id"])


async def _alices_booking(
    http: aiohttp.ClientSession, stack: Stack, creds: Credentials, event_id: str, hold: bool = False
) -> str:
    body: dict[str, Any] = {"eventId": event_id, "seats": 1, **({"hold": True} if hold else {})}
    async with http.post(f"{stack.booking_url}/bookings", json=body, headers=creds.rest("owner")) as response:
        assert response.status == 201, await response.text()
        return str((await response.json())["id"])


# The answer of each route per case; every bad credential is 401 unless the route is public.
def _expected(owner: int, other: int, admin: int, public: bool = False) -> dict[str, int]:
    refused = owner if public else 401
    return {**dict.fromkeys(BAD, refused), "owner": owner, "other": other, "admin": admin}


REST_RULES: dict[str, dict[str, int]] = {
    "POST /events": _expected(owner=403, other=403, admin=201),
    "GET /events": _expected(200, 200, 200, public=True),
    "GET /events/{id}": _expected(200, 200, 200, public=True),
    "PATCH /events/{id}": _expected(owner=403, other=403, admin=200),
    # The admin comes last: no case after it books on the cancelled event.
    "POST /events/{id}:cancel": _expected(owner=403, other=403, admin=200),
    # `other` books for alice (userId names her): only an admin may.
    "POST /bookings": _expected(owner=201, other=403, admin=201),
    "GET /bookings/{id}": _expected(owner=200, other=404, admin=200),
    "DELETE /bookings/{id}": _expected(owner=200, other=404, admin=200),
    # Alice's booking is a hold here: her confirm and an admin's confirm it.
    "POST /bookings/{id}:confirm": _expected(owner=200, other=404, admin=200),
    "GET /users/alice/bookings": _expected(owner=200, other=403, admin=200),
    "GET /users/me/bookings": _expected(owner=200, other=200, admin=200),
    # Waiting lists, on a sold-out event. `other` joins (or leaves) for alice: only an admin
    # may; the admin then finds alice's entry there already (200).
    "POST /events/{id}/waitlist": _expected(owner=201, other=403, admin=200),
    # Alice is on the list before the first case; leaving again answers her LEFT entry.
    "DELETE /events/{id}/waitlist?userId=alice": _expected(owner=200, other=403, admin=200),
    "GET /users/alice/waitlist": _expected(owner=200, other=403, admin=200),
    "GET /users/me/waitlist": _expected(owner=200, other=200, admin=200),
    # The event service's view of an event's whole list: admins only.
    "GET /events/{id}/waitlist": _expected(owner=403, other=403, admin=200),
}

# Routes of the booking service under /events (the others under /events are the event service's).
BOOKING_SERVICE_EVENT_ROUTES = {"POST /events/{id}/waitlist", "DELETE /events/{id}/waitlist?userId=alice"}


def _on_waitlist(route: str) -> bool:
    return "/waitlist" in route


async def _sold_out_event(http: aiohttp.ClientSession, stack: Stack, creds: Credentials) -> str:
    """An event of one seat, booked by bob: a waiting list can be joined."""
    event_id = await _new_event(http, stack, creds, seats=1)
    body = {"eventId": event_id, "seats": 1}
    async with http.post(f"{stack.booking_url}/bookings", json=body, headers=creds.rest("other")) as response:
        assert response.status == 201, await response.text()
    return event_id


async def _alice_waits(http: aiohttp.ClientSession, stack: Stack, creds: Credentials, event_id: str) -> None:
    url = f"{stack.booking_url}/events/{event_id}/waitlist"
    async with http.post(url, json={"seats": 1}, headers=creds.rest("owner")) as response:
        assert response.status == 201, await response.text()


@pytest.mark.parametrize("route", list(REST_RULES))
async def test_every_rest_route_answers_each_credential_as_the_rules_say(
    http: aiohttp.ClientSession, stack: Stack, creds: Credentials, route: str
) -> None:
    waitlist = _on_waitlist(route)
    event_id = await (_sold_out_event(http, stack, creds) if waitlist else _new_event(http, stack, creds))
    if route.startswith("DELETE /events/{id}/waitlist"):
        await _alice_waits(http, stack, creds, event_id)
    assert ALL[-1] == "admin"
    for case in ALL:
        booking_id = "" if waitlist else await _alices_booking(http, stack, creds, event_id, route.endswith(":confirm"))
        before, event_before = _counts(stack), _event_row(stack, event_id)
        method, path = route.split(" ")
        on_events = "/events" in path and route not in BOOKING_SERVICE_EVENT_ROUTES
        url = (stack.event_url if on_events else stack.booking_url) + path.replace(
            "{id}", event_id if "/events" in path else booking_id
        )
        body: dict[str, Any] | None = None
        if route == "POST /events/{id}/waitlist":
            body = {"userId": "alice", "seats": 1}
        elif route == "POST /events":
            body = {"name": "Another", "startTime": "2027-06-02T20:00:00Z", "totalSeats": 5}
        elif route == "POST /bookings":
            body = {"eventId": event_id, "userId": "alice", "seats": 1}
        elif route == "PATCH /events/{id}":
            body = {"name": f"Renamed by {case}", "totalSeats": 60}
        elif route.endswith(":cancel") or route.endswith(":confirm"):
            body = {}
        async with http.request(method, url, json=body, headers=creds.rest(case)) as response:
            status, text = response.status, await response.text()
            challenge = response.headers.get("WWW-Authenticate")
        assert status == REST_RULES[route][case], f"{route} with {case}: {status} {text}"
        if status == 401:
            assert challenge is not None and challenge.startswith('Bearer realm="ticketflow"'), challenge
            assert ('error="invalid_token"' in challenge) == (case != "none"), challenge
            # The error body names the problem and never echoes the credential.
            assert json.loads(text)["details"][0]["reason"] == "UNAUTHENTICATED"
        header = creds.headers[case]
        if header is not None:
            assert header.removeprefix("Bearer ") not in text
        if status >= 400:
            assert _counts(stack) == before, f"{route} with {case} wrote something"
            assert _event_row(stack, event_id) == event_before, f"{route} with {case} changed the event"
    # No credential, good or bad, shows up in either service's log.
    logs = stack.logs()
    for header in creds.headers.values():
        if header is not None:
            assert header.removeprefix("Bearer ") not in logs


# gRPC: the booking service's methods, and the event service's over its mutual-TLS port.
def _codes(owner: grpc.StatusCode, other: grpc.StatusCode, admin: grpc.StatusCode) -> dict[str, grpc.StatusCode]:
    return {**dict.fromkeys(BAD, grpc.StatusCode.UNAUTHENTICATED), "owner": owner, "other": other, "admin": admin}


OK, DENIED, NOT_FOUND = grpc.StatusCode.OK, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND
GRPC_RULES: dict[str, dict[str, grpc.StatusCode]] = {
    "CreateBooking": _codes(OK, DENIED, OK),
    "GetBooking": _codes(OK, NOT_FOUND, OK),
    "ListUserBookings": _codes(OK, DENIED, OK),
    "CancelBooking": _codes(OK, NOT_FOUND, OK),
    "ConfirmBooking": _codes(OK, NOT_FOUND, OK),
    "CreateEvent": _codes(DENIED, DENIED, OK),
    "GetEvent": dict.fromkeys(ALL, OK),
    "ListEvents": dict.fromkeys(ALL, OK),
    "UpdateEvent": _codes(DENIED, DENIED, OK),
    # The admin comes last: no case after it books on the cancelled event.
    "CancelEvent": _codes(DENIED, DENIED, OK),
    # On a sold-out event, for alice (the admin finds her entry there already: OK).
    "JoinWaitlist": _codes(OK, DENIED, OK),
    # Alice is on the list before the first case.
    "LeaveWaitlist": _codes(OK, DENIED, OK),
    "ListUserWaitlist": _codes(OK, DENIED, OK),
    "ListEventWaitlist": _codes(DENIED, DENIED, OK),
}


def _booking_service_channel(stack: Stack) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(stack.booking.grpc_address)


def _event_service_channel(stack: Stack, tls: DevTls, client_cert: bool = True) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca_file.read_bytes(),
        private_key=tls.booking_key.read_bytes() if client_cert else None,
        certificate_chain=tls.booking_cert.read_bytes() if client_cert else None,
    )
    return grpc.aio.secure_channel(stack.event.grpc_address, credentials)


@pytest.mark.parametrize("method", list(GRPC_RULES))
async def test_every_grpc_method_answers_each_credential_as_the_rules_say(
    http: aiohttp.ClientSession, stack: Stack, creds: Credentials, tls: DevTls, method: str
) -> None:
    waitlist = "Waitlist" in method
    event_id = await (_sold_out_event(http, stack, creds) if waitlist else _new_event(http, stack, creds))
    if method == "LeaveWaitlist":
        await _alice_waits(http, stack, creds, event_id)
    calls: dict[str, Callable[[tuple[tuple[str, str], ...], str], Awaitable[Any]]]
    async with _booking_service_channel(stack) as bookings, _event_service_channel(stack, tls) as events:
        booking_stub, event_stub = bpb_grpc.BookingServiceStub(bookings), epb_grpc.EventServiceStub(events)
        calls = {
            "CreateBooking": lambda md, _: booking_stub.CreateBooking(
                bpb.CreateBookingRequest(event_id=event_id, user_id="alice", seats=1), metadata=md, timeout=10
            ),
            "GetBooking": lambda md, b: booking_stub.GetBooking(
                bpb.GetBookingRequest(booking_id=b), metadata=md, timeout=10
            ),
            "ListUserBookings": lambda md, _: booking_stub.ListUserBookings(
                bpb.ListUserBookingsRequest(user_id="alice"), metadata=md, timeout=10
            ),
            "CancelBooking": lambda md, b: booking_stub.CancelBooking(
                bpb.CancelBookingRequest(booking_id=b), metadata=md, timeout=10
            ),
            "ConfirmBooking": lambda md, b: booking_stub.ConfirmBooking(
                bpb.ConfirmBookingRequest(booking_id=b), metadata=md, timeout=10
            ),
            "UpdateEvent": lambda md, _: event_stub.UpdateEvent(
                epb.UpdateEventRequest(
                    event=epb.Event(id=event_id, name="Renamed"),
                    update_mask=field_mask_pb2.FieldMask(paths=["name"]),
                ),
                metadata=md,
                timeout=10,
            ),
            "CancelEvent": lambda md, _: event_stub.CancelEvent(
                epb.CancelEventRequest(event_id=event_id), metadata=md, timeout=10
            ),
            "CreateEvent": lambda md, _: event_stub.CreateEvent(
                epb.CreateEventRequest(
                    name="Gig", start_time=timestamp_pb2.Timestamp(seconds=1_830_000_000), total_seats=5
                ),
                metadata=md,
                timeout=10,
            ),
            "GetEvent": lambda md, _: event_stub.GetEvent(
                epb.GetEventRequest(event_id=event_id), metadata=md, timeout=10
            ),
            "ListEvents": lambda md, _: event_stub.ListEvents(epb.ListEventsRequest(), metadata=md, timeout=10),
            "JoinWaitlist": lambda md, _: booking_stub.JoinWaitlist(
                bpb.JoinWaitlistRequest(event_id=event_id, user_id="alice", seats=1), metadata=md, timeout=10
            ),
            "LeaveWaitlist": lambda md, _: booking_stub.LeaveWaitlist(
                bpb.LeaveWaitlistRequest(event_id=event_id, user_id="alice"), metadata=md, timeout=10
            ),
            "ListUserWaitlist": lambda md, _: booking_stub.ListUserWaitlist(
                bpb.ListUserWaitlistRequest(user_id="alice"), metadata=md, timeout=10
            ),
            "ListEventWaitlist": lambda md, _: event_stub.ListEventWaitlist(
                epb.ListEventWaitlistRequest(event_id=event_id), metadata=md, timeout=10
            ),
        }
        for case in ALL:
            booking_id = (
                "" if waitlist else await _alices_booking(http, stack, creds, event_id, method == "ConfirmBooking")
            )
            before, event_before = _counts(stack), _event_row(stack, event_id)
            try:
                await calls[method](creds.grpc(case), booking_id)
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as error:
                code = error.code()
                header = creds.headers[case]
                if header is not None:
                    assert header.removeprefix("Bearer ") not in (error.details() or "")
            assert code == GRPC_RULES[method][case], f"{method} with {case}: {code}"
            if code != grpc.StatusCode.OK:
                assert _counts(stack) == before, f"{method} with {case} wrote something"
                assert _event_row(stack, event_id) == event_before, f"{method} with {case} changed the event"


SEAT_CALLS: dict[str, Callable[[epb_grpc.EventServiceStub, str, str], Awaitable[Any]]] = {
    "ReserveSeats": lambda stub, event, booking: stub.ReserveSeats(
        epb.ReserveSeatsRequest(booking_id=booking, event_id=event, seats=2), timeout=5
    ),
    "ReserveSeatsBatch": lambda stub, event, booking: stub.ReserveSeatsBatch(
        epb.ReserveSeatsBatchRequest(requests=[epb.ReserveSeatsRequest(booking_id=booking, event_id=event, seats=2)]),
        timeout=5,
    ),
    "ReleaseSeats": lambda stub, event, booking: stub.ReleaseSeats(
        epb.ReleaseSeatsRequest(booking_id=booking), timeout=5
    ),
    "GetReservation": lambda stub, event, booking: stub.GetReservation(
        epb.GetReservationRequest(booking_id=booking), timeout=5
    ),
    # What the booking service follows to cancel bookings: for seat callers only, too.
    "ListCancelledEvents": lambda stub, event, booking: stub.ListCancelledEvents(
        epb.ListCancelledEventsRequest(), timeout=5
    ),
    # Waiting lists: joining for someone, and taking or confirming offers, are seat calls.
    "JoinWaitlist": lambda stub, event, booking: stub.JoinWaitlist(
        epb.JoinWaitlistRequest(event_id=event, user_id="mallory", seats=1), timeout=5
    ),
    "LeaveWaitlist": lambda stub, event, booking: stub.LeaveWaitlist(
        epb.LeaveWaitlistRequest(event_id=event, user_id="alice"), timeout=5
    ),
    "ListUserWaitlist": lambda stub, event, booking: stub.ListUserWaitlist(
        epb.ListUserWaitlistRequest(user_id="alice"), timeout=5
    ),
    "ListWaitlistOffers": lambda stub, event, booking: stub.ListWaitlistOffers(
        epb.ListWaitlistOffersRequest(), timeout=5
    ),
    "AcknowledgeWaitlistOffers": lambda stub, event, booking: stub.AcknowledgeWaitlistOffers(
        epb.AcknowledgeWaitlistOffersRequest(booking_ids=[booking]), timeout=5
    ),
}


@pytest.mark.parametrize("method", list(SEAT_CALLS))
async def test_an_outside_client_cannot_take_or_give_back_seats(
    http: aiohttp.ClientSession, stack: Stack, creds: Credentials, tls: DevTls, method: str
) -> None:
    event_id = await _new_event(http, stack, creds, seats=10)
    booking_id = await _alices_booking(http, stack, creds, event_id)
    before = _counts(stack)
    outsiders = {
        "plaintext": grpc.aio.insecure_channel(stack.event.grpc_address),
        "tls without a client certificate": _event_service_channel(stack, tls, client_cert=False),
    }
    for name, channel in outsiders.items():
        async with channel:
            stub = epb_grpc.EventServiceStub(channel)
            # Even with an admin's token: tokens are for users, seats are for the booking service.
            for target in (booking_id, str(uuid.uuid4())):
                with pytest.raises(grpc.aio.AioRpcError) as error:
                    await SEAT_CALLS[method](stub, event_id, target)
                assert error.value.code() == grpc.StatusCode.UNAVAILABLE, f"{name}: {error.value.code()}"
    assert _counts(stack) == before
    # The booking service's own certificate is let in: a cancel releases the seat through it.
    async with http.delete(f"{stack.booking_url}/bookings/{booking_id}", headers=creds.rest("owner")) as response:
        assert response.status == 200
        assert (await response.json())["status"] == "CANCELLED"
    assert _counts(stack).available == before.available + 1


async def test_two_booking_processes_never_let_one_user_past_the_cap(
    http: aiohttp.ClientSession, stack: Stack, creds: Credentials
) -> None:
    """50 concurrent single-seat bookings by one user, spread over two booking_service
    processes sharing the database, against the default cap of 20 seats per user and event."""
    event_id = await _new_event(http, stack, creds, seats=500)
    http_port, grpc_port = free_port(), free_port()
    assert stack.database is not None
    second = launch(
        BOOKING,
        service_environment(
            BOOKING, stack.config, stack.database, {"HTTP_PORT": str(http_port), "GRPC_PORT": str(grpc_port)}
        ),
        stack.output,
        host=stack.config.host,
        http_port=http_port,
        grpc_port=grpc_port,
        database=stack.config.booking_db,
    )
    try:
        second.wait_ready("/readyz", timeout=30)
        urls = [stack.booking_url, second.http_url]

        async def book(n: int) -> int:
            body = {"eventId": event_id, "seats": 1}
            async with http.post(f"{urls[n % 2]}/bookings", json=body, headers=creds.rest("owner")) as response:
                if response.status == 409:
                    assert (await response.json())["details"][0]["reason"] == "USER_LIMIT_REACHED"
                return response.status

        statuses = await asyncio.gather(*(book(n) for n in range(50)))
    finally:
        second.child.stop(10)
    assert statuses.count(201) == 20 and statuses.count(409) == 30
    counts = _counts(stack)
    assert counts.available == 500 - 20
    with psycopg.connect(stack.booking_dsn) as conn:
        held = conn.execute(
            "SELECT coalesce(sum(seats), 0) FROM bookings WHERE user_id = 'alice' AND status = 'CONFIRMED'"
        ).fetchone()
    assert held == (20,)
