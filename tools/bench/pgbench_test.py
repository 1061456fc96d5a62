"""The benchmark's pgbench script is the event service's RESERVE statement, and it reserves."""

from __future__ import annotations

import psycopg

from event_service.repository import RESERVE
from tools.bench import pgbench
from tools.testing.postgres import PostgresServer


def test_the_script_is_the_reserve_statement_with_its_parameters_filled() -> None:
    script = pgbench.script()
    assert "gen_random_uuid()" in script and "%(" not in script
    # Everything but the parameters is RESERVE, word for word.
    for fragment in RESERVE.split("%(")[0], "RETURNING booking_id, event_id, seats, state":
        assert fragment.strip() in script


def test_pgbench_reserves_one_seat_per_transaction(postgresql_server: PostgresServer) -> None:
    server = postgresql_server
    pgbench.prepare_database(server.dsn("postgres"), server.dsn("bench_test"), "bench_test", events=3)
    result = pgbench.run(
        server.bindir / "pgbench",
        host=server.host,
        port=server.port,
        user=server.user,
        dbname="bench_test",
        events=3,
        clients=4,
        threads=2,
        seconds=1,
    )
    assert result.transactions > 0 and result.tps > 0
    assert 0 < result.latencies_ms["p50"] <= result.latencies_ms["max"]
    with psycopg.connect(server.dsn("bench_test")) as conn:
        taken = conn.execute("SELECT sum(total_seats - available_seats) FROM events").fetchone()
        reserved = conn.execute("SELECT count(*) FROM reservations WHERE state = 'RESERVED'").fetchone()
    assert taken == reserved == (result.transactions,)
