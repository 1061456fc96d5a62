"""The event service as its own process, with the dev identity and certificates (as the dev stack
runs it): start-up errors, migrations, graceful SIGTERM, who may call it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from google.protobuf import timestamp_pb2

from service_runtime.auth.tls import ChannelTls
from service_runtime.config import Env
from ticketflow.event.v1 import event_service_pb2 as pb
from ticketflow.event.v1 import event_service_pb2_grpc as pb_grpc
from tools.audit.invariants import assert_seats_consistent
from tools.devkeys import dev_identity, dev_tls, mint_token, service_env
from tools.stack.services import EVENT, Service, launch
from tools.supervisor.child import run_to_exit
from tools.supervisor.output import LogDirectory
from tools.testing.postgres import PostgresServer, free_port

SECRET = "s3cr3t-never-logged"
MIGRATIONS = Path(__file__).parent / "migrations"


@pytest.fixture
def empty_db(postgresql_server: PostgresServer) -> Iterator[str]:
    with postgresql_server.database(prefix="proc") as name:
        yield name


@pytest.fixture
def dev_home(tmp_path: Path) -> Path:
    """Dev credentials of this test alone: its own signing key, CA and certificates."""
    return tmp_path / "dev"


@pytest.fixture
def env(postgresql_server: PostgresServer, empty_db: str, tmp_path: Path, dev_home: Path) -> dict[str, str]:
    # An empty .env of our own, so that no .env lying around can change the test.
    (tmp_path / "empty.env").write_text("")
    return {
        **postgresql_server.env(empty_db),
        # AUTH_* (the dev JWKS) and GRPC_TLS_* (mutual TLS with the dev CA).
        **service_env("event_service", dev_home),
        "TICKETFLOW_DEV_HOME": str(dev_home),
        "DB_PASSWORD": SECRET,
        "HTTP_PORT": str(free_port()),
        "GRPC_PORT": str(free_port()),
        "SERVER_HOST": "127.0.0.1",
        "SHUTDOWN_GRACE_SECONDS": "10",
        "ENV_FILE": str(tmp_path / "empty.env"),
    }


def booking_service_channel(env: dict[str, str], dev_home: Path) -> grpc.aio.Channel:
    """A channel to the gRPC port set up as the booking service's is (EVENT_SERVICE_TLS_*)."""
    tls = ChannelTls.from_env(Env(service_env("booking_service", dev_home)))
    assert tls is not None
    return grpc.aio.secure_channel(f"127.0.0.1:{env['GRPC_PORT']}", tls.credentials(), options=tls.options())


def admin(dev_home: Path) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {mint_token(dev_identity(dev_home), 'root', admin=True)}"),)


