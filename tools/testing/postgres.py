"""Real PostgreSQL for tests: one throw-away server per test session, one database per test.

A pytest plugin (`py_pytest_test(postgres = True)` loads it). The server is
`tools.embedded_postgres` (run as the `postgres` user when the tests run as root, in a short
directory under /tmp; see there why), with fsync off: durability is irrelevant for throw-away
test databases. Databases are made and dropped with pytest-postgresql's `DatabaseJanitor`.

Fixtures:
- `postgresql_server` (session): the running server (`PostgresServer`).
- Use `PostgresServer.template(name, load)` once per session to build a template database
  holding a schema, then `PostgresServer.database(template)` per test for a fresh copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from pytest_postgresql.janitor import DatabaseJanitor

from service_runtime.migrations import migrate_package
from tools.embedded_postgres.server import FAST_UNSAFE, EmbeddedPostgres
from tools.embedded_postgres.server import free_port as free_port  # noqa: PLC0414 (re-exported)


@dataclass
class PostgresServer:
    """A running throw-away PostgreSQL server reachable over TCP on 127.0.0.1: the embedded
    server, plus the per-test databases this plugin makes on it."""

    server: EmbeddedPostgres
    _names: Iterator[int] = field(default_factory=count)

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def user(self) -> str:
        return self.server.user

    @property
    def bindir(self) -> Path:
        return self.server.bindir

    def dsn(self, dbname: str) -> str:
        return self.server.dsn(dbname)

    def env(self, dbname: str) -> dict[str, str]:
        """The services' DB_* variables for a database of this server."""
        return self.server.env(dbname)

    def _janitor(self, dbname: str, template: str | None = None, as_template: bool = False) -> DatabaseJanitor:
        return DatabaseJanitor(
            user=self.user,
            host=self.host,
            port=self.port,
            dbname=dbname,
            template_dbname=template,
            as_template=as_template,
        )

    @contextlib.contextmanager
    def template(self, name: str, load: Callable[[str], None]) -> Iterator[str]:
        """A template database named `name`, filled by `load(dsn)`; dropped on exit."""
        janitor = self._janitor(name, as_template=True)
        janitor.drop()
        janitor.init()
        try:
            load(self.dsn(name))
            yield name
        finally:
            janitor.drop()

    @contextlib.contextmanager
    def database(self, template: str | None = None, prefix: str = "test") -> Iterator[str]:
        """A fresh database (a copy of `template` if given); yields its name, drops it on exit."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with self._janitor(name, template=template):
            yield name

    def create_database(self, name: str) -> str:
        """Creates an empty database that lives as long as the server; returns its name."""
        self._janitor(name).init()
        return name


@contextlib.contextmanager
def migrated_template(server: PostgresServer, package: str) -> Iterator[str]:
    """A template database holding the schema of a service package's migrations."""

    def load(dsn: str) -> None:
        asyncio.run(migrate_package(dsn, package))

    with server.template(f"{package}_tmpl", load) as name:
        yield name


@dataclass
class ServiceDatabases:
    """One database of each service, made from their migrated templates, for tests that write
    a history straight into both (the audit's tests)."""

    event_dsn: str
    booking_dsn: str

    def events(self, statement: str, *params: object) -> None:
        with psycopg.connect(self.event_dsn, autocommit=True) as conn:
            conn.execute(statement, params)

    def bookings(self, statement: str, *params: object) -> None:
        with psycopg.connect(self.booking_dsn, autocommit=True) as conn:
            conn.execute(statement, params)


@contextlib.contextmanager
def service_templates(server: PostgresServer) -> Iterator[tuple[str, str]]:
    """The migrated templates of the event service and the booking service, in that order."""
    with (
        migrated_template(server, "event_service") as events,
        migrated_template(server, "booking_service") as bookings,
    ):
        yield events, bookings


@contextlib.contextmanager
def service_databases(server: PostgresServer, templates: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """Fresh (event, booking) database DSNs made from `service_templates`."""
    with (
        server.database(templates[0], prefix="events") as events,
        server.database(templates[1], prefix="bookings") as bookings,
    ):
        yield server.dsn(events), server.dsn(bookings)


@contextlib.asynccontextmanager
async def pool_for(dsn: str, max_size: int = 20) -> AsyncIterator[AsyncConnectionPool]:
    """A connection pool like the services' (autocommit connections) for a test database."""
    pool = AsyncConnectionPool(dsn, min_size=1, max_size=max_size, kwargs={"autocommit": True}, open=False)
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Starts a throw-away PostgreSQL server; stops it and removes its files on exit."""
    with EmbeddedPostgres(settings=FAST_UNSAFE) as server:
        yield PostgresServer(server)


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server
