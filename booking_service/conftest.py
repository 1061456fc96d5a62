"""Fixtures of the booking service's database tests: a fresh migrated database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from psycopg_pool import AsyncConnectionPool

from booking_service.repository import BookingRepository
from tools.testing.postgres import PostgresServer, migrated_template, pool_for


@pytest.fixture(scope="session")
def booking_db_template(postgresql_server: PostgresServer) -> Iterator[str]:
    with migrated_template(postgresql_server, "booking_service") as name:
        yield name


@pytest.fixture
def dsn(postgresql_server: PostgresServer, booking_db_template: str) -> Iterator[str]:
    with postgresql_server.database(booking_db_template, prefix="bookings") as name:
        yield postgresql_server.dsn(name)


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    async with pool_for(dsn) as pool:
        yield pool


@pytest.fixture
def repo(pool: AsyncConnectionPool) -> BookingRepository:
    return BookingRepository(pool)
