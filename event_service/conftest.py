"""Fixtures of the event service's tests: a fresh migrated database per test, and the service
built on it, reachable through Quart's test client and through a real gRPC channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from psycopg_pool import AsyncConnectionPool
from quart.typing import TestClientProtocol

from event_service import app
from event_service.config import Settings
from service_runtime.config import Env
from ticketflow.event.v1 import event_service_pb2_grpc
from tools.testing.postgres import PostgresServer, migrated_template, pool_for


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


@pytest.fixture
def settings(event_env: dict[str, str]) -> Settings:
    return Settings.from_env(Env({**event_env, "MAX_SEATS_PER_BOOKING": "10", "MAX_TOTAL_SEATS": "100000"}))


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    async with pool_for(dsn) as pool:
        yield pool


@pytest.fixture
def components(settings: Settings, pool: AsyncConnectionPool) -> app.Components:
    return app.build(settings, pool)


@pytest.fixture
async def client(components: app.Components) -> AsyncIterator[TestClientProtocol]:
    async with components.http_app.test_app() as test_app:
        yield test_app.test_client()


@pytest.fixture
async def grpc_channel(components: app.Components) -> AsyncIterator[grpc.aio.Channel]:
    port = components.grpc_server.bind("127.0.0.1:0")
    await components.grpc_server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await components.grpc_server.stop(grace=1)


@pytest.fixture
def stub(grpc_channel: grpc.aio.Channel) -> event_service_pb2_grpc.EventServiceStub:
    return event_service_pb2_grpc.EventServiceStub(grpc_channel)
