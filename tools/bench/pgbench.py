"""pgbench running the very statement the event service runs to reserve seats.

The script is `event_service.repository.RESERVE` itself, its parameters turned into pgbench
expressions: a new random booking id per transaction (`gen_random_uuid()`), one seat, and an
event picked at random among `events` (one event: every client on the same row, the naive
single-hot-row limit). It runs as the service runs it: one autocommit statement, prepared
(psycopg prepares a statement on a connection after a few executions), over TCP.

The database gets the event service's schema (its migrations) and events with more seats
than a run can take, so that every transaction takes the event's row lock and commits.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import tempfile
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import psycopg

from event_service.repository import RESERVE
from service_runtime.migrations import migrate_package
from tools.loadtest.stats import percentile

# Event n's id, from pgbench's integer variable :n (pgbench variables cannot hold a uuid).
_EVENT_ID = "('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid"
_SEATS = 2_000_000_000  # never sold out during a run: every transaction takes the row lock


def event_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def script() -> str:
    """The pgbench script: pick an event, run RESERVE for a new booking id."""
    statement = (
        RESERVE.replace("%(event_id)s", _EVENT_ID)
        .replace("%(booking_id)s", "gen_random_uuid()")
        .replace("%(seats)s", "1")
    )
    assert "%(" not in statement, "RESERVE has a parameter this script does not fill"
    return "\\set n random(1, :events)\n" + statement.strip() + ";\n"


def prepare_database(admin_dsn: str, dsn: str, dbname: str, events: int) -> None:
    """Creates `dbname` with the event service's schema and `events` events."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    asyncio.run(migrate_package(dsn, "event_service"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO events (id, name, start_time, total_seats, available_seats) "
            f"SELECT {_EVENT_ID.replace(':n', 'n')}, 'pgbench ' || n, now(), %s, %s "
            "FROM generate_series(1, %s) AS n",
            (_SEATS, _SEATS, events),
        )
        conn.execute("VACUUM ANALYZE")


@dataclass(frozen=True)
class PgbenchResult:
    transactions: int
    tps: float
    latencies_ms: dict[str, float]  # p50, p95, p99, max
    command: str


def run(
    pgbench: Path,
    *,
    host: str,
    port: int,
    user: str,
    dbname: str,
    events: int,
    clients: int,
    threads: int,
    seconds: int,
    measure: AbstractContextManager[object] | None = None,
) -> PgbenchResult:
    """Runs pgbench for `seconds` with `clients` connections; latencies from its per-transaction log.
    `measure` (a CPU meter, say) is entered around pgbench itself."""
    with tempfile.TemporaryDirectory(prefix="tfbench-") as tmp:
        script_path = Path(tmp) / "reserve.sql"
        script_path.write_text(script())
        command = [
            str(pgbench),
            "--no-vacuum",
            "--protocol=prepared",
            f"--client={clients}",
            f"--jobs={threads}",
            f"--time={seconds}",
            f"--define=events={events}",
            f"--file={script_path}",
            "--log",
            f"--log-prefix={tmp}/tx",
            f"--host={host}",
            f"--port={port}",
            f"--username={user}",
            dbname,
        ]
        with measure or nullcontext():
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed ({done.returncode}): {done.stderr.strip()}")
        latencies = sorted(
            int(line.split()[2]) / 1000.0 for log in Path(tmp).glob("tx.*") for line in log.read_text().splitlines()
        )
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    count = re.search(r"number of transactions actually processed: (\d+)", done.stdout)
    if tps is None or count is None:
        raise RuntimeError(f"cannot read pgbench's output:\n{done.stdout}")
    shown = " ".join(command).replace(str(script_path), "reserve.sql").replace(f"{tmp}/", "")
    return PgbenchResult(
        transactions=int(count.group(1)),
        tps=float(tps.group(1)),
        latencies_ms={
            "p50": percentile(latencies, 0.50),
            "p95": percentile(latencies, 0.95),
            "p99": percentile(latencies, 0.99),
            "max": latencies[-1] if latencies else 0.0,
        },
        command=shown,
    )
