"""`//:ticketflow` as a user runs it: it comes up, books with the tokens its banner prints (and
keeps bookings to their owner), and leaves nothing behind on SIGINT."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.embedded_postgres.server import free_port
from tools.supervisor.runfiles import runfile

RUNNER = "tools/devstack/devstack"


class Runner:
    """The runner as a child process, its output collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [runfile(RUNNER), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 90) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r}:\n{self.output()}")

    def close(self) -> None:
        """Waits for the end of the output (the reader closes the pipe)."""
        self._reader.join(10)

    def output(self) -> str:
        while not self._queue.empty():
            if (line := self._queue.get()) is not None:
                self.lines.append(line)
        return "".join(self.lines)


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, their children...), from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def ports() -> dict[str, int]:
    return {name: free_port() for name in ("event-http", "event-grpc", "booking-http", "booking-grpc")}


def port_args(ports: dict[str, int]) -> list[str]:
    return [arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # Dev credentials of the test's own, not the machine's.
    return {**os.environ, "TICKETFLOW_DEV_HOME": str(tmp_path / "dev")}


@pytest.fixture
def runner(ports: dict[str, int], env: dict[str, str]) -> Iterator[Runner]:
    runner = Runner(port_args(ports), env)
    yield runner
    if runner.process.poll() is None:  # the test failed half-way: leave nothing running
        for pid in descendants(runner.process.pid):
            with contextlib.suppress(ProcessLookupError):  # it may have exited meanwhile
                os.kill(pid, signal.SIGKILL)
        runner.process.kill()
    runner.process.wait(10)
    runner.close()


def test_it_comes_up_books_and_sigint_leaves_nothing_behind(runner: Runner, ports: dict[str, int]) -> None:
    data_dir = Path(runner.wait_for(r"data in (/tmp/tfdev-\S+)").group(1))
    runner.wait_for(r"^  ([0-9a-f-]{36})\s+100 seats")
    tokens = {name: runner.wait_for(rf"^  export {name}_TOKEN=(\S+)$").group(1) for name in ("ALICE", "BOB", "ADMIN")}
    post = runner.wait_for(r"^  (curl -s -X POST \S+/bookings .*)$").group(1)
    runner.wait_for(r"Load test")
    assert data_dir.is_dir()

    # The banner's own command, pasted into a shell that has run its exports.
    exports = "".join(f"export {name}_TOKEN={token}\n" for name, token in tokens.items())
    command = f"{exports}{post} -w '\\n%{{http_code}}'"
    pasted = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=False)
    body, status = pasted.stdout.rsplit("\n", 1)
    assert status == "201", pasted
    booking = json.loads(body)
    assert booking["status"] == "CONFIRMED" and booking["userId"] == "alice"

    booking_url = f"http://127.0.0.1:{ports['booking-http']}/bookings/{booking['id']}"
    assert http_get(booking_url, tokens["BOB"]) == 404
    assert http_get(booking_url, tokens["ALICE"]) == 200
    assert http_get(booking_url, tokens["ADMIN"]) == 200

    children = descendants(runner.process.pid)
    assert len(children) >= 3, children  # postgres (and its workers), both services
    started = time.monotonic()
    runner.process.send_signal(signal.SIGINT)
    assert runner.process.wait(30) == 0, runner.output()
    assert time.monotonic() - started < 15
    assert [pid for pid in children if alive(pid)] == []
    assert not data_dir.exists()
    assert "[booking ]" in runner.output() and "[postgres]" in runner.output()


def http_get(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code)


def test_a_port_in_use_is_one_line_and_nothing_starts(ports: dict[str, int], env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports["booking-grpc"]))
        busy.listen()
        result = subprocess.run(
            [runfile(RUNNER), *port_args(ports)], capture_output=True, text=True, timeout=60, check=False, env=env
        )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"ticketflow: error: port {ports['booking-grpc']} (booking gRPC) on 127.0.0.1 is already in use: "
        "stop what listens there, or choose other ports (--port-offset N, or --event-http-port and the like)"
    ]
