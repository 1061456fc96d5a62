"""The `waitlist` mode of the load tool: the waiting-list load run of `//e2e:waitlist_load_test`
(`tools.loadtest.waitlist`), by hand.

    bazel run //tools/loadtest -- waitlist --launch --kill-midway
    bazel run //tools/loadtest -- waitlist --waiters 2000 --offer-ttl 1800 \\
        --booking-dsn '...' --event-dsn '...'                 # a running stack (//:ticketflow)

With --launch the tool starts its own stack with --offer-ttl (default 5) as
WAITLIST_OFFER_TTL_SECONDS, --waitlist-poll as WAITLIST_POLL_SECONDS and --hold-sweep-interval
(default 0.05) as HOLD_SWEEP_INTERVAL_SECONDS; --kill-midway starts a second booking replica
and SIGKILLs it (then starts it again) halfway through the cancellations. Against a running
stack, --offer-ttl must be its WAITLIST_OFFER_TTL_SECONDS (offers left to run out are waited
for that long). A run fails on an unexpected answer, a freed seat left unoffered, a newcomer
booking while the list waited, or a violation found by the audit.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from tools.audit.settled import settled_audit
from tools.devkeys import DevIdentity, dev_identity
from tools.loadtest.launch import LaunchSettings, launched_stack
from tools.loadtest.waitlist import WaitlistPlan, run_waitlist_session, verdict
from tools.stack.services import Service
from tools.stack.stack import Stack

# Short, so that offers left to run out do so within the run; long enough that a waiter who
# answers does so in time on a busy machine (the launched PostgreSQL is durable: fsync on).
LAUNCH_OFFER_TTL = 5
LAUNCH_SWEEP = 0.05


def add_parser(modes: Any) -> None:
    """Adds the `waitlist` mode to the tool's subcommands."""
    mode = modes.add_parser("waitlist", help="a sold-out event's waiting list under a stream of cancellations")
    plan = WaitlistPlan()
    mode.add_argument("--seats", type=int, default=plan.seats, help="seats, sold out 2 per buyer (default %(default)s)")
    mode.add_argument("--waiters", type=int, default=plan.waiters, help="users joining the list (default %(default)s)")
    mode.add_argument("--cancellations", type=int, default=plan.cancellations, help="buyers' bookings cancelled")
    mode.add_argument("--interval", type=float, default=plan.interval, help="seconds between cancellations")
    for name in ("confirm", "decline", "recancel", "leave"):
        mode.add_argument(f"--{name}-fraction", type=float, default=getattr(plan, f"{name}_fraction"))
    mode.add_argument("--concurrency", type=int, default=plan.concurrency, help="requests in flight while joining")
    mode.add_argument("--seed", type=int, default=plan.seed)
    mode.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default %(default)s)")
    mode.add_argument("--launch", action="store_true", help="run against a throw-away stack of the tool's own")
    mode.add_argument(
        "--offer-ttl", type=int, help="the target's WAITLIST_OFFER_TTL_SECONDS (with --launch: default 5)"
    )
    mode.add_argument("--waitlist-poll", type=float, help="with --launch: the stack's WAITLIST_POLL_SECONDS")
    mode.add_argument("--hold-sweep-interval", type=float, help="the target's HOLD_SWEEP_INTERVAL_SECONDS")
    mode.add_argument("--kill-midway", action="store_true", help="with --launch: kill a second booking replica midway")
    mode.add_argument("--booking-url", default="http://127.0.0.1:8081")
    mode.add_argument("--event-url", default="http://127.0.0.1:8082")
    mode.add_argument("--booking-dsn", help="booking_service's database (libpq connection string)")
    mode.add_argument("--event-dsn", help="event_service's database (libpq connection string)")
    mode.add_argument("--no-audit", action="store_true", help="skip the audit of the databases")
    mode.add_argument(
        "--settle-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for a quiet moment (and, beyond its TTL, for an offer to run out)",
    )


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.launch:
        if args.kill_midway or args.waitlist_poll is not None:
            parser.error("--kill-midway and --waitlist-poll need --launch")
        if args.offer_ttl is None:
            parser.error("--offer-ttl: the target's WAITLIST_OFFER_TTL_SECONDS (or --launch)")
        if not args.no_audit and not (args.booking_dsn and args.event_dsn):
            parser.error("the audit needs --booking-dsn and --event-dsn (or --no-audit, or --launch)")
    if args.offer_ttl is not None and not 1 <= args.offer_ttl <= 172800:
        parser.error("--offer-ttl must be 1..172800 seconds")
    if args.seats < 2 or args.waiters < 1 or args.cancellations < 0 or args.interval < 0:
        parser.error("--seats must be 2 or more, --waiters positive, --cancellations and --interval not negative")
    fractions = (args.confirm_fraction, args.decline_fraction, args.recancel_fraction, args.leave_fraction)
    if not all(0 <= f <= 1 for f in fractions) or args.confirm_fraction + args.decline_fraction > 1:
        parser.error("the fractions are 0..1, and --confirm-fraction + --decline-fraction at most 1")


