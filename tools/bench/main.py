"""`bazel run //tools/bench [-- options]`: the naive hot-row limit against the whole system,
measured side by side in one run on one machine.

    a  pgbench running the event service's RESERVE statement, every client on one event
    b  the same concurrency of POST /bookings through both services, every booking on one event
    c  pgbench, each transaction on a random one of --events events
    d  POST /bookings, each booking on a random one of --events events

Every measured booking reserves a seat (the events never sell out), as every pgbench
transaction does, so that both sides do the same work in PostgreSQL. Identity is on, as in
production: each booking carries the bearer token of one of --users simulated users (minted
before each run with the stack's dev key), so the services' token checks are in the figures;
the booking service reaches the event service over mutual TLS. PostgreSQL is the dev
stack's throw-away server with its durable defaults (fsync and synchronous_commit on). The
load generator (this process, or pgbench) runs on the same cores as what it measures; the
CPU each part used is reported. Then, with py-spy, a profile of each service under (b).
Exit status 1 if a run's checks or audit fail.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import uvloop

from tools.bench import cpu, machine, pgbench
from tools.bench.profiles import profile_services
from tools.loadtest.run import Result, Targets, run
from tools.loadtest.workload import Workload
from tools.stack.config import Ports, StackConfig
from tools.stack.stack import Stack
from tools.supervisor.output import PrefixedOutput

PGBENCH_DB = "bench_pgbench"
# The benchmark only: the per-user cap (MAX_SEATS_PER_USER_PER_EVENT, default 20) raised to
# its maximum, so that --users users can keep taking seats of one event for the whole
# measurement. The cap's check itself still runs on every booking; only its limit is out of reach.
BENCH_USER_CAP = 1_000_000


@dataclass
class Row:
    label: str
    throughput: float
    latencies_ms: dict[str, float]
    cpu_seconds: dict[str, float]
    requests: int
    seconds: float
    note: str = ""

    def cores(self) -> str:
        """How many cores were busy on average: ours (the parts measured) and everyone else's."""
        other = self.cpu_seconds.get("other", 0.0)
        ours = sum(self.cpu_seconds.values()) - other
        return f"cores busy: ours {ours / self.seconds:.2f}, other processes {other / self.seconds:.2f}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=20, help="seconds of each measurement (default %(default)s)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before each end-to-end measurement")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="pgbench clients and requests in flight (default %(default)s)",
    )
    parser.add_argument("--threads", type=int, default=2, help="pgbench threads (default %(default)s)")
    parser.add_argument("--events", type=int, default=100, help="events of the spread variants (default %(default)s)")
    parser.add_argument(
        "--users", type=int, default=1000, help="simulated users, a bearer token each (default %(default)s)"
    )
    parser.add_argument(
        "--py-spy", type=Path, help="py-spy binary for the profiles (default: py-spy on PATH, else none)"
    )
    parser.add_argument("--profile-seconds", type=int, default=10, help="seconds of each profile (0: no profiles)")
    parser.add_argument(
        "--out-dir", type=Path, help="for the stack's log and the raw profiles (default: a new directory in /tmp)"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra setting for both services"
    )
    return parser


def _stack_config(environ: dict[str, str]) -> StackConfig:
    """The dev stack's throw-away PostgreSQL and both services, on free ports, with the dev
    credentials of this machine (as //:ticketflow); `environ` (--env) over everything."""
    return StackConfig(
        ports=Ports.free(),
        event_db="bench_events",
        booking_db="bench_bookings",
        environ={**os.environ, "MAX_SEATS_PER_USER_PER_EVENT": str(BENCH_USER_CAP), **environ},
    )


def _pgbench_row(stack: Stack, meter: cpu.CpuMeter, label: str, events: int, args: argparse.Namespace) -> Row:
    assert stack.postgres is not None
    pg = stack.postgres
    result = pgbench.run(
        pg.bindir / "pgbench",
        host=pg.host,
        port=pg.port,
        user=pg.user,
        dbname=PGBENCH_DB,
        events=events,
        clients=args.concurrency,
        threads=args.threads,
        seconds=args.duration,
        measure=meter,
    )
    # The meter's span includes pgbench's connecting: a little over --duration.
    return Row(label, result.tps, result.latencies_ms, meter.used, result.transactions, meter.wall, result.command)


def _e2e_row(stack: Stack, meter: cpu.CpuMeter, label: str, workload: Workload, warmup: float) -> tuple[Row, Result]:
    targets = Targets(stack.booking_url, stack.event_url, stack.identity)
    if warmup:
        # Connections, pools and prepared statements get made here, not in the measurement.
        uvloop.run(run(Workload(**{**workload.__dict__, "duration": warmup, "seed": 0}), targets))
    audited = Targets(targets.booking_url, targets.event_url, stack.identity, stack.booking_dsn, stack.event_dsn)
    result = uvloop.run(run(workload, audited, settle_timeout=60, measure=meter))
    stats = result.stats
    note = "; ".join(result.problems) or (result.audit.summary() if result.audit else "")
    row = Row(label, stats.bookings_per_second, stats.book.summary(), meter.used, stats.book.count, meter.wall, note)
    return row, result


