"""The running system: a PostgreSQL, event_service and booking_service, started in order and
stopped in reverse (services first, so that they finish their requests while the database is
still there).

    with Stack(config, PrefixedOutput(sys.stdout)) as stack:    # starts a throw-away PostgreSQL
        stack.booking_url                                       # http://127.0.0.1:<port>
        stack.stop_service("event"); stack.start_service("event")
        stack.kill_service("booking"); stack.start_service("booking", ready="/healthz", X="1")
        replica = stack.start_replica("booking")                # a second booking_service process
        stack.token("alice"), stack.token("root", admin=True)   # bearer tokens the services accept

The services are the Bazel-built binaries in the caller's runfiles (`//tools/stack` has them in
its data), each a child process in its own process group. Given a `DatabaseServer`, the stack
uses it (the dev stack's --external-db, the tests' session server); otherwise it starts a
throw-away PostgreSQL (`tools.embedded_postgres`) with durable settings and owns it.
Identity and mutual TLS are on, with the dev credentials of `config.dev_home` unless the caller
gives its own (see environment.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType

from tools.devkeys import DevIdentity, dev_identity, mint_token
from tools.embedded_postgres.server import DURABLE, EmbeddedPostgres, free_port
from tools.stack.config import StackConfig
from tools.stack.database import DatabaseServer
from tools.stack.environment import callers_groups, service_environment
from tools.stack.services import SERVICES, Service, launch
from tools.supervisor.output import Output

_SPECS = {spec.name: spec for spec in SERVICES}


class Stack:
    def __init__(self, config: StackConfig, output: Output, database: DatabaseServer | None = None) -> None:
        self.config = config
        self.output = output
        # None until start() when the stack starts its own PostgreSQL.
        self.database = database
        self.postgres: EmbeddedPostgres | None = None
        self._services: dict[str, Service] = {}

    def start(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Starts everything and waits until both services are ready. Raises StartupFailed,
        or Interrupted when `should_stop()` turns true meanwhile; call `stop()` in any case."""
        if self.database is None:
            self.database = self._start_postgres()
        created = self.database.ensure_databases([self.config.event_db, self.config.booking_db])
        if created:
            self.output.line("stack", f"created database(s) {', '.join(created)}")
        for spec in SERVICES:
            self.start_service(spec.name, should_stop=should_stop)

    def start_service(
        self,
        name: str,
        /,
        ready: str = "/readyz",
        should_stop: Callable[[], bool] = lambda: False,
        **overrides: str,
    ) -> Service:
        """Starts the service `name` ("event", "booking"), first killing what runs under that
        name, whatever its state; waits until GET `ready` answers 200. `overrides` are set in
        its environment for this start only (fault hooks, shorter timeouts). A service started
        while another is down on purpose is waited for with ready="/healthz"."""
        assert self.database is not None, "start() first"
        if (previous := self._services.pop(name, None)) is not None:
            previous.child.kill()
        spec = _SPECS[name]
        http_port, grpc_port = self.config.ports.of(name)
        service = launch(
            spec,
            service_environment(spec, self.config, self.database, overrides),
            self.output,
            host=self.config.host,
            http_port=http_port,
            grpc_port=grpc_port,
            database=self.config.database(name),
        )
        self._services[name] = service
        service.wait_ready(ready, timeout=self.config.ready_timeout, should_stop=should_stop)
        return service

    def start_replica(self, name: str, /, ready: str | None = "/readyz", **overrides: str) -> Service:
        """Another process of the service `name` on the same database (replicas share it, as in
        production), on free ports of its own, with the stack's settings and `overrides`;
        waits until GET `ready` answers 200 (None: does not wait, for a process meant to die
        at a fault point before it is ready). The stack does not track it: the caller stops it
        (`replica.child.stop(timeout)`)."""
        assert self.database is not None, "start() first"
        spec = _SPECS[name]
        http_port, grpc_port = free_port(), free_port()
        ports = {"HTTP_PORT": str(http_port), "GRPC_PORT": str(grpc_port)}
        replica = launch(
            spec,
            service_environment(spec, self.config, self.database, {**ports, **overrides}),
            self.output,
            host=self.config.host,
            http_port=http_port,
            grpc_port=grpc_port,
            database=self.config.database(name),
        )
        if ready is not None:
            replica.wait_ready(ready, timeout=self.config.ready_timeout)
        return replica

    def stop_service(self, name: str) -> int | None:
        """SIGTERM, SIGKILL after the stop timeout; its exit status."""
        return self.service(name).child.stop(self.config.stop_timeout)

    def kill_service(self, name: str) -> None:
        """SIGKILL at once: a crash."""
        self.service(name).child.kill()

    def service(self, name: str) -> Service:
        """The last process started as `name`, running or not."""
        if name not in self._services:
            raise LookupError(f"{name}_service was not started")
        return self._services[name]

    @property
    def event(self) -> Service:
        return self.service("event")

    @property
    def booking(self) -> Service:
        return self.service("booking")

    def services(self) -> list[Service]:
        """The services started, in start order."""
        return [self._services[spec.name] for spec in SERVICES if spec.name in self._services]

    @property
    def event_url(self) -> str:
        return self.event.http_url

    @property
    def booking_url(self) -> str:
        return self.booking.http_url

    @property
    def event_dsn(self) -> str:
        return self._dsn(self.config.event_db)

    @property
    def booking_dsn(self) -> str:
        return self._dsn(self.config.booking_db)

    @functools.cached_property
    def identity(self) -> DevIdentity:
        """The dev signing key whose tokens the services accept (read once per stack: tests
        mint a token per request). Raises LookupError when the caller gave its own AUTH_*
        settings: their tokens come from the caller's identity provider."""
        if "identity" in callers_groups(self.config):
            raise LookupError("the services verify tokens with the caller's own AUTH_* settings, not the dev key")
        return dev_identity(self.config.dev_home)

    def token(self, sub: str, *, admin: bool = False, ttl: timedelta = timedelta(hours=1)) -> str:
        """A bearer token for user `sub` (with the admin role if `admin`) the services accept."""
        return mint_token(self.identity, sub, admin=admin, ttl=ttl)

    def exited(self) -> Service | None:
        """A service that has exited (it should not have), if any."""
        return next((s for s in self.services() if s.exit_code() is not None), None)

    def postgres_exited(self) -> bool:
        return (
            self.postgres is not None and self.postgres.process is not None and self.postgres.process.poll() is not None
        )

    def stop(self) -> dict[str, int | None]:
        """Stops the services (SIGTERM, then SIGKILL after the stop timeout), then the stack's
        own PostgreSQL if it started one (fast shutdown), removing its directory unless
        keep_data; returns the services' exit statuses."""
        statuses = {}
        for service in reversed(self.services()):
            statuses[service.name] = service.child.stop(self.config.stop_timeout)
        if self.postgres is not None:
            self.postgres.stop()
            if self.postgres.base is not None:
                kept = "kept" if self.config.keep_data else "removed"
                self.output.line("stack", f"PostgreSQL stopped; {self.postgres.base} {kept}")
        return statuses

    def logs(self) -> str:
        """The services' logs, where the output keeps them (tests: a LogDirectory)."""
        return "\n".join(f"--- {s.name}_service ---\n{s.logs()}" for s in self.services())

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _dsn(self, dbname: str) -> str:
        assert self.database is not None, "start() first"
        return self.database.dsn(dbname)

    def _start_postgres(self) -> DatabaseServer:
        self.postgres = EmbeddedPostgres(
            port=self.config.postgres_port, settings=DURABLE, prefix="tfdev-", keep=self.config.keep_data
        )
        self.postgres.prepare()
        with self.output.redirect("postgres") as stdout:
            process = self.postgres.launch(output=stdout)
        self.output.follow("postgres", process)
        self.postgres.wait_ready()
        return DatabaseServer.embedded(self.postgres)
