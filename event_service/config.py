"""The event service's settings, from the environment (and `.env`); see README.md."""

from __future__ import annotations

from dataclasses import dataclass

from event_service.domain import Limits
from service_runtime.auth.settings import AuthSettings
from service_runtime.auth.tls import ServerTls
from service_runtime.config import ConfigError, DatabaseSettings, Env, ServerSettings

DEFAULT_HTTP_PORT = 8082
DEFAULT_GRPC_PORT = 9092
DEFAULT_DB_NAME = "test_db_2"


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings
    server: ServerSettings
    # TLS of the gRPC port (GRPC_TLS_*); with a client CA, callers must show a certificate.
    grpc_tls: ServerTls | None
    auth: AuthSettings
    # Client certificate names (DNS SAN or CN) allowed to take and give back seats.
    seat_callers: frozenset[str]
    limits: Limits
    # Coalesce concurrent ReserveSeats calls per event into one transaction (coalescer.py).
    batching: bool
    max_batch: int

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        defaults = Limits()
        return cls(
            database=DatabaseSettings.from_env(env, default_name=DEFAULT_DB_NAME),
            server=ServerSettings.from_env(
                env, default_http_port=DEFAULT_HTTP_PORT, default_grpc_port=DEFAULT_GRPC_PORT
            ),
            grpc_tls=ServerTls.from_env(env),
            auth=AuthSettings.from_env(env),
            seat_callers=_names("SEAT_CALLERS", env.text("SEAT_CALLERS", "booking-service")),
            limits=Limits(
                max_total_seats=env.integer("MAX_TOTAL_SEATS", defaults.max_total_seats, min=1, max=2_000_000_000),
                max_seats_per_booking=env.integer(
                    "MAX_SEATS_PER_BOOKING", defaults.max_seats_per_booking, min=1, max=1_000_000
                ),
            ),
            batching=env.flag("RESERVATION_BATCHING", True),
            max_batch=env.integer("RESERVATION_BATCH_MAX", 256, min=1, max=10_000),
        )


def _names(variable: str, raw: str) -> frozenset[str]:
    names = frozenset(name.strip() for name in raw.split(",") if name.strip())
    if not names:
        raise ConfigError(f"{variable}: expected comma-separated certificate names, got {raw!r}")
    return names
