"""Mutual TLS over a real grpc.aio server on 127.0.0.1:0, with the dev CA's certificates."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service_runtime.auth.tls import ChannelTls, ServerTls, peer_identities
from service_runtime.config import ConfigError, Env
from tools.devkeys import DevTls, dev_tls, service_env


@dataclass
class Recorder(health_pb2_grpc.HealthServicer):
    """Answers Check and remembers who the caller was."""

    callers: list[set[str]] = field(default_factory=list)

    async def Check(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        self.callers.append(peer_identities(context))
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


@dataclass
class Server:
    port: int
    recorder: Recorder


StartServer = Callable[[grpc.ServerCredentials | None], Awaitable[Server]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "dev"


@pytest.fixture
def tls(home: Path) -> DevTls:
    return dev_tls(home)


@pytest.fixture
async def servers() -> AsyncIterator[StartServer]:
    started: list[grpc.aio.Server] = []

    async def start(credentials: grpc.ServerCredentials | None) -> Server:
        server = grpc.aio.server()
        recorder = Recorder()
        health_pb2_grpc.add_HealthServicer_to_server(recorder, server)
        if credentials is None:
            port = server.add_insecure_port("127.0.0.1:0")
        else:
            port = server.add_secure_port("127.0.0.1:0", credentials)
        await server.start()
        started.append(server)
        return Server(port, recorder)

    yield start
    for server in started:
        await server.stop(0)


async def check(
    port: int, credentials: grpc.ChannelCredentials | None, options: Sequence[tuple[str, str]] = ()
) -> None:
    target = f"127.0.0.1:{port}"
    channel = (
        grpc.aio.insecure_channel(target)
        if credentials is None
        else grpc.aio.secure_channel(target, credentials, options=list(options))
    )
    async with channel:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)


def server_credentials(env: Env) -> grpc.ServerCredentials | None:
    tls = ServerTls.from_env(env)
    return None if tls is None else tls.credentials()


def channel_credentials(env: Env) -> tuple[grpc.ChannelCredentials, list[tuple[str, str]]] | None:
    tls = ChannelTls.from_env(env)
    return None if tls is None else (tls.credentials(), tls.options())


def client(
    tls: DevTls, *, cert: Path | None = None, key: Path | None = None, name: str = ""
) -> grpc.ChannelCredentials:
    env = {"EVENT_SERVICE_TLS_CA_FILE": str(tls.ca_file), "EVENT_SERVICE_TLS_SERVER_NAME": name}
    if cert is not None and key is not None:
        env |= {"EVENT_SERVICE_TLS_CERT_FILE": str(cert), "EVENT_SERVICE_TLS_KEY_FILE": str(key)}
    configured = channel_credentials(Env(env))
    assert configured is not None
    return configured[0]


async def test_the_booking_service_certificate_is_accepted_and_named(home: Path, servers: StartServer) -> None:
    server = await servers(server_credentials(Env(service_env("event_service", home))))
    configured = channel_credentials(Env(service_env("booking_service", home)))
    assert configured is not None
    await check(server.port, *configured)
    assert server.recorder.callers == [{"booking-service"}]


async def test_a_client_without_a_certificate_is_refused(tls: DevTls, home: Path, servers: StartServer) -> None:
    server = await servers(server_credentials(Env(service_env("event_service", home))))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await check(server.port, client(tls))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert server.recorder.callers == []


async def test_a_certificate_from_another_ca_is_refused(
    tls: DevTls, home: Path, tmp_path: Path, servers: StartServer
) -> None:
    server = await servers(server_credentials(Env(service_env("event_service", home))))
    stranger = dev_tls(tmp_path / "elsewhere")  # same names, another CA
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await check(server.port, client(tls, cert=stranger.booking_cert, key=stranger.booking_key))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert server.recorder.callers == []


async def test_a_plaintext_client_is_refused(home: Path, servers: StartServer) -> None:
    server = await servers(server_credentials(Env(service_env("event_service", home))))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await check(server.port, None)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert server.recorder.callers == []


async def test_a_client_does_not_trust_a_server_from_another_ca(
    home: Path, tmp_path: Path, servers: StartServer
) -> None:
    server = await servers(server_credentials(Env(service_env("event_service", tmp_path / "elsewhere"))))
    configured = channel_credentials(Env(service_env("booking_service", home)))
    assert configured is not None
    with pytest.raises(grpc.aio.AioRpcError):
        await check(server.port, *configured)


async def test_plaintext_and_cert_less_peers_have_no_identity(tls: DevTls, servers: StartServer) -> None:
    plaintext = await servers(None)
    await check(plaintext.port, None)
    server_only = await servers(
        server_credentials(Env({"GRPC_TLS_CERT_FILE": str(tls.event_cert), "GRPC_TLS_KEY_FILE": str(tls.event_key)}))
    )
    await check(server_only.port, client(tls))
    assert plaintext.recorder.callers == server_only.recorder.callers == [set()]


async def test_the_server_name_can_be_overridden(tls: DevTls, home: Path, servers: StartServer) -> None:
    server = await servers(server_credentials(Env(service_env("event_service", home))))
    env = {**service_env("booking_service", home), "EVENT_SERVICE_TLS_SERVER_NAME": "event-service"}
    configured = channel_credentials(Env(env))
    assert configured is not None
    await check(server.port, *configured)
    wrong = channel_credentials(Env({**env, "EVENT_SERVICE_TLS_SERVER_NAME": "booking-service"}))
    assert wrong is not None
    with pytest.raises(grpc.aio.AioRpcError):
        await check(server.port, *wrong)


def test_nothing_configured_means_plaintext() -> None:
    assert ServerTls.from_env(Env({})) is None
    assert ChannelTls.from_env(Env({})) is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GRPC_TLS_CERT_FILE": "{event_cert}"}, "GRPC_TLS_KEY_FILE is required"),
        ({"GRPC_TLS_CLIENT_CA_FILE": "{ca_file}"}, "GRPC_TLS_CERT_FILE is required"),
        ({"GRPC_TLS_CERT_FILE": "{event_cert}", "GRPC_TLS_KEY_FILE": "/nonexistent"}, "GRPC_TLS_KEY_FILE: cannot read"),
        ({"GRPC_TLS_CERT_FILE": "{event_key}", "GRPC_TLS_KEY_FILE": "{event_key}"}, "GRPC_TLS_CERT_FILE: .* no PEM"),
        (
            {"GRPC_TLS_CERT_FILE": "{event_cert}", "GRPC_TLS_KEY_FILE": "{booking_key}"},
            "GRPC_TLS_KEY_FILE: .* not the key",
        ),
        (
            {"GRPC_TLS_CERT_FILE": "{event_cert}", "GRPC_TLS_KEY_FILE": "{event_key}", "GRPC_TLS_CLIENT_CA_FILE": "/x"},
            "GRPC_TLS_CLIENT_CA_FILE: cannot read",
        ),
    ],
)
def test_half_configured_servers_are_refused(tls: DevTls, env: dict[str, str], message: str) -> None:
    paths = {name: str(getattr(tls, name)) for name in ("ca_file", "event_cert", "event_key", "booking_key")}
    with pytest.raises(ConfigError, match=message):
        ServerTls.from_env(Env({name: value.format(**paths) for name, value in env.items()}))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EVENT_SERVICE_TLS_CERT_FILE": "{booking_cert}"}, "EVENT_SERVICE_TLS_CA_FILE is required"),
        ({"EVENT_SERVICE_TLS_SERVER_NAME": "event-service"}, "EVENT_SERVICE_TLS_CA_FILE is required"),
        (
            {"EVENT_SERVICE_TLS_CA_FILE": "{ca_file}", "EVENT_SERVICE_TLS_CERT_FILE": "{booking_cert}"},
            "EVENT_SERVICE_TLS_KEY_FILE is required with EVENT_SERVICE_TLS_CERT_FILE",
        ),
        ({"EVENT_SERVICE_TLS_CA_FILE": "/nonexistent"}, "EVENT_SERVICE_TLS_CA_FILE: cannot read"),
        (
            {"EVENT_SERVICE_TLS_CA_FILE": "{ca_file}", "EVENT_SERVICE_TLS_SERVER_NAME": "a b"},
            "EVENT_SERVICE_TLS_SERVER_NAME: 'a b' is not a host name",
        ),
    ],
)
def test_half_configured_channels_are_refused(tls: DevTls, env: dict[str, str], message: str) -> None:
    paths = {name: str(getattr(tls, name)) for name in ("ca_file", "booking_cert", "booking_key")}
    with pytest.raises(ConfigError, match=message):
        ChannelTls.from_env(Env({name: value.format(**paths) for name, value in env.items()}))


def test_private_keys_stay_out_of_reprs(tls: DevTls) -> None:
    server = ServerTls.from_env(
        Env({"GRPC_TLS_CERT_FILE": str(tls.event_cert), "GRPC_TLS_KEY_FILE": str(tls.event_key)})
    )
    assert "PRIVATE KEY" not in repr(server)