def main(args: argparse.Namespace) -> int:
    if not args.launch:
        return uvloop.run(
            _run(args, args.booking_url, args.event_url, dev_identity(), args.booking_dsn, args.event_dsn)
        )
    settings = LaunchSettings(
        hold_sweep_interval=args.hold_sweep_interval or LAUNCH_SWEEP,
        offer_ttl=args.offer_ttl or LAUNCH_OFFER_TTL,
        waitlist_poll=args.waitlist_poll,
    )
    with launched_stack(settings) as stack:
        args.offer_ttl = settings.offer_ttl
        args.hold_sweep_interval = settings.hold_sweep_interval
        booking_dsn, event_dsn = (None, None) if args.no_audit else (stack.booking_dsn, stack.event_dsn)
        return uvloop.run(_run(args, stack.booking_url, stack.event_url, stack.identity, booking_dsn, event_dsn, stack))


async def _run(
    args: argparse.Namespace,
    booking_url: str,
    event_url: str,
    identity: DevIdentity,
    booking_dsn: str | None,
    event_dsn: str | None,
    stack: Stack | None = None,
) -> int:
    plan = WaitlistPlan(
        seats=args.seats,
        waiters=args.waiters,
        cancellations=args.cancellations,
        interval=args.interval,
        confirm_fraction=args.confirm_fraction,
        decline_fraction=args.decline_fraction,
        recancel_fraction=args.recancel_fraction,
        leave_fraction=args.leave_fraction,
        offer_ttl=args.offer_ttl,
        expiry_grace=args.settle_timeout,
        concurrency=args.concurrency,
        seed=args.seed,
    )
    print(plan.describe(), flush=True)
    replicas: list[Service] = []
    midway = _kill_and_restart(stack, replicas) if stack is not None and args.kill_midway else None
    try:
        outcome = await run_waitlist_session(plan, booking_url, event_url, identity, args.timeout, midway)
    finally:
        for replica in replicas:
            replica.child.stop(10)
    print(outcome.report())
    failures = verdict(outcome)
    for failure in failures:
        print(f"  PROBLEM: {failure}")
    ok = not failures
    if booking_dsn and event_dsn:
        sweep = args.hold_sweep_interval or 1.0
        report = await asyncio.to_thread(settled_audit, booking_dsn, event_dsn, args.settle_timeout, 0.25, sweep)
        print("\n".join(report.lines()))
        ok = ok and report.ok
    else:
        print("audit skipped (--no-audit)")
    print("PASSED" if ok else "FAILED")
    return 0 if ok else 1


def _kill_and_restart(stack: Stack, replicas: list[Service]) -> Callable[[], Awaitable[None]]:
    """A second booking replica now; midway, SIGKILL it and start another."""
    replicas.append(stack.start_replica("booking"))

    async def midway() -> None:
        replicas[-1].child.kill()
        code = await asyncio.to_thread(replicas[-1].wait, 10)
        print(f"killed booking replica pid {replicas[-1].pid} (exit {code}); starting another", flush=True)
        replicas.append(await asyncio.to_thread(stack.start_replica, "booking"))

    return midway
