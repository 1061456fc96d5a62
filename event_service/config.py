"""The event service's settings, from the environment (and `.env`); see README.md."""

from __future__ import annotations

from dataclasses import dataclass

from event_service.domain import Limits
from service_runtime.config import DatabaseSettings, Env, ServerSettings

DEFAULT_HTTP_PORT = 8082
DEFAULT_GRPC_PORT = 9092
DEFAULT_DB_NAME = "test_db_2"


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings
    server: ServerSettings
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
            limits=Limits(
                max_total_seats=env.integer("MAX_TOTAL_SEATS", defaults.max_total_seats, min=1, max=2_000_000_000),
                max_seats_per_booking=env.integer(
                    "MAX_SEATS_PER_BOOKING", defaults.max_seats_per_booking, min=1, max=1_000_000
                ),
            ),
            batching=env.flag("RESERVATION_BATCHING", True),
            max_batch=env.integer("RESERVATION_BATCH_MAX", 256, min=1, max=10_000),
        )
