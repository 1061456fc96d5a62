"""Where supervised processes' output goes: one terminal with a prefix per line, or one log
file per process.

    PrefixedOutput(sys.stdout)   the dev stack and the benchmark: `[event   ] serving HTTP ...`
    LogDirectory(tmp_path)       the tests: `event.log`, `booking.log`, ... read back with logs()

Both implement `Output`, so that `tools.supervisor.child.Child` (and the launcher's PostgreSQL)
need not know which one they write to.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol


class Output(Protocol):
    def line(self, name: str, text: str) -> None:
        """One line of the supervisor's own, about `name`."""

    def redirect(self, name: str) -> contextlib.AbstractContextManager[int | IO[bytes]]:
        """What to give `subprocess.Popen` as `stdout` for the process `name` (valid inside the
        `with`; Popen duplicates it)."""

    def follow(self, name: str, process: subprocess.Popen[bytes]) -> threading.Thread | None:
        """Called once `process` runs: starts copying its output if that needs a thread."""

    def logs(self, name: str) -> str:
        """What `name` has written so far, where this output keeps it ("" where it does not)."""


class PrefixedOutput:
    """Whole lines from several processes, each prefixed with its name, to one stream."""

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

    @contextlib.contextmanager
    def redirect(self, name: str) -> Iterator[int | IO[bytes]]:
        yield subprocess.PIPE

    def follow(self, name: str, process: subprocess.Popen[bytes]) -> threading.Thread | None:
        assert process.stdout is not None, "started without redirect()"
        return self.copy(name, process.stdout)

    def copy(self, name: str, pipe: IO[bytes]) -> threading.Thread:
        """Copies `pipe` line by line until it closes, in a daemon thread. One thread per
        process, each writing whole lines under the lock, so lines never interleave mid-line."""

        def pump() -> None:
            with pipe:
                for raw in iter(pipe.readline, b""):
                    self.line(name, raw.decode(errors="replace"))

        thread = threading.Thread(target=pump, name=f"output-{name}", daemon=True)
        thread.start()
        return thread

    def logs(self, name: str) -> str:
        return ""  # the lines went to the stream, for a person to read


class LogDirectory:
    """One append-only log file per process, `<directory>/<name>.log`, written by the process
    itself (no copying thread: what it wrote is in the file as soon as it returns)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def line(self, name: str, text: str) -> None:
        with self.path(name).open("a") as log:
            log.write(f"{text.rstrip()}\n")

    @contextlib.contextmanager
    def redirect(self, name: str) -> Iterator[int | IO[bytes]]:
        # Appending: a restarted process's log follows its predecessor's.
        with self.path(name).open("ab") as log:
            yield log

    def follow(self, name: str, process: subprocess.Popen[bytes]) -> threading.Thread | None:
        return None

    def logs(self, name: str) -> str:
        path = self.path(name)
        return path.read_text(errors="replace") if path.exists() else ""
