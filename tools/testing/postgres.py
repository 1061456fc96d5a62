"""Real PostgreSQL for tests: one throw-away server per test session, one database per test.

A pytest plugin (loaded by `py_pytest_test(postgres = True)`) built on pytest-postgresql's
`PostgreSQLExecutor` and `DatabaseJanitor`. It differs from pytest-postgresql's own
`postgresql_proc` fixture in the two ways these machines need:

- PostgreSQL refuses to run as root. When the tests run as root (as CI does), `pg_ctl` is run
  through `runuser -u postgres`, and the server's directory is made the `postgres` user's.
- The server's directory (data, socket, log) is a short path under /tmp, never under Bazel's
  test temp directory: that one is too long for a Unix socket and, under /root, unreadable
  for the `postgres` user.

Fixtures:
- `postgresql_server` (session): the running server (`PostgresServer`).
- Use `PostgresServer.template(name, load)` once per session to build a template database
  holding a schema, then `PostgresServer.database(template)` per test for a fresh copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import pytest
from psycopg_pool import AsyncConnectionPool
from pytest_postgresql.executors import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from service_runtime.migrations import migrate_package

_SUPERUSER = "postgres"
_SYSTEM_USER = "postgres"
# Durability is irrelevant for throw-away test databases; speed is not.
_TEST_SERVER_OPTIONS = "-c fsync=off -c full_page_writes=off -c max_connections=300"


def postgres_bindir() -> Path:
    """Directory of the PostgreSQL server binaries: $PG_BINDIR, `pg_config --bindir`, or Debian's."""
    if env := os.environ.get("PG_BINDIR"):
        return Path(env)
    candidates = []
    if pg_config := shutil.which("pg_config", path="/usr/bin:/usr/local/bin:" + os.environ.get("PATH", "")):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for candidate in candidates:
        if (candidate / "pg_ctl").is_file() and (candidate / "postgres").is_file():
            return candidate
    raise RuntimeError(
        "PostgreSQL server binaries (pg_ctl, postgres) not found: install them "
        "(Debian: apt-get install postgresql) or set PG_BINDIR"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _runuser() -> str:
    for path in ("/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"):
        if os.access(path, os.X_OK):
            return path
    raise RuntimeError("running PostgreSQL as root needs runuser (util-linux)")


def _pg_ctl_for(base: Path, bindir: Path) -> str:
    """The pg_ctl to run: the real one, or as root a wrapper running it as `postgres`."""
    pg_ctl = bindir / "pg_ctl"
    if os.geteuid() != 0:
        return str(pg_ctl)
    wrapper = base / "pg_ctl"
    # cd first: the caller's working directory (Bazel's runfiles, under /root) is not
    # readable by `postgres`, and pg_ctl refuses to start from there.
    wrapper.write_text(f'#!/bin/sh\ncd "{base}" && exec {_runuser()} -u {_SYSTEM_USER} -- {pg_ctl} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@dataclass
class PostgresServer:
    """A running throw-away PostgreSQL server reachable over TCP on 127.0.0.1."""

    host: str
    port: int
    user: str
    bindir: Path
    _names: Iterator[int]

    def dsn(self, dbname: str) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def env(self, dbname: str) -> dict[str, str]:
        """The services' DB_* variables for a database of this server."""
        return {
            "DB_HOST": self.host,
            "DB_PORT": str(self.port),
            "DB_USER": self.user,
            "DB_NAME": dbname,
            "DB_SSLMODE": "disable",
        }

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
    bindir = postgres_bindir()
    base = Path(tempfile.mkdtemp(prefix="tfpg-", dir="/tmp"))
    try:
        if os.geteuid() == 0:
            owner = pwd.getpwnam(_SYSTEM_USER)
            os.chown(base, owner.pw_uid, owner.pw_gid)
        base.chmod(0o755)
        port = free_port()
        executor = PostgreSQLExecutor(
            executable=_pg_ctl_for(base, bindir),
            host="127.0.0.1",
            port=port,
            datadir=str(base / "data"),
            unixsocketdir=str(base),
            logfile=str(base / "postgres.log"),
            startparams="-w",
            dbname="tests",
            user=_SUPERUSER,
            postgres_options=_TEST_SERVER_OPTIONS,
        )
        executor.start()
        try:
            yield PostgresServer(host="127.0.0.1", port=port, user=_SUPERUSER, bindir=bindir, _names=count())
        finally:
            executor.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server
