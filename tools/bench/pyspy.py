"""Where a service's Python time goes: py-spy samples it from outside, and the samples are
summed per library.

py-spy is not one of TicketFlow's locked dependencies (it is a diagnostic binary, never
imported): the benchmark uses the one given with --py-spy, or on PATH (`pip install py-spy`
into a throw-away virtualenv, see BENCHMARKS.md). `py-spy record --format raw` writes
collapsed stacks, one line per distinct stack with its sample count; idle threads (an event
loop waiting in epoll) are left out, so the samples are the time the process was busy.

Each sample is attributed to the library of the innermost frame that is not the standard
library (psycopg, grpc, quart, hypercorn, ...), so that time spent in asyncio or socket code
on behalf of a library counts for that library. Frames outside the current callback of the
event loop (`Handle._run`, `_run_once`, `Runner.run` and what runs the loop) never own a sample: the
loop's own work (epoll, scheduling) counts for the standard library module doing it. Two kinds of samples
have no Python frame of their own, because the time is spent in C called straight from the
loop or a thread: innermost `Handle._run` or, on uvloop, `Runner.run` (the loop itself in C,
or a task or callback implemented in C: grpc's Cython server and client, C asyncio tasks),
and innermost `Thread.run` (a thread running native code: grpc's completion-queue poller).
They are reported as such.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^():]+):\d+\)$")
_OURS = ("booking_service", "event_service", "service_runtime", "ticketflow")
# Frames that run the event loop: what runs inside them is a callback or task step. With
# uvloop the loop is C code, so a task's frames sit right inside `Runner.run`.
_LOOP = ("Handle._run", "BaseEventLoop._run_once", "Runner.run", "BaseEventLoop.run_until_complete")
_NATIVE_IN_LOOP = "native code run by the event loop (uvloop, grpc Cython, C tasks)"


@dataclass
class Profile:
    samples: int
    by_library: Counter[str]
    by_function: Counter[str]  # innermost frame, "function (path:line)"

    def report(self, top: int = 12) -> str:
        lines = [f"{self.samples} samples while busy; by library (innermost non-stdlib frame):"]
        for name, count in self.by_library.most_common(top):
            lines.append(f"  {100 * count / self.samples:5.1f}%  {name}")
        lines.append("innermost functions:")
        for name, count in self.by_function.most_common(top):
            lines.append(f"  {100 * count / self.samples:5.1f}%  {name}")
        return "\n".join(lines)


def record(py_spy: Path, pid: int, seconds: int, output: Path, rate: int = 100) -> subprocess.Popen[bytes]:
    """Starts sampling `pid` for `seconds` (wait on the returned process)."""
    return subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--full-filenames",
            "--nonblocking",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def library(path: str) -> str | None:
    """The library a source file belongs to, None for the standard library."""
    parts = Path(path).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            name = parts[parts.index(marker) + 1]
            return name.removesuffix(".py").split(".")[0]
    for ours in _OURS:
        if ours in parts:
            return ours if ours != "ticketflow" else "generated protos"
    return None


def _stdlib_module(path: str) -> str:
    parts = Path(path).parts
    for i, part in enumerate(parts):
        if re.fullmatch(r"python3\.\d+", part) and i + 1 < len(parts):
            return f"stdlib {parts[i + 1].removesuffix('.py')}"
    return f"other {Path(path).name}"


def summarize(collapsed: str) -> Profile:
    by_library: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [m for m in (_FRAME.match(f) for f in stack.split(";")) if m]
        if not frames:
            continue
        total += count
        innermost = frames[-1]
        by_function[f"{innermost['function']} ({_short(innermost['path'])})"] += count
        by_library[_owner(frames)] += count
    return Profile(total, by_library, by_function)


def _owner(frames: list[re.Match[str]]) -> str:
    innermost = frames[-1]
    if innermost["function"] in ("Handle._run", "Runner.run", "BaseEventLoop.run_until_complete"):
        return _NATIVE_IN_LOOP
    if innermost["function"] == "Thread.run":
        return "native code in a thread (grpc poller)"
    # Only the frames inside the loop's current callback belong to it; without one, the
    # sample is the loop's own work (epoll, scheduling), whoever started the loop.
    inner = frames
    for i in range(len(frames) - 1, -1, -1):
        if frames[i]["function"] in _LOOP:
            inner = frames[i + 1 :]
            break
    for frame in reversed(inner):
        if (lib := library(frame["path"])) is not None:
            return lib
    return _stdlib_module(innermost["path"])


def _short(path: str) -> str:
    parts = Path(path).parts
    for marker in ("site-packages", "dist-packages", "ticketflow"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) + 1 :])
    return "/".join(parts[-2:])