def _table(rows: list[Row], pairs: list[tuple[int, int]]) -> str:
    parts = ["event", "booking", "postgres", "load generator", "other"]
    head = (
        f"{'':44} {'per s':>9} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}   "
        + "CPU ms per request: "
        + " / ".join(parts)
    )
    lines = [head, f"{'':44} {'':>9} {'(ms)':>7}"]
    for row in rows:
        lat = row.latencies_ms
        per_request = " / ".join(f"{1000 * row.cpu_seconds.get(p, 0.0) / max(row.requests, 1):.2f}" for p in parts)
        latency = " ".join(f"{lat[q]:7.1f}" for q in ("p50", "p95", "p99", "max"))
        lines.append(f"{row.label:44} {row.throughput:9.1f} {latency}   {per_request}")
    lines.append("")
    for e2e, naive in pairs:
        ratio = rows[e2e].throughput / rows[naive].throughput if rows[naive].throughput else 0.0
        lines.append(f"ratio {rows[e2e].label.split()[0]}/{rows[naive].label.split()[0]}: {ratio:.2f}x")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    # SIGTERM (a timeout, a supervisor) ends the run as Ctrl-C does: through the `finally`
    # below, so the services and the throw-away PostgreSQL stop too instead of being orphaned.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    environ = dict(item.split("=", 1) for item in args.env)
    out_dir = args.out_dir or Path(f"/tmp/ticketflow-bench-{time.strftime('%Y%m%d-%H%M%S')}")
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "stack.log"
    with log_path.open("w") as log:
        stack = Stack(_stack_config(environ), PrefixedOutput(log))
        try:
            return _bench(stack, args, out_dir)
        finally:
            stack.stop()


def _bench(stack: Stack, args: argparse.Namespace, out_dir: Path) -> int:
    stack.start()
    assert stack.postgres is not None
    pg = stack.postgres
    assert pg.process is not None
    print(f"machine: {machine.describe(pg.bindir)}")
    print(f"logs of the services and PostgreSQL, raw profiles: {out_dir}")
    pgbench.prepare_database(pg.dsn(), pg.dsn(PGBENCH_DB), PGBENCH_DB, args.events)
    meter = cpu.CpuMeter({"event": stack.event.pid, "booking": stack.booking.pid, "postgres": pg.process.pid})
    c = args.concurrency
    user_cap = int(stack.config.environ["MAX_SEATS_PER_USER_PER_EVENT"])
    print(f"identity on: {args.users} users with a bearer token each; MAX_SEATS_PER_USER_PER_EVENT={user_cap}")
    flash = Workload(
        "flash",
        requests=10_000_000,
        concurrency=c,
        events=1,
        seats_per_event=1_000_000,
        duration=args.duration,
        users=args.users,
        user_cap=user_cap,
    )
    spread = Workload(
        "spread",
        requests=10_000_000,
        concurrency=c,
        events=args.events,
        seats_per_event=1_000_000,
        duration=args.duration,
        users=args.users,
        user_cap=user_cap,
    )
    rows: list[Row] = []
    results: list[Result] = []
    steps = [
        ("a", f"a  pgbench RESERVE, 1 event, {c} clients", None, 1),
        ("b", f"b  POST /bookings, 1 event, {c} in flight", flash, 1),
        ("c", f"c  pgbench RESERVE, {args.events} events, {c} clients", None, args.events),
        ("d", f"d  POST /bookings, {args.events} events, {c} in flight", spread, args.events),
    ]
    for _, label, workload, events in steps:
        print(f"{label}: {args.duration} s ... ({machine.load()})", flush=True)
        if workload is None:
            rows.append(_pgbench_row(stack, meter, label, events, args))
        else:
            row, result = _e2e_row(stack, meter, label, workload, args.warmup)
            rows.append(row)
            results.append(result)
    print()
    print(_table(rows, [(1, 0), (3, 2)]))
    print()
    for row in rows:
        print(f"{row.label}: {row.requests} requests in {row.seconds:.1f} s, {row.cores()}; {row.note}")
    b = rows[1]
    met = b.throughput >= rows[0].throughput and b.latencies_ms["p99"] < 100
    print(f"\ntarget (b >= 1.0x a, b's p99 < 100 ms): {'MET' if met else 'NOT MET'}")
    if args.profile_seconds:
        print()
        print(profile_services(stack, flash, args.py_spy, args.profile_seconds, out_dir))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
