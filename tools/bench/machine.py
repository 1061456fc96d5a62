"""A description of the machine and its load at the moment of a measurement."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def describe(postgres_bindir: Path) -> str:
    version = subprocess.run(
        [str(postgres_bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return (
        f"{os.cpu_count()} CPUs ({_cpu_model()}), {_memory_gib():.0f} GiB, {platform.platform()}; "
        f"{version}; Python {platform.python_version()}; {load()}"
    )
