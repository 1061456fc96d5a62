"""The booking service's settings, from the environment (and `.env`); see README.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from booking_service.domain import Limits
from booking_service.event_client import ClientSettings
from booking_service.service import Batching
from service_runtime.auth.settings import AuthSettings
from service_runtime.auth.tls import ChannelTls, ServerTls
from service_runtime.config import ConfigError, DatabaseSettings, Env, ServerSettings
from service_runtime.faults import Faults

DEFAULT_HTTP_PORT = 8081
DEFAULT_GRPC_PORT = 9091
DEFAULT_DB_NAME = "test_db_1"
DEFAULT_EVENT_SERVICE_ADDR = "localhost:9092"


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings
    server: ServerSettings
    # Optional TLS of the service's own gRPC port (GRPC_TLS_*).
    grpc_tls: ServerTls | None
    auth: AuthSettings
    limits: Limits
    event_service: ClientSettings
    batching: Batching
    pending_timeout: timedelta
    reconcile_interval: timedelta
    retry_after: timedelta
    # How long a hold keeps its seats (HOLD_TTL_SECONDS), and how often every replica looks
    # for holds that ran out (HOLD_SWEEP_INTERVAL_SECONDS): a hold ends EXPIRED at most about
    # one interval after its expire_time.
    hold_ttl: timedelta
    hold_sweep_interval: timedelta
    # How often every replica asks the event service for cancelled events.
    event_cancellation_poll: timedelta
    # How long a waiting-list offer keeps its seats for its user (WAITLIST_OFFER_TTL_SECONDS,
    # from when the offer is recorded), and how often every replica asks the event service
    # for new offers (WAITLIST_POLL_SECONDS): an offer is recorded about one poll after it is made.
    waitlist_offer_ttl: timedelta
    waitlist_poll: timedelta
    # Test-only crash points (service_runtime.faults); empty in production.
    fault_points: frozenset[str]

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
            limits=Limits(
                max_seats_per_booking=env.integer(
                    "MAX_SEATS_PER_BOOKING", defaults.max_seats_per_booking, min=1, max=1_000_000
                ),
                max_seats_per_user_per_event=env.integer(
                    "MAX_SEATS_PER_USER_PER_EVENT", defaults.max_seats_per_user_per_event, min=1, max=1_000_000
                ),
            ),
            event_service=ClientSettings(
                address=_address(env.text("EVENT_SERVICE_ADDR", DEFAULT_EVENT_SERVICE_ADDR)),
                timeout=env.number("EVENT_SERVICE_TIMEOUT_SECONDS", 2.0, min=0.01),
                attempts=env.integer("EVENT_SERVICE_ATTEMPTS", 3, min=1, max=10),
                tls=ChannelTls.from_env(env),
            ),
            # Off: every create request is a batch of its own (one INSERT, one reservation
            # call, one UPDATE each), for comparison and debugging.
            batching=Batching() if env.flag("EVENT_SERVICE_BATCHING", True) else Batching(max_batch=1, in_flight=256),
            pending_timeout=timedelta(seconds=env.number("PENDING_TIMEOUT_SECONDS", 30.0, min=0.1)),
            reconcile_interval=timedelta(seconds=env.number("RECONCILE_INTERVAL_SECONDS", 5.0, min=0.1)),
            retry_after=timedelta(seconds=env.integer("RETRY_AFTER_SECONDS", 5, min=1, max=3600)),
            # Up to a day: pretix holds a cart for 30 minutes by default; far longer holds
            # would keep seats off sale for nobody.
            hold_ttl=timedelta(seconds=env.integer("HOLD_TTL_SECONDS", 600, min=1, max=86_400)),
            hold_sweep_interval=_seconds(env, "HOLD_SWEEP_INTERVAL_SECONDS", 1.0, 0.05, 60.0),
            event_cancellation_poll=_seconds(env, "EVENT_CANCELLATION_POLL_SECONDS", 2.0, 0.05, 3600.0),
            # Up to two days: pretix offers a waiting-list seat for 48 hours by default.
            waitlist_offer_ttl=timedelta(seconds=env.integer("WAITLIST_OFFER_TTL_SECONDS", 1800, min=1, max=172_800)),
            waitlist_poll=_seconds(env, "WAITLIST_POLL_SECONDS", 1.0, 0.05, 3600.0),
            fault_points=Faults.points_from_env(env),
        )


def _seconds(env: Env, name: str, default: float, low: float, high: float) -> timedelta:
    value = env.number(name, default, min=low)
    if value > high:
        raise ConfigError(f"{name}: {value:g} is outside {low:g}..{high:g} seconds")
    return timedelta(seconds=value)


def _address(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"EVENT_SERVICE_ADDR: expected host:port, got {value!r}")
    return value
