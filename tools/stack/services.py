"""The two services as the launcher knows them (name, Bazel-built binary), and `Service`: one
running service process, where to reach it, and the wait until it answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tools.supervisor.child import Child
from tools.supervisor.http import wait_for_http
from tools.supervisor.output import Output
from tools.supervisor.runfiles import runfile


class StartupFailed(RuntimeError):
    """A part of the stack did not come up; says which, and why when it can."""


class Interrupted(Exception):
    """A stop was asked for while the stack was starting."""


@dataclass(frozen=True)
class ServiceSpec:
    # "event", "booking": its log prefix or log file name, and its key in the stack.
    name: str
    # Workspace path of the binary; targets that launch it have it in their data.
    binary: str

    def command(self, *args: str) -> list[str]:
        return [runfile(self.binary), *args]


EVENT = ServiceSpec("event", "event_service/event_service")
BOOKING = ServiceSpec("booking", "booking_service/booking_service")
# In start order: the booking service calls the event service.
SERVICES = (EVENT, BOOKING)


def client_host(host: str) -> str:
    """Where a client on this machine reaches a server listening on `host`."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


@dataclass
class Service:
    spec: ServiceSpec
    child: Child
    host: str
    http_port: int
    grpc_port: int
    database: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def http_url(self) -> str:
        return f"http://{client_host(self.host)}:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"{client_host(self.host)}:{self.grpc_port}"

    @property
    def pid(self) -> int:
        return self.child.pid

    def exit_code(self) -> int | None:
        return self.child.exit_code()

    def wait(self, timeout: float = 30.0) -> int:
        """Its exit status once it has exited (negative: killed by that signal)."""
        return self.child.wait(timeout)

    def logs(self) -> str:
        return self.child.logs()

    def wait_ready(
        self, path: str = "/readyz", timeout: float = 60.0, should_stop: Callable[[], bool] = lambda: False
    ) -> None:
        """Waits until GET `path` answers 200. Raises StartupFailed if the process exits or
        the time is up, Interrupted as soon as `should_stop()` turns true."""
        url = f"{self.http_url}{path}"

        def alive() -> None:
            if should_stop():
                raise Interrupted()
            if (code := self.exit_code()) is not None:
                raise StartupFailed(f"{self.name}_service exited with status {code} while starting{self._log_hint()}")

        if not wait_for_http(url, timeout=timeout, alive=alive):
            raise StartupFailed(f"{self.name}_service not ready at {url} after {timeout:g} s{self._log_hint()}")

    def _log_hint(self) -> str:
        logs = self.logs()
        return f":\n{logs}" if logs else " (its log is above)"


def launch(
    spec: ServiceSpec,
    env: Mapping[str, str],
    output: Output,
    *,
    host: str,
    http_port: int,
    grpc_port: int,
    database: str,
) -> Service:
    """Starts one service process with exactly `env` (see tools.stack.environment for the
    stack's); does not wait for it."""
    child = Child(spec.name, spec.command(), env, output).start()
    return Service(spec, child, host, http_port, grpc_port, database)
