"""What the launcher runs where: the services' ports and databases, the environment they get
on top of the stack's own wiring, where the dev credentials live, and the throw-away
PostgreSQL's settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tools.embedded_postgres.server import free_port


@dataclass(frozen=True)
class Ports:
    event_http: int
    event_grpc: int
    booking_http: int
    booking_grpc: int

    @classmethod
    def free(cls) -> Ports:
        """Four ports nobody listens on now (for tests and the benchmark)."""
        return cls(free_port(), free_port(), free_port(), free_port())

    def of(self, service: str) -> tuple[int, int]:
        """(HTTP, gRPC) of the service named `service` ("event" or "booking")."""
        by_service = {"event": (self.event_http, self.event_grpc), "booking": (self.booking_http, self.booking_grpc)}
        return by_service[service]

    def named(self) -> dict[str, int]:
        return {
            "event HTTP": self.event_http,
            "event gRPC": self.event_grpc,
            "booking HTTP": self.booking_http,
            "booking gRPC": self.booking_grpc,
        }


@dataclass(frozen=True)
class StackConfig:
    ports: Ports
    event_db: str
    booking_db: str
    # The address the services listen on.
    host: str = "127.0.0.1"
    # Seconds a service gets to stop after SIGTERM before it is killed; its own shutdown grace
    # (SHUTDOWN_GRACE_SECONDS) defaults to a little less, so that it finishes in time.
    stop_timeout: float = 8.0
    # Seconds a service gets to answer its readiness check after it starts.
    ready_timeout: float = 60.0
    # Inherited by both services, under the stack's wiring: LOG_LEVEL, DB_POOL_MAX_SIZE, ... pass through.
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # Set on both services, over the stack's wiring.
    env: Mapping[str, str] = field(default_factory=dict)
    # Set on one service (by name: "event", "booking"), over everything above.
    service_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # The throw-away PostgreSQL, when the stack starts one: its port (0: a free one), and
    # whether its directory stays after the stop.
    postgres_port: int = 0
    keep_data: bool = False
    # Where the dev token signing key, JWKS and certificates live (tools.devkeys); None is the
    # machine's default ($TICKETFLOW_DEV_HOME, else ~/.local/state/ticketflow-dev), the one
    # `bazel run //tools/token` signs with. Tests give a directory of their own, so that runs
    # share no state. Unused for a group of settings the caller sets itself (see environment.py).
    dev_home: Path | None = None

    def database(self, service: str) -> str:
        """The database name of the service named `service` ("event" or "booking")."""
        return {"event": self.event_db, "booking": self.booking_db}[service]
