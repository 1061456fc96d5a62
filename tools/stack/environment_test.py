"""A service's environment: the stack's wiring, and what callers add, in a fixed precedence."""

from __future__ import annotations

from dataclasses import replace

from service_runtime.config import Secret
from tools.stack.config import Ports, StackConfig
from tools.stack.database import DatabaseServer
from tools.stack.environment import service_environment
from tools.stack.services import BOOKING, EVENT

DATABASE = DatabaseServer("db.example", 5433, "tf", Secret("pw"), "require")
PORTS = Ports(event_http=8082, event_grpc=9092, booking_http=8081, booking_grpc=9091)

# HTTP_PORT inherited from the caller's environment: the stack's wiring wins over it.
BASE = StackConfig(PORTS, "events", "bookings", environ={"LOG_LEVEL": "DEBUG", "HTTP_PORT": "1"})


def test_each_service_gets_its_ports_database_and_the_inherited_environment() -> None:
    env = service_environment(EVENT, BASE, DATABASE, {})
    assert env["HTTP_PORT"] == "8082" and env["GRPC_PORT"] == "9092"
    assert env["DB_NAME"] == "events" and env["DB_HOST"] == "db.example" and env["DB_PASSWORD"] == "pw"
    assert env["LOG_LEVEL"] == "DEBUG"
    assert "EVENT_SERVICE_ADDR" not in env


def test_the_booking_service_is_told_where_the_event_service_listens() -> None:
    env = service_environment(BOOKING, replace(BASE, host="0.0.0.0"), DATABASE, {})
    assert env["DB_NAME"] == "bookings" and env["HTTP_PORT"] == "8081"
    assert env["EVENT_SERVICE_ADDR"] == "127.0.0.1:9092"


def test_the_shutdown_grace_fits_in_the_stop_timeout_unless_inherited() -> None:
    assert service_environment(EVENT, replace(BASE, stop_timeout=8.0), DATABASE, {})["SHUTDOWN_GRACE_SECONDS"] == "5"
    inherited = replace(BASE, environ={"SHUTDOWN_GRACE_SECONDS": "2"})
    assert service_environment(EVENT, inherited, DATABASE, {})["SHUTDOWN_GRACE_SECONDS"] == "2"


def test_every_service_then_one_service_then_one_start_override_the_wiring() -> None:
    stack = replace(
        BASE,
        env={"GRPC_PORT": "1", "TLS_CERT": "/c.pem"},
        service_env={"booking": {"TLS_CERT": "/b.pem", "PENDING_TIMEOUT_SECONDS": "2"}},
    )
    event = service_environment(EVENT, stack, DATABASE, {})
    booking = service_environment(BOOKING, stack, DATABASE, {"PENDING_TIMEOUT_SECONDS": "120"})
    assert event["GRPC_PORT"] == booking["GRPC_PORT"] == "1"
    assert event["TLS_CERT"] == "/c.pem" and booking["TLS_CERT"] == "/b.pem"
    assert booking["PENDING_TIMEOUT_SECONDS"] == "120" and "PENDING_TIMEOUT_SECONDS" not in event
