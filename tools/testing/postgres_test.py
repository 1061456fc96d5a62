"""The test PostgreSQL plugin gives a real server and isolated per-test databases."""

from __future__ import annotations

import psycopg

from tools.testing.postgres import PostgresServer


def _create_table(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE seats (n int PRIMARY KEY)")


def test_server_is_real_postgresql(postgresql_server: PostgresServer) -> None:
    with postgresql_server.database() as name, psycopg.connect(postgresql_server.dsn(name)) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
        assert row is not None and int(row[0]) >= 140000


def test_each_database_is_a_fresh_copy_of_the_template(postgresql_server: PostgresServer) -> None:
    with postgresql_server.template("tmpl_seats", _create_table) as template:
        with postgresql_server.database(template) as first, psycopg.connect(postgresql_server.dsn(first)) as conn:
            conn.execute("INSERT INTO seats VALUES (1)")
            conn.commit()
        with postgresql_server.database(template) as second, psycopg.connect(postgresql_server.dsn(second)) as conn:
            row = conn.execute("SELECT count(*) FROM seats").fetchone()
            assert row == (0,)
