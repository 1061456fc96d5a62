"""A service's environment: the stack's wiring, the dev credentials, and what callers add, in a
fixed precedence."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from service_runtime.auth.jwks import JwksKeySet
from service_runtime.auth.principal import Principal
from service_runtime.auth.settings import AuthSettings
from service_runtime.auth.tls import ChannelTls, ServerTls
from service_runtime.auth.verifier import TokenVerifier
from service_runtime.config import Env, Secret
from tools.stack.config import Ports, StackConfig
from tools.stack.database import DatabaseServer
from tools.stack.environment import service_environment
from tools.stack.services import BOOKING, EVENT
from tools.stack.stack import Stack
from tools.supervisor.output import LogDirectory

DATABASE = DatabaseServer("db.example", 5433, "tf", Secret("pw"), "require")
PORTS = Ports(event_http=8082, event_grpc=9092, booking_http=8081, booking_grpc=9091)


@pytest.fixture
def base(tmp_path: Path) -> StackConfig:
    # HTTP_PORT inherited from the caller's environment: the stack's wiring wins over it. The
    # dev credentials in a directory of the test's own, never the machine's.
    return StackConfig(
        PORTS, "events", "bookings", environ={"LOG_LEVEL": "DEBUG", "HTTP_PORT": "1"}, dev_home=tmp_path / "dev"
    )


def test_each_service_gets_its_ports_database_and_the_inherited_environment(base: StackConfig) -> None:
    env = service_environment(EVENT, base, DATABASE, {})
    assert env["HTTP_PORT"] == "8082" and env["GRPC_PORT"] == "9092"
    assert env["DB_NAME"] == "events" and env["DB_HOST"] == "db.example" and env["DB_PASSWORD"] == "pw"
    assert env["LOG_LEVEL"] == "DEBUG"
    assert "EVENT_SERVICE_ADDR" not in env


def test_the_booking_service_is_told_where_the_event_service_listens(base: StackConfig) -> None:
    env = service_environment(BOOKING, replace(base, host="0.0.0.0"), DATABASE, {})
    assert env["DB_NAME"] == "bookings" and env["HTTP_PORT"] == "8081"
    assert env["EVENT_SERVICE_ADDR"] == "127.0.0.1:9092"


def test_the_shutdown_grace_fits_in_the_stop_timeout_unless_inherited(base: StackConfig) -> None:
    assert service_environment(EVENT, replace(base, stop_timeout=8.0), DATABASE, {})["SHUTDOWN_GRACE_SECONDS"] == "5"
    inherited = replace(base, environ={"SHUTDOWN_GRACE_SECONDS": "2"})
    assert service_environment(EVENT, inherited, DATABASE, {})["SHUTDOWN_GRACE_SECONDS"] == "2"


def test_every_service_then_one_service_then_one_start_override_the_wiring(base: StackConfig) -> None:
    stack = replace(
        base,
        env={"GRPC_PORT": "1", "LOG_FORMAT": "json"},
        service_env={"booking": {"LOG_FORMAT": "text", "PENDING_TIMEOUT_SECONDS": "2"}},
    )
    event = service_environment(EVENT, stack, DATABASE, {})
    booking = service_environment(BOOKING, stack, DATABASE, {"PENDING_TIMEOUT_SECONDS": "120"})
    assert event["GRPC_PORT"] == booking["GRPC_PORT"] == "1"
    assert event["LOG_FORMAT"] == "json" and booking["LOG_FORMAT"] == "text"
    assert booking["PENDING_TIMEOUT_SECONDS"] == "120" and "PENDING_TIMEOUT_SECONDS" not in event


def test_identity_and_mutual_tls_are_on_with_the_dev_credentials(base: StackConfig) -> None:
    event = service_environment(EVENT, base, DATABASE, {})
    booking = service_environment(BOOKING, base, DATABASE, {})
    assert base.dev_home is not None
    for env in (event, booking):
        assert AuthSettings.from_env(Env(env)).jwks_file == base.dev_home / "jwks.json"
    server, channel = ServerTls.from_env(Env(event)), ChannelTls.from_env(Env(booking))
    assert server is not None and server.client_ca is not None
    assert channel is not None and channel.certificate_chain is not None
    assert not any(name.startswith("EVENT_SERVICE_TLS_") for name in event)
    assert not any(name.startswith("GRPC_TLS_") for name in booking)


def test_a_caller_with_its_own_identity_provider_keeps_the_dev_certificates(base: StackConfig, tmp_path: Path) -> None:
    own = {"AUTH_JWKS_URL": "https://idp.example/jwks", "AUTH_ISSUER": "https://idp.example/", "AUTH_AUDIENCE": "tf"}
    for config in (replace(base, env=own), replace(base, environ={**base.environ, **own})):
        event = service_environment(EVENT, config, DATABASE, {})
        assert {name: value for name, value in event.items() if name.startswith("AUTH_")} == own
        assert "GRPC_TLS_CERT_FILE" in event
        with pytest.raises(LookupError, match="own AUTH_"):
            Stack(config, LogDirectory(tmp_path)).identity  # noqa: B018


def test_certificates_given_for_one_service_replace_the_dev_ones_on_both(base: StackConfig) -> None:
    config = replace(base, service_env={"event": {"GRPC_TLS_CERT_FILE": "/c.pem", "GRPC_TLS_KEY_FILE": "/k.pem"}})
    event = service_environment(EVENT, config, DATABASE, {})
    booking = service_environment(BOOKING, config, DATABASE, {})
    assert "GRPC_TLS_CLIENT_CA_FILE" not in event and event["GRPC_TLS_CERT_FILE"] == "/c.pem"
    assert not any(name.startswith("EVENT_SERVICE_TLS_") for name in booking)
    assert "AUTH_JWKS_FILE" in booking


async def test_the_stack_mints_tokens_its_services_accept(base: StackConfig, tmp_path: Path) -> None:
    stack = Stack(base, LogDirectory(tmp_path))
    settings = AuthSettings.from_env(Env(service_environment(BOOKING, base, DATABASE, {})))
    keys = JwksKeySet.from_settings(settings)
    await keys.load()
    verifier = TokenVerifier(settings, keys)
    assert verifier.verify(stack.token("alice")) == Principal("alice", is_admin=False)
    assert verifier.verify(stack.token("root", admin=True)) == Principal("root", is_admin=True)
