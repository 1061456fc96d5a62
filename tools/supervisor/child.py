"""A supervised child process: started with its output going to an `Output`, stopped with
SIGTERM and, after a timeout, SIGKILL.

    event = Child("event", ["/path/to/event_service"], env, PrefixedOutput(sys.stdout)).start()
    ...
    event.stop(timeout=8)    # SIGTERM, then SIGKILL if it has not exited in time

Each child runs in its own process group, so a Ctrl-C at the terminal reaches only the
supervisor, which then stops the children in the order it chooses (services before the
database they use).
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Mapping

from tools.supervisor.output import Output


class Child:
    def __init__(self, name: str, command: list[str], env: Mapping[str, str], output: Output) -> None:
        self.name = name
        self.command = command
        self.env = dict(env)
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None

    def start(self) -> Child:
        with self.output.redirect(self.name) as stdout:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._pump = self.output.follow(self.name, self.process)
        return self

    @property
    def pid(self) -> int:
        return self._running().pid

    def exit_code(self) -> int | None:
        """None while it runs (or before it started)."""
        return None if self.process is None else self.process.poll()

    def signal(self, sig: signal.Signals) -> None:
        self._running().send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Its exit status (negative: killed by that signal); raises subprocess.TimeoutExpired."""
        return self._running().wait(timeout)

    def kill(self) -> None:
        """SIGKILL, at once (a crash, for fault tests), and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._drain()

    def stop(self, timeout: float) -> int | None:
        """SIGTERM, up to `timeout` seconds for a graceful exit, then SIGKILL. Returns the
        exit status (negative: killed by that signal), None if it was never started."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.output.line(self.name, f"did not stop within {timeout:g} s: killing it")
                self.process.kill()
                self.process.wait()
        self._drain()
        return self.process.returncode

    def logs(self) -> str:
        return self.output.logs(self.name)

    def _running(self) -> subprocess.Popen[bytes]:
        assert self.process is not None, f"{self.name} not started"
        return self.process

    def _drain(self) -> None:
        if self._pump is not None:
            self._pump.join(2)  # the rest of its output, before anything else is printed


def run_to_exit(command: list[str], env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs a command to completion, its output captured (a `migrate`, or a start-up that must fail)."""
    return subprocess.run(command, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False)
