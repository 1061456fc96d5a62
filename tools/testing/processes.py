"""Real service processes for tests: start a Bazel-built binary, wait until it is ready, stop it.

Binaries are `data` of the test target and are found in the test's runfiles by their
workspace path (for example "event_service/event_service"), with `tools.supervisor.runfiles`.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tools.supervisor.http import wait_for_http
from tools.supervisor.runfiles import runfile


@dataclass
class ServiceProcess:
    """A service started as its own process, with stdout and stderr captured in a file."""

    name: str
    binary: str
    env: dict[str, str]
    log_path: Path
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        env = {**os.environ, **self.env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([runfile(self.binary), *self.args], env=env, stdout=log, stderr=log)
        log.close()
        return self

    def wait_http(self, url: str, timeout: float = 30.0, status: int = 200) -> None:
        """Waits until GET `url` answers `status`; fails early if the process dies."""

        def alive() -> None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.logs()}")

        if not wait_for_http(url, timeout=timeout, status=status, alive=alive):
            raise AssertionError(f"{self.name} not ready at {url} after {timeout} s:\n{self.logs()}")

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit status (SIGKILL if it does not stop in time)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not stop within {timeout} s:\n{self.logs()}") from None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def run_to_exit(
    binary: str, env: dict[str, str], args: list[str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Runs a binary to completion (for commands such as `migrate`, or start-up failures)."""
    return subprocess.run(
        [runfile(binary), *(args or [])],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
