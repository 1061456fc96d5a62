"""Versioned migrations on a real PostgreSQL: applied once, in order, safely in parallel."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest

from service_runtime.migrations import Migration, MigrationError, apply_migrations
from tools.testing.postgres import PostgresServer

FIRST = Migration(1, "create", "CREATE TABLE t (n int); INSERT INTO t VALUES (1);")
SECOND = Migration(2, "add", "ALTER TABLE t ADD COLUMN m int;")


@pytest.fixture
def dsn(postgresql_server: PostgresServer) -> Iterator[str]:
    with postgresql_server.database(prefix="migrations") as name:
        yield postgresql_server.dsn(name)


async def test_migrations_apply_once_in_order(dsn: str) -> None:
    assert await apply_migrations(dsn, [FIRST], lock_name="t") == [FIRST]
    assert await apply_migrations(dsn, [FIRST, SECOND], lock_name="t") == [SECOND]
    assert await apply_migrations(dsn, [FIRST, SECOND], lock_name="t") == []
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall() == [(1,), (2,)]


async def test_replicas_migrating_at_once_apply_each_migration_once(dsn: str) -> None:
    results = await asyncio.gather(*(apply_migrations(dsn, [FIRST, SECOND], lock_name="t") for _ in range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 2]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)


async def test_a_changed_migration_stops_start_up(dsn: str) -> None:
    await apply_migrations(dsn, [FIRST], lock_name="t")
    edited = Migration(1, "create", FIRST.sql + " -- edited")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await apply_migrations(dsn, [edited], lock_name="t")


async def test_a_failing_migration_leaves_nothing_half_applied(dsn: str) -> None:
    broken = Migration(2, "broken", "ALTER TABLE t ADD COLUMN x int; SELECT 1/0;")
    with pytest.raises(MigrationError, match="0002_broken"):
        await apply_migrations(dsn, [FIRST, broken], lock_name="t")
    with psycopg.connect(dsn) as conn:
        columns = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 't'").fetchall()
        assert columns == [("n",)]
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]
