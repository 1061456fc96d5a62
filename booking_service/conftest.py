"""Fixtures of the booking service's tests: a fresh migrated database per test, and the
service built on it with identity on, reachable through Quart's test client and a real gRPC
channel, in front of a stand-in event service over a real gRPC channel (`StandInEvents`, whose
waiting lists are those of `fakes.FakeSeats`).

Tokens are signed with a test key whose JWKS file the service loads (AUTH_JWKS_FILE), as it
would an identity provider's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from psycopg_pool import AsyncConnectionPool
from quart.typing import TestClientProtocol

from booking_service import app
from booking_service.config import Settings
from booking_service.domain import SeatsUnavailable
from booking_service.event_client import EventClient
from booking_service.fakes import FakeSeats
from booking_service.repository import BookingRepository
from booking_service.waitlist import EventRefusal, WaitlistEntry
from service_runtime.auth import testkeys
from service_runtime.auth.access import Access
from service_runtime.config import Env
from service_runtime.protojson import timestamp
from ticketflow.event.v1 import event_service_pb2 as event_pb
from ticketflow.event.v1 import event_service_pb2_grpc as event_pb_grpc
from tools.testing.postgres import PostgresServer, migrated_template, pool_for


@pytest.fixture(scope="session")
def booking_db_template(postgresql_server: PostgresServer) -> Iterator[str]:
    with migrated_template(postgresql_server, "booking_service") as name:
        yield name


@pytest.fixture
def booking_db(postgresql_server: PostgresServer, booking_db_template: str) -> Iterator[str]:
    with postgresql_server.database(booking_db_template, prefix="bookings") as name:
        yield name


@pytest.fixture
def dsn(postgresql_server: PostgresServer, booking_db: str) -> str:
    return postgresql_server.dsn(booking_db)


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    async with pool_for(dsn) as pool:
        yield pool


@pytest.fixture
def repo(pool: AsyncConnectionPool) -> BookingRepository:
    return BookingRepository(pool)


T = TypeVar("T")

_REFUSAL_CODES = {
    "EVENT_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "WAITLIST_ENTRY_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "FIELD_INVALID": grpc.StatusCode.INVALID_ARGUMENT,
    "PERMISSION_DENIED": grpc.StatusCode.PERMISSION_DENIED,
}


class StandInEvents(event_pb_grpc.EventServiceServicer):
    """The event service's seat calls, in memory: every reservation fits; a released id stays
    released; the events in `cancelled` are listed as cancelled (on one page). Its waiting
    lists are `waitlists`' (a FakeSeats: give an event seats there, 0 for a sold-out one);
    `refuse_next` makes the next waiting-list call fail with that refusal."""

    def __init__(self) -> None:
        self.records: dict[str, event_pb.Reservation] = {}
        self.cancelled: list[event_pb.Event] = []
        self.waitlists = FakeSeats({})
        self.refuse_next: EventRefusal | None = None

    async def _waitlist(self, context: grpc.aio.ServicerContext[Any, Any], call: Callable[[], Awaitable[T]]) -> T:
        refusal, self.refuse_next = self.refuse_next, None
        try:
            if refusal is not None:
                raise refusal
            return await call()
        except SeatsUnavailable:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        except EventRefusal as error:
            info = error_details_pb2.ErrorInfo(reason=error.reason, domain="event.ticketflow", metadata=error.metadata)
            detail = any_pb2.Any()
            detail.Pack(info)
            code = _REFUSAL_CODES.get(error.reason, grpc.StatusCode.FAILED_PRECONDITION)
            status = status_pb2.Status(code=code.value[0], message=error.message, details=[detail])
            await context.abort_with_status(rpc_status.to_status(status))
        raise AssertionError("unreachable")

    async def JoinWaitlist(
        self, request: event_pb.JoinWaitlistRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> event_pb.JoinWaitlistResponse:
        joined = await self._waitlist(
            context, lambda: self.waitlists.join_waitlist(uuid.UUID(request.event_id), request.user_id, request.seats)
        )
        return event_pb.JoinWaitlistResponse(entry=entry_message(joined.entry), created=joined.created)

    async def LeaveWaitlist(
        self, request: event_pb.LeaveWaitlistRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> event_pb.WaitlistEntry:
        entry = await self._waitlist(
            context, lambda: self.waitlists.leave_waitlist(uuid.UUID(request.event_id), request.user_id)
        )
        return entry_message(entry)

    async def ListUserWaitlist(
        self, request: event_pb.ListUserWaitlistRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> event_pb.ListWaitlistResponse:
        page = await self._waitlist(
            context, lambda: self.waitlists.user_waitlist(request.user_id, request.page_size, request.page_token)
        )
        return event_pb.ListWaitlistResponse(
            entries=[entry_message(e) for e in page.entries], next_page_token=page.next_page_token
        )

    async def ListWaitlistOffers(
        self, request: event_pb.ListWaitlistOffersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> event_pb.ListWaitlistResponse:
        offers = await self._waitlist(context, lambda: self.waitlists.waitlist_offers(request.page_size or 100))
        return event_pb.ListWaitlistResponse(entries=[entry_message(e) for e in offers])

    async def AcknowledgeWaitlistOffers(
        self, request: event_pb.AcknowledgeWaitlistOffersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> event_pb.AcknowledgeWaitlistOffersResponse:
        ids = [uuid.UUID(b) for b in request.booking_ids]
        acknowledged = await self._waitlist(context, lambda: self.waitlists.acknowledge_offers(ids))
        return event_pb.AcknowledgeWaitlistOffersResponse(acknowledged=acknowledged)

    async def ReserveSeatsBatch(
        self, request: event_pb.ReserveSeatsBatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> event_pb.ReserveSeatsBatchResponse:
        results = []
        for r in request.requests:
            record = self.records.setdefault(
                r.booking_id,
                event_pb.Reservation(
                    booking_id=r.booking_id, event_id=r.event_id, seats=r.seats, state=event_pb.Reservation.RESERVED
                ),
            )
            results.append(event_pb.ReserveSeatsResult(reservation=record))
        return event_pb.ReserveSeatsBatchResponse(results=results)

    async def ReleaseSeats(
        self, request: event_pb.ReleaseSeatsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> event_pb.Reservation:
        record = self.records.setdefault(request.booking_id, event_pb.Reservation(booking_id=request.booking_id))
        record.state = event_pb.Reservation.RELEASED
        return record

    async def ListCancelledEvents(
        self, request: event_pb.ListCancelledEventsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> event_pb.ListCancelledEventsResponse:
        return event_pb.ListCancelledEventsResponse(events=self.cancelled)


def entry_message(entry: WaitlistEntry) -> event_pb.WaitlistEntry:
    """An entry as the event service sends it."""
    message = event_pb.WaitlistEntry(
        id=str(entry.id),
        event_id=str(entry.event_id),
        user_id=entry.user_id,
        seats=entry.seats,
        state=event_pb.WaitlistEntry.State.Value(entry.state.value),
        position=entry.position,
        create_time=timestamp(entry.create_time),
        update_time=timestamp(entry.update_time),
        booking_id=str(entry.booking_id) if entry.booking_id else "",
    )
    if entry.offer_time is not None:
        message.offer_time.CopyFrom(timestamp(entry.offer_time))
    return message


@pytest.fixture
async def stand_in_events() -> AsyncIterator[tuple[StandInEvents, str]]:
    servicer = StandInEvents()
    server = grpc.aio.server()
    event_pb_grpc.add_EventServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(None)


@pytest.fixture(scope="session")
def signing_key() -> testkeys.SigningKey:
    return testkeys.signing_key("booking-test-key")


# Bearer headers for REST tests: two users and an admin.
@pytest.fixture
def alice(signing_key: testkeys.SigningKey) -> dict[str, str]:
    return {"Authorization": bearer(signing_key, "alice")}


@pytest.fixture
def bob(signing_key: testkeys.SigningKey) -> dict[str, str]:
    return {"Authorization": bearer(signing_key, "bob")}


@pytest.fixture
def admin(signing_key: testkeys.SigningKey) -> dict[str, str]:
    return {"Authorization": bearer(signing_key, "root", admin=True)}


@pytest.fixture(scope="session")
def jwks_file(signing_key: testkeys.SigningKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("idp") / "jwks.json"
    path.write_text(json.dumps(testkeys.jwks(signing_key)))
    return path


@pytest.fixture
def settings(
    postgresql_server: PostgresServer, booking_db: str, jwks_file: Path, stand_in_events: tuple[StandInEvents, str]
) -> Settings:
    return Settings.from_env(
        Env(
            {
                **postgresql_server.env(booking_db),
                "AUTH_JWKS_FILE": str(jwks_file),
                "AUTH_ISSUER": testkeys.ISSUER,
                "AUTH_AUDIENCE": testkeys.AUDIENCE,
                "EVENT_SERVICE_ADDR": stand_in_events[1],
                "HOLD_TTL_SECONDS": "300",
            }
        )
    )


def bearer(key: testkeys.SigningKey, sub: str, *, admin: bool = False) -> str:
    extra = {"roles": ["admin"]} if admin else {}
    return "Bearer " + testkeys.sign(key, testkeys.claims(sub=sub, **extra))


@pytest.fixture
async def components(settings: Settings, pool: AsyncConnectionPool) -> AsyncIterator[app.Components]:
    events = EventClient(settings.event_service)
    async with Access.running(settings.auth) as access:
        yield app.build(settings, pool, events, access)
    await events.close()


@pytest.fixture
async def client(components: app.Components) -> AsyncIterator[TestClientProtocol]:
    async with components.http_app.test_app() as test_app:
        yield test_app.test_client()


@pytest.fixture
async def grpc_channel(components: app.Components) -> AsyncIterator[grpc.aio.Channel]:
    port = components.grpc_server.bind("127.0.0.1:0")
    await components.grpc_server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield channel
    await channel.close()
    await components.grpc_server.stop(grace=1)
