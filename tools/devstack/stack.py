"""The running system: a PostgreSQL, event_service and booking_service, started in order and
stopped in reverse (services first, so that they finish their requests while the database is
still there).

The services are the Bazel-built binaries in this target's runfiles, started as child
processes with their output prefixed (`[event   ]`, `[booking ]`, `[postgres]`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from service_runtime.config import Secret
from tools.devstack.databases import Server
from tools.devstack.options import Options
from tools.embedded_postgres.server import DURABLE, EmbeddedPostgres
from tools.supervisor.child import Child, PrefixedOutput
from tools.supervisor.http import wait_for_http
from tools.supervisor.runfiles import runfile

EVENT_BINARY = "event_service/event_service"
BOOKING_BINARY = "booking_service/booking_service"
READY_TIMEOUT = 60.0


class StartupFailed(RuntimeError):
    """A part of the stack did not come up; one line saying which (its log is above)."""


class Interrupted(Exception):
    """A stop was asked for while the stack was starting."""


@dataclass
class Service:
    name: str
    child: Child
    http_url: str
    grpc_address: str
    database: str


def _client_host(host: str) -> str:
    """Where a client on this machine reaches a server listening on `host`."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


class DevStack:
    def __init__(self, options: Options, output: PrefixedOutput, environ: Mapping[str, str] | None = None) -> None:
        self.options = options
        self.output = output
        # The services inherit our environment (LOG_LEVEL, DB_POOL_MAX_SIZE, ... pass through);
        # what the stack decides (ports, databases) is set on top.
        self._environ = dict(os.environ if environ is None else environ)
        self.postgres: EmbeddedPostgres | None = None
        self.server: Server | None = None
        self.event: Service | None = None
        self.booking: Service | None = None

    def start(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Starts everything and waits until both services are ready. Raises StartupFailed,
        or Interrupted when `should_stop()` turns true meanwhile; call `stop()` in any case."""
        opts = self.options
        self.server = Server.from_env() if opts.external_db else self._start_postgres()
        created = self.server.ensure_databases([opts.event_db, opts.booking_db])
        if created:
            self.output.line("stack", f"created database(s) {', '.join(created)}")
        host = _client_host(opts.host)
        ports = opts.ports
        self.event = self._start_service(
            "event",
            EVENT_BINARY,
            database=opts.event_db,
            http_port=ports.event_http,
            grpc_port=ports.event_grpc,
            extra={},
        )
        self._wait_ready(self.event, should_stop)
        self.booking = self._start_service(
            "booking",
            BOOKING_BINARY,
            database=opts.booking_db,
            http_port=ports.booking_http,
            grpc_port=ports.booking_grpc,
            extra={"EVENT_SERVICE_ADDR": f"{host}:{ports.event_grpc}"},
        )
        self._wait_ready(self.booking, should_stop)

    def services(self) -> list[Service]:
        return [s for s in (self.event, self.booking) if s is not None]

    def exited(self) -> Service | None:
        """A service that has exited (it should not have), if any."""
        return next((s for s in self.services() if s.child.exit_code() is not None), None)

    def postgres_exited(self) -> bool:
        return (
            self.postgres is not None and self.postgres.process is not None and self.postgres.process.poll() is not None
        )

    def stop(self) -> dict[str, int | None]:
        """Stops the services (SIGTERM, then SIGKILL after the stop timeout), then PostgreSQL
        (fast shutdown), and removes its directory unless --keep-data; returns the services'
        exit statuses."""
        statuses = {}
        for service in reversed(self.services()):
            statuses[service.name] = service.child.stop(self.options.stop_timeout)
        if self.postgres is not None:
            self.postgres.stop()
            if self.postgres.base is not None:
                kept = "kept" if self.options.keep_data else "removed"
                self.output.line("stack", f"PostgreSQL stopped; {self.postgres.base} {kept}")
        return statuses

    def _start_postgres(self) -> Server:
        self.postgres = EmbeddedPostgres(
            port=self.options.postgres_port, settings=DURABLE, prefix="tfdev-", keep=self.options.keep_data
        )
        self.postgres.prepare()
        process = self.postgres.launch(output=-1)  # subprocess.PIPE: its log, prefixed, to ours
        assert process.stdout is not None
        self.output.copy("postgres", process.stdout)
        self.postgres.wait_ready()
        pg = self.postgres
        return Server(pg.host, pg.port, pg.user, Secret(""), "disable")

    def _start_service(
        self, name: str, binary: str, *, database: str, http_port: int, grpc_port: int, extra: dict[str, str]
    ) -> Service:
        assert self.server is not None
        env = {
            **self._environ,
            **self.server.service_env(database),
            "SERVER_HOST": self.options.host,
            "HTTP_PORT": str(http_port),
            "GRPC_PORT": str(grpc_port),
            # Our own output is line by line; so should theirs be.
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
        # Leave the services time to finish their requests within the stack's stop timeout.
        env.setdefault("SHUTDOWN_GRACE_SECONDS", str(max(1.0, self.options.stop_timeout - 3)))
        child = Child(name, [runfile(binary)], env, self.output).start()
        host = _client_host(self.options.host)
        return Service(name, child, f"http://{host}:{http_port}", f"{host}:{grpc_port}", database)

    def _wait_ready(self, service: Service, should_stop: Callable[[], bool]) -> None:
        url = f"{service.http_url}/readyz"

        def alive() -> None:
            if should_stop():
                raise Interrupted()
            if (code := service.child.exit_code()) is not None:
                raise StartupFailed(
                    f"{service.name}_service exited with status {code} while starting (its log is above)"
                )

        if not wait_for_http(url, timeout=READY_TIMEOUT, alive=alive):
            raise StartupFailed(f"{service.name}_service not ready at {url} after {READY_TIMEOUT:g} s")
