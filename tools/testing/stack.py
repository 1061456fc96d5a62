"""Both TicketFlow services as real processes on real ports, each with its own database.

with running_stack(postgresql_server, tmp_path) as stack:
    stack.booking_url   # http://127.0.0.1:<port>
    stack.stop_event(); stack.start_event()    # take the event service down and back
    stack.kill_booking(); stack.start_booking()
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tools.testing.postgres import PostgresServer, free_port
from tools.testing.processes import ServiceProcess

EVENT_BINARY = "event_service/event_service"
BOOKING_BINARY = "booking_service/booking_service"


@dataclass
class Stack:
    server: PostgresServer
    log_dir: Path
    event_db: str
    booking_db: str
    booking_overrides: dict[str, str] = field(default_factory=dict)
    event_http: int = field(default_factory=free_port)
    event_grpc: int = field(default_factory=free_port)
    booking_http: int = field(default_factory=free_port)
    booking_grpc: int = field(default_factory=free_port)
    event: ServiceProcess | None = None
    booking: ServiceProcess | None = None

    @property
    def event_url(self) -> str:
        return f"http://127.0.0.1:{self.event_http}"

    @property
    def booking_url(self) -> str:
        return f"http://127.0.0.1:{self.booking_http}"

    @property
    def event_dsn(self) -> str:
        return self.server.dsn(self.event_db)

    @property
    def booking_dsn(self) -> str:
        return self.server.dsn(self.booking_db)

    def _common(self) -> dict[str, str]:
        empty = self.log_dir / "empty.env"
        empty.touch()
        return {"SERVER_HOST": "127.0.0.1", "ENV_FILE": str(empty), "SHUTDOWN_GRACE_SECONDS": "5"}

    def start_event(self) -> ServiceProcess:
        if self.event is not None:
            self.event.kill()  # reap the previous process, whatever state it is in
        env = {
            **self.server.env(self.event_db),
            **self._common(),
            "HTTP_PORT": str(self.event_http),
            "GRPC_PORT": str(self.event_grpc),
        }
        self.event = ServiceProcess("event_service", EVENT_BINARY, env, self.log_dir / "event_service.log").start()
        self.event.wait_http(f"{self.event_url}/readyz")
        return self.event

    def start_booking(self, **overrides: str) -> ServiceProcess:
        if self.booking is not None:
            self.booking.kill()  # reap the previous process, whatever state it is in
        env = {
            **self.server.env(self.booking_db),
            **self._common(),
            "HTTP_PORT": str(self.booking_http),
            "GRPC_PORT": str(self.booking_grpc),
            "EVENT_SERVICE_ADDR": f"127.0.0.1:{self.event_grpc}",
            # Settle abandoned bookings quickly, so tests need not wait long.
            "PENDING_TIMEOUT_SECONDS": "2",
            "RECONCILE_INTERVAL_SECONDS": "0.5",
            "EVENT_SERVICE_TIMEOUT_SECONDS": "2",
            **self.booking_overrides,
            **overrides,
        }
        self.booking = ServiceProcess(
            "booking_service", BOOKING_BINARY, env, self.log_dir / "booking_service.log"
        ).start()
        # /healthz, not /readyz: a test may start the booking service while the event service is down.
        self.booking.wait_http(f"{self.booking_url}/healthz")
        return self.booking

    def stop_event(self) -> int:
        assert self.event is not None
        return self.event.stop()

    def kill_booking(self) -> None:
        assert self.booking is not None
        self.booking.kill()

    def stop(self) -> None:
        for proc in (self.booking, self.event):
            if proc is not None:
                proc.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.logs()}" for p in (self.event, self.booking) if p is not None)


@contextlib.contextmanager
def running_stack(server: PostgresServer, log_dir: Path, **booking_overrides: str) -> Iterator[Stack]:
    with server.database(prefix="events") as event_db, server.database(prefix="bookings") as booking_db:
        stack = Stack(server, log_dir, event_db, booking_db, dict(booking_overrides))
        try:
            stack.start_event()
            stack.start_booking()
            yield stack
        finally:
            stack.stop()
