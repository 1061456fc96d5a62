"""The launcher (`tools.stack`) as the tests run it: both services on free ports, each with a
fresh database on the session's PostgreSQL, logs in the test's directory, dev credentials of
their own (in `<log_dir>/dev`, so that no two runs share a signing key or a certificate), and
settle times short enough that tests need not wait long.

    with running_stack(postgresql_server, tmp_path) as stack:
        stack.booking_url                                  # http://127.0.0.1:<port>
        stack.stop_service("event"); stack.start_service("event")
        stack.kill_service("booking"); stack.start_service("booking", ready="/healthz")
        stack.logs()                                       # both services' logs, for failures
        stack.token("alice"), stack.token("root", admin=True)   # bearer tokens they accept
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tools.stack.config import Ports, StackConfig
from tools.stack.database import DatabaseServer
from tools.stack.stack import Stack
from tools.supervisor.output import LogDirectory
from tools.testing.postgres import PostgresServer

# Settle abandoned bookings quickly, so tests need not wait long.
BOOKING_ENV = {
    "PENDING_TIMEOUT_SECONDS": "2",
    "RECONCILE_INTERVAL_SECONDS": "0.5",
    "EVENT_SERVICE_TIMEOUT_SECONDS": "2",
}


@contextlib.contextmanager
def running_stack(server: PostgresServer, log_dir: Path, **booking_env: str) -> Iterator[Stack]:
    """Both services, ready; stopped (and their databases dropped) on exit. `booking_env` is
    set on the booking service over the test defaults above."""
    # An empty .env of our own, so that no .env lying around can change a test.
    empty = log_dir / "empty.env"
    empty.touch()
    with server.database(prefix="events") as event_db, server.database(prefix="bookings") as booking_db:
        config = StackConfig(
            ports=Ports.free(),
            event_db=event_db,
            booking_db=booking_db,
            env={"ENV_FILE": str(empty)},
            service_env={"booking": {**BOOKING_ENV, **booking_env}},
            dev_home=log_dir / "dev",
        )
        with Stack(config, LogDirectory(log_dir), DatabaseServer.embedded(server.server)) as stack:
            yield stack
