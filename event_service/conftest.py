"""Fixtures of the event service's tests: a fresh migrated database per test, and the service
built on it with identity on, reachable through Quart's test client and through real gRPC
channels.

Tokens are signed with a test key whose JWKS file the service loads (AUTH_JWKS_FILE), as it
would an identity provider's. The gRPC port speaks mutual TLS with the dev CA's certificates
(GRPC_TLS_*): `stub` and `grpc_channel` present the booking service's client certificate, as
the booking service does; `open_channel` connects any other way, for the refusal tests.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from quart.typing import TestClientProtocol

from event_service import app
from event_service.config import Settings
from service_runtime.auth import testkeys
from service_runtime.auth.access import Access
from service_runtime.auth.tls import ChannelTls
from service_runtime.config import Env
from ticketflow.event.v1 import event_service_pb2_grpc
from tools.devkeys import DevTls, dev_tls
from tools.testing.postgres import PostgresServer, migrated_template, pool_for

Metadata = tuple[tuple[str, str], ...]
# Opens a channel to the gRPC port: plaintext when given None; closed after the test.
OpenChannel = Callable[[grpc.ChannelCredentials | None], grpc.aio.Channel]


@pytest.fixture(scope="session")
def event_db_template(postgresql_server: PostgresServer) -> Iterator[str]:
    with migrated_template(postgresql_server, "event_service") as name:
        yield name


@pytest.fixture
def event_db(postgresql_server: PostgresServer, event_db_template: str) -> Iterator[str]:
    """The name of a fresh database holding the event service's schema."""
    with postgresql_server.database(event_db_template, prefix="events") as name:
        yield name


@pytest.fixture
def event_env(postgresql_server: PostgresServer, event_db: str) -> dict[str, str]:
    return postgresql_server.env(event_db)


@pytest.fixture
def dsn(postgresql_server: PostgresServer, event_db: str) -> str:
    return postgresql_server.dsn(event_db)


@pytest.fixture(scope="session")
def signing_key() -> testkeys.SigningKey:
    """The key of the test identity provider: its JWKS is what the service trusts."""
    return testkeys.signing_key("event-test-key")


