"""A supervised child process whose output is copied line by line, prefixed, to ours.

    out = PrefixedOutput(sys.stdout)
    event = Child("event", ["/path/to/event_service"], env, out).start()
    ...
    event.stop(timeout=8)    # SIGTERM, then SIGKILL if it has not exited in time

Each child runs in its own process group, so a Ctrl-C at the terminal reaches only the
supervisor, which then stops the children in the order it chooses (services before the
database they use). One thread per child copies its stdout and stderr (merged) so that lines
of different children never interleave mid-line.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import IO


class PrefixedOutput:
    """Whole lines from several children, each prefixed with its name, to one stream."""

    def __init__(self, stream: IO[str] = sys.stdout, width: int = 8) -> None:
        self._stream = stream
        self._width = width
        self._lock = threading.Lock()

    def line(self, name: str, text: str) -> None:
        with self._lock:
            self._stream.write(f"[{name:<{self._width}}] {text.rstrip()}\n")
            self._stream.flush()

    def write(self, text: str) -> None:
        """Unprefixed text (a banner), kept whole between other lines."""
        with self._lock:
            self._stream.write(text if text.endswith("\n") else text + "\n")
            self._stream.flush()

    def copy(self, name: str, pipe: IO[bytes]) -> threading.Thread:
        """Copies `pipe` line by line until it closes, in a daemon thread."""

        def pump() -> None:
            with pipe:
                for raw in iter(pipe.readline, b""):
                    self.line(name, raw.decode(errors="replace"))

        thread = threading.Thread(target=pump, name=f"output-{name}", daemon=True)
        thread.start()
        return thread


class Child:
    def __init__(self, name: str, command: list[str], env: Mapping[str, str], output: PrefixedOutput) -> None:
        self.name = name
        self.command = command
        self.env = dict(env)
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None

    def start(self) -> Child:
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        self._pump = self.output.copy(self.name, self.process.stdout)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def exit_code(self) -> int | None:
        """None while it runs."""
        return None if self.process is None else self.process.poll()

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
        if self._pump is not None:
            self._pump.join(2)  # the rest of its output, before anything else is printed
        return self.process.returncode
