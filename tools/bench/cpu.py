"""CPU time used by processes during a measurement, from /proc (Linux).

On a machine whose few cores are shared by the services, PostgreSQL and the load generator,
"where the time goes" starts with who burns the CPU. A process's own time is `utime + stime`;
a parent also accounts the time of the children it has reaped (`cutime + cstime`), which is
how PostgreSQL backends that exited during a run are still counted in their postmaster.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        # The command name (field 2) may hold spaces; everything after its ")" is split safely.
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(int(stat.parent.name))
        if fields is not None and int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def tree_seconds(pid: int) -> float:
    """CPU seconds of `pid`, its reaped children, and its live descendants."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # After ")": state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based from state.
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / _TICKS + sum(tree_seconds(child) for child in _children(pid))


def self_seconds() -> float:
    """CPU seconds of this process and of its children that have exited: the load generator,
    whether it runs in-process (the load tool) or as a child (pgbench). The services are
    children too, but they are reaped only when they stop, after every measurement."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used since boot (every core), from the
    first line of /proc/stat: user, nice, system, irq, softirq and steal time."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


class CpuMeter:
    """CPU seconds used by named process trees between `start()` and `stop()`, and by every
    other process of the machine ("other": whoever else shares the cores meanwhile)."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self._pids = dict(pids)
        self._start: dict[str, float] = {}
        self._started = 0.0
        self.used: dict[str, float] = {}
        self.wall = 0.0

    def _now(self) -> dict[str, float]:
        now = {name: tree_seconds(pid) for name, pid in self._pids.items()}
        now["load generator"] = self_seconds()
        now["machine"] = machine_busy_seconds()
        return now

    def start(self) -> None:
        self._start = self._now()
        self._started = time.monotonic()

    def stop(self) -> dict[str, float]:
        end = self._now()
        self.wall = time.monotonic() - self._started
        used = {name: end[name] - self._start.get(name, 0.0) for name in end}
        machine = used.pop("machine")
        used["other"] = max(0.0, machine - sum(used.values()))
        self.used = used
        return used

    def __enter__(self) -> CpuMeter:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