@pytest.fixture(scope="session")
def jwks_file(signing_key: testkeys.SigningKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("idp") / "jwks.json"
    path.write_text(json.dumps(testkeys.jwks(signing_key)))
    return path


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> DevTls:
    """The dev CA, the event service's server certificate and the booking service's client
    certificate (`booking-service`), made once for the session."""
    return dev_tls(tmp_path_factory.mktemp("dev"))


@pytest.fixture
def auth_env(jwks_file: Path) -> dict[str, str]:
    return {
        "AUTH_JWKS_FILE": str(jwks_file),
        "AUTH_ISSUER": testkeys.ISSUER,
        "AUTH_AUDIENCE": testkeys.AUDIENCE,
    }


@pytest.fixture
def tls_env(tls: DevTls) -> dict[str, str]:
    return {
        "GRPC_TLS_CERT_FILE": str(tls.event_cert),
        "GRPC_TLS_KEY_FILE": str(tls.event_key),
        "GRPC_TLS_CLIENT_CA_FILE": str(tls.ca_file),
    }


@pytest.fixture
def settings(event_env: dict[str, str], auth_env: dict[str, str], tls_env: dict[str, str]) -> Settings:
    return Settings.from_env(
        Env({**event_env, **auth_env, **tls_env, "MAX_SEATS_PER_BOOKING": "10", "MAX_TOTAL_SEATS": "100000"})
    )


def token(key: testkeys.SigningKey, sub: str, *, admin: bool = False) -> str:
    extra = {"roles": ["admin"]} if admin else {}
    return testkeys.sign(key, testkeys.claims(sub=sub, **extra))


@pytest.fixture
def admin_token(signing_key: testkeys.SigningKey) -> str:
    return token(signing_key, "root", admin=True)


@pytest.fixture
def user_token(signing_key: testkeys.SigningKey) -> str:
    return token(signing_key, "alice")


@pytest.fixture
def admin_headers(admin_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token}"}


@pytest.fixture
def admin_metadata(admin_token: str) -> Metadata:
    return (("authorization", f"Bearer {admin_token}"),)


@pytest.fixture
async def access(settings: Settings) -> AsyncIterator[Access]:
    """Started the way the service starts it: the keys read from AUTH_JWKS_FILE."""
    started = await Access.start(settings.auth)
    try:
        yield started
    finally:
        await started.close()


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    async with pool_for(dsn) as pool:
        yield pool


@pytest.fixture
def components(settings: Settings, pool: AsyncConnectionPool, access: Access) -> app.Components:
    return app.build(settings, pool, access)


@pytest.fixture
async def client(components: app.Components) -> AsyncIterator[TestClientProtocol]:
    async with components.http_app.test_app() as test_app:
        yield test_app.test_client()


async def serve_grpc(components: app.Components, settings: Settings) -> int:
    """Starts the components' gRPC server on a free loopback port, with TLS as configured."""
    credentials = settings.grpc_tls.credentials() if settings.grpc_tls else None
    port = components.grpc_server.bind("127.0.0.1:0", credentials)
    await components.grpc_server.start()
    return port


@pytest.fixture
async def grpc_port(components: app.Components, settings: Settings) -> AsyncIterator[int]:
    port = await serve_grpc(components, settings)
    try:
        yield port
    finally:
        await components.grpc_server.stop(grace=1)


def client_tls(ca_file: Path, cert: Path | None = None, key: Path | None = None) -> grpc.ChannelCredentials:
    """Channel credentials trusting `ca_file`, presenting `cert` when given (the booking
    service's EVENT_SERVICE_TLS_* settings)."""
    env = {"EVENT_SERVICE_TLS_CA_FILE": str(ca_file)}
    if cert is not None and key is not None:
        env |= {"EVENT_SERVICE_TLS_CERT_FILE": str(cert), "EVENT_SERVICE_TLS_KEY_FILE": str(key)}
    configured = ChannelTls.from_env(Env(env))
    assert configured is not None
    return configured.credentials()


@pytest.fixture
async def open_channel(grpc_port: int) -> AsyncIterator[OpenChannel]:
    opened: list[grpc.aio.Channel] = []

    def open_(credentials: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
        # The server certificate names 127.0.0.1, so no name override is needed.
        target = f"127.0.0.1:{grpc_port}"
        channel = (
            grpc.aio.insecure_channel(target) if credentials is None else grpc.aio.secure_channel(target, credentials)
        )
        opened.append(channel)
        return channel

    yield open_
    for channel in opened:
        await channel.close()


@pytest.fixture
def grpc_channel(open_channel: OpenChannel, tls: DevTls) -> grpc.aio.Channel:
    """The booking service's channel: mutual TLS with its `booking-service` certificate."""
    return open_channel(client_tls(tls.ca_file, tls.booking_cert, tls.booking_key))


@pytest.fixture
def stub(grpc_channel: grpc.aio.Channel) -> event_service_pb2_grpc.EventServiceStub:
    return event_service_pb2_grpc.EventServiceStub(grpc_channel)


# The waiting-list invariants (migrations/0003_waitlist.sql), each query listing violations.
_WAITLIST_CHECKS = {
    "waitlist_size counts the WAITING entries": """
        SELECT e.id FROM events e
         WHERE e.waitlist_size <> (SELECT count(*) FROM waitlist_entries w
                                    WHERE w.event_id = e.id AND w.state = 'WAITING')""",
    "an offer's reservation has its event and seats": """
        SELECT w.id FROM waitlist_entries w LEFT JOIN reservations r ON r.booking_id = w.booking_id
         WHERE w.state = 'OFFERED'
           AND (r.booking_id IS NULL OR r.event_id <> w.event_id OR r.seats <> w.seats
                OR r.state NOT IN ('RESERVED', 'RELEASED') OR r.create_time <> w.offer_time)""",
    "nobody who fits waits while seats are free": """
        SELECT w.id FROM waitlist_entries w JOIN events e ON e.id = w.event_id
         WHERE w.state = 'WAITING' AND e.state = 'SCHEDULED' AND w.seats <= e.available_seats
           AND (e.sales_end_time IS NULL OR e.sales_end_time > clock_timestamp())""",
    "first fit never skips an earlier entry that fits": """
        SELECT o.id FROM waitlist_entries o JOIN waitlist_entries w
            ON w.event_id = o.event_id AND w.seq < o.seq AND w.seats <= o.seats
         WHERE o.state = 'OFFERED'
           AND (w.state = 'WAITING'
                OR (w.state = 'OFFERED' AND w.offer_time > o.offer_time)
                OR (w.state IN ('LEFT', 'CLOSED') AND w.update_time > o.offer_time))""",
    "no reservation but an offer took seats while someone waited": """
        SELECT r.booking_id FROM reservations r JOIN waitlist_entries w ON w.event_id = r.event_id
         WHERE r.state IN ('RESERVED', 'RELEASED') AND r.seats > 0
           AND NOT EXISTS (SELECT FROM waitlist_entries o WHERE o.booking_id = r.booking_id)
           AND w.create_time < r.create_time
           AND (w.state = 'WAITING' OR (w.state = 'OFFERED' AND w.offer_time > r.create_time)
                OR (w.state IN ('LEFT', 'CLOSED') AND w.update_time > r.create_time))""",
}


def assert_waitlists_consistent(event_dsn: str) -> None:
    """The waiting-list invariants hold in the event database at a quiet moment."""
    with psycopg.connect(event_dsn) as conn:
        found = {name: conn.execute(query).fetchall() for name, query in _WAITLIST_CHECKS.items()}
    violations = {name: rows for name, rows in found.items() if rows}
    assert not violations, violations