def run_service(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The event service with exactly `env` on top of ours, run to exit: it must fail or finish."""
    return run_to_exit(EVENT.command(*args), {**os.environ, **env}, timeout)


@pytest.fixture
def service(env: dict[str, str], empty_db: str, tmp_path: Path) -> Iterator[Service]:
    # Started alone, with the environment above, not the stack's: what these tests vary.
    proc = launch(
        EVENT,
        {**os.environ, **env},
        LogDirectory(tmp_path),
        host="127.0.0.1",
        http_port=int(env["HTTP_PORT"]),
        grpc_port=int(env["GRPC_PORT"]),
        database=empty_db,
    )
    try:
        proc.wait_ready(timeout=30)
        yield proc
    finally:
        proc.child.kill()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HTTP_PORT", "http"),
        ("GRPC_PORT", "70000"),
        ("DB_SSLMODE", "sometimes"),
        ("DB_POOL_MAX_SIZE", "0"),
        ("AUTH_ALGORITHMS", "HS256"),
        ("AUTH_JWKS_URL", "http://idp.example.test/jwks.json"),
        ("AUTH_ADMIN_ROLE", "two words"),
        ("GRPC_TLS_KEY_FILE", "/nonexistent/key.pem"),
        ("GRPC_TLS_CLIENT_CA_FILE", "/nonexistent/ca.pem"),
        ("SEAT_CALLERS", " , "),
    ],
)
def test_a_malformed_variable_stops_start_up_with_one_line_naming_it(
    env: dict[str, str], variable: str, value: str
) -> None:
    result = run_service({**env, variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], result.stderr


def test_an_unreachable_database_is_one_clear_line_without_the_password(env: dict[str, str]) -> None:
    result = run_service({**env, "DB_PORT": str(free_port()), "DB_CONNECT_TIMEOUT": "2"})
    assert result.returncode == 2
    assert "cannot connect" in result.stderr and "127.0.0.1" in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_port_in_use_is_one_clear_line(env: dict[str, str], service: Service) -> None:
    result = run_service({**env, "GRPC_PORT": str(free_port())})
    assert result.returncode == 2
    assert "HTTP_PORT" in result.stderr and "in use" in result.stderr.lower()
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_env_file_is_read_and_the_environment_wins(env: dict[str, str], tmp_path: Path) -> None:
    dotenv = tmp_path / "service.env"
    # GRPC_PORT is malformed in the file but set in the environment: only the file's
    # MAX_SEATS_PER_BOOKING can stop start-up, and only if the file was read.
    dotenv.write_text("# a comment\nMAX_SEATS_PER_BOOKING=lots\nGRPC_PORT=notaport\n")
    result = run_service({**env, "ENV_FILE": str(dotenv)}, timeout=20)
    assert result.returncode == 2 and "MAX_SEATS_PER_BOOKING" in result.stderr, result.stderr


def test_two_migrate_commands_at_once_both_succeed_and_apply_once(
    env: dict[str, str], postgresql_server: PostgresServer, empty_db: str
) -> None:
    results: list[int] = []

    def migrate() -> None:
        results.append(run_service(env, "migrate").returncode)

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [0, 0]
    assert run_service(env, "migrate").returncode == 0
    with psycopg.connect(postgresql_server.dsn(empty_db)) as conn:
        # Each migration of event_service/migrations, once.
        versions = sorted((int(path.name.split("_")[0]),) for path in MIGRATIONS.glob("*.sql"))
        assert len(versions) >= 3
        assert conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall() == versions


def test_logs_never_show_the_password(service: Service) -> None:
    assert "serving HTTP" in service.logs()
    assert SECRET not in service.logs()


async def test_sigterm_under_load_finishes_calls_in_flight_and_exits_0(
    env: dict[str, str], service: Service, postgresql_server: PostgresServer, empty_db: str, dev_home: Path
) -> None:
    async with booking_service_channel(env, dev_home) as channel:
        stub = pb_grpc.EventServiceStub(channel)
        event = await stub.CreateEvent(
            pb.CreateEventRequest(
                name="Gig", start_time=timestamp_pb2.Timestamp(seconds=1_900_000_000), total_seats=100_000
            ),
            metadata=admin(dev_home),
            timeout=5,
        )
        confirmed: list[str] = []
        refused: list[grpc.StatusCode] = []
        stop = asyncio.Event()

        async def caller() -> None:
            while not stop.is_set():
                booking = str(uuid.uuid4())
                try:
                    await stub.ReserveSeats(
                        pb.ReserveSeatsRequest(booking_id=booking, event_id=event.id, seats=1), timeout=15
                    )
                    confirmed.append(booking)
                except grpc.aio.AioRpcError as error:
                    refused.append(error.code())
                    return

        callers = [asyncio.create_task(caller()) for _ in range(32)]
        await asyncio.sleep(1.5)
        assert confirmed, service.logs()
        service.child.signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(service.wait, 30)
        stop.set()
        await asyncio.gather(*callers)

    assert exit_code == 0, service.logs()
    # Calls refused after SIGTERM are refused as UNAVAILABLE (retryable), never half-done.
    assert set(refused) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, refused
    dsn = postgresql_server.dsn(empty_db)
    with psycopg.connect(dsn) as conn:
        reserved = {str(r[0]) for r in conn.execute("SELECT booking_id FROM reservations WHERE state = 'RESERVED'")}
    # Every call answered OK holds its seat, and no seat was taken without an OK answer.
    assert reserved == set(confirmed)
    assert_seats_consistent(dsn)
    assert "stopped" in service.logs()


@pytest.mark.parametrize("variable", ["AUTH_JWKS_FILE", "AUTH_ISSUER", "AUTH_AUDIENCE", "GRPC_TLS_CERT_FILE"])
def test_incomplete_identity_settings_stop_start_up_with_one_line_naming_them(
    env: dict[str, str], variable: str
) -> None:
    result = run_service({name: value for name, value in env.items() if name != variable})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], result.stderr


def test_an_unreadable_jwks_file_stops_start_up_with_an_error_naming_it(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_text("not json")
    result = run_service({**env, "AUTH_JWKS_FILE": str(tmp_path / "jwks.json")})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert "AUTH_JWKS_FILE" in lines[-1] and "Traceback" not in result.stderr, result.stderr


def test_an_unreadable_jwks_file_is_the_only_line_printed(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_text("not json")
    result = run_service({**env, "AUTH_JWKS_FILE": str(tmp_path / "jwks.json")})
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def _post_event(service: Service, headers: dict[str, str]) -> int:
    body = b'{"name": "Gig", "startTime": "2027-03-01T19:30:00Z", "totalSeats": 10}'
    request = urllib.request.Request(
        f"{service.http_url}/events", data=body, headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        with error:  # an HTTPError holds the response open; Python 3.14 warns if it is not closed
            return error.code


async def test_the_running_service_creates_events_only_for_an_admin_token(service: Service, dev_home: Path) -> None:
    identity = dev_identity(dev_home)
    assert await asyncio.to_thread(_post_event, service, {}) == 401
    user = {"Authorization": f"Bearer {mint_token(identity, 'alice')}"}
    assert await asyncio.to_thread(_post_event, service, user) == 403
    root = {"Authorization": f"Bearer {mint_token(identity, 'root', admin=True)}"}
    assert await asyncio.to_thread(_post_event, service, root) == 201


async def test_the_running_service_takes_seats_only_over_mutual_tls_from_the_booking_service(
    env: dict[str, str], service: Service, dev_home: Path, postgresql_server: PostgresServer, empty_db: str
) -> None:
    async with booking_service_channel(env, dev_home) as channel:
        stub = pb_grpc.EventServiceStub(channel)
        event = await stub.CreateEvent(
            pb.CreateEventRequest(name="Gig", start_time=timestamp_pb2.Timestamp(seconds=1_900_000_000), total_seats=5),
            metadata=admin(dev_home),
            timeout=5,
        )
        target = f"127.0.0.1:{env['GRPC_PORT']}"
        no_certificate = grpc.ssl_channel_credentials(root_certificates=dev_tls(dev_home).ca_file.read_bytes())
        for outsider in (grpc.aio.insecure_channel(target), grpc.aio.secure_channel(target, no_certificate)):
            async with outsider:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await pb_grpc.EventServiceStub(outsider).ReserveSeats(
                        pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=event.id, seats=1),
                        metadata=admin(dev_home),
                        timeout=5,
                    )
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        with psycopg.connect(postgresql_server.dsn(empty_db)) as conn:
            assert conn.execute("SELECT count(*) FROM reservations").fetchone() == (0,)
        reserved = await stub.ReserveSeats(
            pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=event.id, seats=2), timeout=5
        )
        assert reserved.state == pb.Reservation.RESERVED
        assert (await stub.GetEvent(pb.GetEventRequest(event_id=event.id), timeout=5)).available_seats == 3
