"""`bazel run //tools/loadtest -- flash|spread|waitlist|audit [options]`: load any running
TicketFlow through its public REST API, then audit both databases.

    flash    every booking on one new event: --seats, --requests, --concurrency
    spread   bookings spread at random over --events new events of --seats each
    waitlist a sold-out event, --waiters on its waiting list, a stream of --cancellations
             (see tools/loadtest/waitlist_cli.py: `waitlist --help`)
    audit    only the audit of both databases (after waiting for them to settle)

Targets are only the URLs given (default: the README's ports on 127.0.0.1). The audit needs
both databases: --booking-dsn and --event-dsn (libpq strings; `//:ticketflow` prints them),
or --no-audit. With --launch the tool starts a throw-away stack of its own instead (an
embedded PostgreSQL and both services, as `//:ticketflow` does), with --hold-ttl and
--hold-sweep-interval as the booking service's HOLD_TTL_SECONDS and HOLD_SWEEP_INTERVAL_SECONDS
and --user-cap as its MAX_SEATS_PER_USER_PER_EVENT, and stops it at the end.

Holds: --hold-fraction F books that share with "hold": true, --confirm-fraction C confirms
that share of the holds at once (POST /bookings/{id}:confirm; 409 HOLD_EXPIRED is counted, not
an error); the others run out. The run waits until the last hold has expired and the sweeper
(every --hold-sweep-interval seconds) has had time to give the seats back, then checks and audits.

Bookings are made by --users simulated users (default: just enough that none can reach the
target's per-user cap, --user-cap), each with its own bearer token, and events are created with
an admin's; all are signed up front with this machine's dev key ($TICKETFLOW_DEV_HOME, else
~/.local/state/ticketflow-dev), the one `//:ticketflow` and `//tools/token` use.

Exit status: 0 when everything checked out, 1 on any failure (see run.py for what fails a
run), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys

import uvloop

from tools.audit.invariants import DEFAULT_SWEEP_INTERVAL, Report
from tools.audit.settled import settled_audit
from tools.devkeys import dev_identity
from tools.loadtest import waitlist_cli
from tools.loadtest.launch import LaunchSettings, launched_stack
from tools.loadtest.run import Result, Targets, run
from tools.loadtest.workload import Workload

# Minting is about 0.3 ms a token: beyond this, say how many users are wanted.
MAX_USERS = 100_000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loadtest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    modes = parser.add_subparsers(dest="mode", required=True)
    flash = modes.add_parser("flash", help="a flash sale on one event")
    spread = modes.add_parser("spread", help="bookings spread over many events")
    audit = modes.add_parser("audit", help="only audit both databases")
    waitlist_cli.add_parser(modes)
    for mode, seats, requests in ((flash, 5000, 20000), (spread, 1000, 20000)):
        mode.add_argument("--seats", type=int, default=seats, help="seats of each event (default %(default)s)")
        mode.add_argument("--requests", type=int, default=requests, help="bookings to send (default %(default)s)")
        mode.add_argument("--concurrency", type=int, default=64, help="bookings in flight (default %(default)s)")
        mode.add_argument("--seats-per-booking", type=int, default=1)
        mode.add_argument(
            "--retry-fraction",
            type=float,
            default=0.0,
            help="share of bookings sent twice with the same Idempotency-Key",
        )
        mode.add_argument(
            "--cancel-fraction", type=float, default=0.0, help="share of bookings cancelled once confirmed"
        )
        mode.add_argument("--keys", action="store_true", help="an Idempotency-Key on every booking")
        mode.add_argument(
            "--hold-fraction", type=float, default=0.0, help='share of bookings made as holds ("hold": true)'
        )
        mode.add_argument("--confirm-fraction", type=float, default=0.0, help="share of the holds confirmed once HELD")
        mode.add_argument(
            "--launch", action="store_true", help="run against a throw-away stack of the tool's own (no URLs, no DSNs)"
        )
        mode.add_argument("--hold-ttl", type=int, help="with --launch: the stack's HOLD_TTL_SECONDS (default 600)")
        mode.add_argument(
            "--users", type=int, default=0, help="simulated users, a token each (default: enough for --user-cap)"
        )
        mode.add_argument(
            "--user-cap",
            type=int,
            default=20,
            help="the target's MAX_SEATS_PER_USER_PER_EVENT (default %(default)s)",
        )
        mode.add_argument("--seed", type=int, default=1)
        mode.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default %(default)s)")
        mode.add_argument("--duration", type=float, help="stop sending after this many seconds")
        mode.add_argument("--booking-url", default="http://127.0.0.1:8081")
        mode.add_argument("--event-url", default="http://127.0.0.1:8082")
        mode.add_argument("--no-audit", action="store_true", help="skip the audit of the databases")
    spread.add_argument("--events", type=int, default=100, help="events to spread over (default %(default)s)")
    for mode in (flash, spread, audit):
        mode.add_argument("--booking-dsn", help="booking_service's database (libpq connection string)")
        mode.add_argument("--event-dsn", help="event_service's database (libpq connection string)")
        mode.add_argument(
            "--settle-timeout",
            type=float,
            default=60.0,
            help="seconds to wait for PENDING bookings to settle",
        )
        mode.add_argument(
            "--hold-sweep-interval",
            type=float,
            help="the target's HOLD_SWEEP_INTERVAL_SECONDS: the audit allows a hold that long (plus slack) past "
            "its expiry (default 1; with --launch: set on the stack)",
        )
    return parser


def _workload(args: argparse.Namespace) -> Workload:
    return Workload(
        mode=args.mode,
        requests=args.requests,
        concurrency=args.concurrency,
        events=getattr(args, "events", 1),
        seats_per_event=args.seats,
        seats_per_booking=args.seats_per_booking,
        retry_fraction=args.retry_fraction,
        cancel_fraction=args.cancel_fraction,
        keys=args.keys,
        seed=args.seed,
        timeout=args.timeout,
        duration=args.duration,
        users=args.users,
        user_cap=args.user_cap,
        hold_fraction=args.hold_fraction,
        confirm_fraction=args.confirm_fraction,
    )


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    wants_audit = args.mode == "audit" or not args.no_audit
    launch = getattr(args, "launch", False)
    if wants_audit and not launch and not (args.booking_dsn and args.event_dsn):
        parser.error("the audit needs --booking-dsn and --event-dsn (or --no-audit, or --launch)")
    if args.hold_sweep_interval is not None and not 0.05 <= args.hold_sweep_interval <= 60:
        parser.error("--hold-sweep-interval must be 0.05..60 seconds")
    if args.mode == "audit":
        return
    if args.hold_ttl is not None and not launch:
        parser.error("--hold-ttl sets the stack --launch starts; start a running stack with HOLD_TTL_SECONDS instead")
    if args.hold_ttl is not None and not 1 <= args.hold_ttl <= 86400:
        parser.error("--hold-ttl must be 1..86400 seconds")
    if not 0 <= args.hold_fraction <= 1 or not 0 <= args.confirm_fraction <= 1:
        parser.error("--hold-fraction and --confirm-fraction are fractions: 0..1")
    if not 0 < args.concurrency <= 1000 or not 0 < args.requests <= 10_000_000:
        parser.error("--concurrency must be 1..1000 and --requests 1..10000000")
    if not 0 <= args.retry_fraction <= 1 or not 0 <= args.cancel_fraction <= 1:
        parser.error("--retry-fraction and --cancel-fraction are fractions: 0..1")
    if getattr(args, "events", 1) < 1 or args.seats < 1:
        parser.error("--events and --seats must be positive")
    if args.users < 0 or args.user_cap < 1:
        parser.error("--users must be 0 (automatic) or more, --user-cap positive")
    if (users := _workload(args).user_count()) > MAX_USERS:
        parser.error(
            f"{users} users would be needed to stay under --user-cap {args.user_cap}: pass --users N "
            f"(at most {MAX_USERS}), raising the target's MAX_SEATS_PER_USER_PER_EVENT and --user-cap to match"
        )


def print_audit(report: Report) -> None:
    print("\n".join(report.lines()))


def print_result(result: Result) -> None:
    print(result.stats.report())
    for problem in result.problems:
        print(f"  PROBLEM: {problem}")
    if result.audit is not None:
        print_audit(result.audit)
    else:
        print("audit skipped (--no-audit)")
    print("PASSED" if result.ok else "FAILED")


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.mode == "waitlist":
        waitlist_cli.check(parser, args)
        return waitlist_cli.main(args)
    _check(parser, args)
    sweep = DEFAULT_SWEEP_INTERVAL if args.hold_sweep_interval is None else args.hold_sweep_interval
    if args.mode == "audit":
        report = settled_audit(args.booking_dsn, args.event_dsn, args.settle_timeout, sweep_interval=sweep)
        print_audit(report)
        return 0 if report.ok else 1
    workload = _workload(args)
    if args.launch:
        settings = LaunchSettings(args.hold_ttl, args.hold_sweep_interval, args.user_cap)
        with launched_stack(settings) as stack:
            targets = Targets(
                stack.booking_url,
                stack.event_url,
                stack.identity,
                None if args.no_audit else stack.booking_dsn,
                None if args.no_audit else stack.event_dsn,
                hold_sweep_interval=sweep,
            )
            return _load(workload, targets, args.settle_timeout)
    targets = Targets(
        booking_url=args.booking_url,
        event_url=args.event_url,
        identity=dev_identity(),
        booking_dsn=None if args.no_audit else args.booking_dsn,
        event_dsn=None if args.no_audit else args.event_dsn,
        hold_sweep_interval=sweep,
    )
    return _load(workload, targets, args.settle_timeout)


def _load(workload: Workload, targets: Targets, settle_timeout: float) -> int:
    print(workload.describe(), flush=True)
    # uvloop: the load generator shares the machine's cores with what it measures; the less
    # CPU it takes per request, the less it distorts the figures.
    result = uvloop.run(run(workload, targets, settle_timeout))
    print_result(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
