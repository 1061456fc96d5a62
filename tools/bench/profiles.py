"""Profiles of both services under the flash-sale load: py-spy samples each service process
while the load tool drives the stack (a pass of its own, after the measurements, so that the
profiler's CPU does not distort them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import uvloop

from tools.bench.pyspy import record, summarize
from tools.loadtest.run import Targets, run
from tools.loadtest.workload import Workload
from tools.stack.stack import Stack


def find_py_spy(given: Path | None) -> Path | None:
    if given is not None:
        return given
    found = shutil.which("py-spy")
    return Path(found) if found else None


def profile_services(stack: Stack, workload: Workload, py_spy: Path | None, seconds: int, out_dir: Path) -> str:
    """Profiles both services under `workload`; keeps py-spy's collapsed stacks in `out_dir`
    (for flamegraph.pl or speedscope) and returns the summaries."""
    binary = find_py_spy(py_spy)
    if binary is None:
        return "profiles: skipped (no py-spy: pass --py-spy PATH; see BENCHMARKS.md)"
    targets = Targets(stack.booking_url, stack.event_url, stack.identity)
    services = {"event_service": stack.event.pid, "booking_service": stack.booking.pid}
    # A little longer than the profiles, so that they only see the service under load.
    load = Workload(**{**workload.__dict__, "duration": seconds + 3, "seed": 2})
    outputs = {name: out_dir / f"{name}.pyspy.txt" for name in services}
    # The profiles start with the load and end before it does.
    recorders = {name: record(binary, pid, seconds, outputs[name]) for name, pid in services.items()}
    result = uvloop.run(run(load, targets))
    sections = [f"profiles: py-spy record --rate 100 --nonblocking, {seconds} s of each service, flash sale"]
    for name, recorder in recorders.items():
        _, errors = recorder.communicate(timeout=seconds + 30)
        if recorder.returncode != 0 or not outputs[name].exists():
            why = errors.decode(errors="replace").strip()
            sections.append(f"{name}: py-spy failed ({recorder.returncode}): {why}")
            continue
        summary = summarize(outputs[name].read_text()).report()
        sections.append(f"--- {name} ({outputs[name]}) ---\n{summary}")
    sections.append(f"(load during the profiles: {result.stats.bookings_per_second:.1f} bookings/s)")
    return "\n".join(sections)
