"""One load run end to end: create its events, drive the workload, check the answers, audit.

A run fails (`Result.ok` is false) on any of:
- a status other than those the API promises for a healthy system: 201 or 409 for a booking
  (and its retry), 200 or 409 HOLD_EXPIRED for a confirm, 200 for a cancel. A 5xx, a 503
  "event service unavailable", a 422 or a transport error (timeout, reset) all count: under
  load, a healthy system answers them none;
- a hold answered other than HELD with an expireTime, a confirm answered 409 for another
  reason than HOLD_EXPIRED;
- a retry with the same Idempotency-Key answered differently from the first request;
- an event whose seats left (GET /events/{id}) differ from its total minus the seats of the
  bookings this run saw confirmed and not cancelled (the run's events are its own);
- a sold-out answer (409) for an event that still has seats for a booking, when nothing was
  cancelled and no hold was left to run out (no false SOLD_OUT);
- a USER_LIMIT_REACHED answer (409) when the workload has enough users that none can reach
  the per-user cap;
- a violation found by the audit of both databases.

Holds not confirmed run out: before its checks the run waits until the last hold it saw has
expired and the target's hold sweeper (every `Targets.hold_sweep_interval` seconds) has had
time to give its seats back, so that the checks and the audit see them back; the audit then
also finds any hold still HELD past its expiry.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp

from tools.audit.invariants import DEFAULT_SWEEP_INTERVAL, Report
from tools.audit.settled import settled_audit
from tools.devkeys import DevIdentity
from tools.loadtest.driver import Api, Outcome, drive
from tools.loadtest.stats import RunStats
from tools.loadtest.tokens import Tokens
from tools.loadtest.workload import Workload

EXPECTED = {"book": {201, 409}, "retry": {201, 409}, "confirm": {200, 409}, "cancel": {200}}
# Beyond the last expiry and a sweep interval: time for the sweep to give the seats back.
EXPIRY_MARGIN = 1.0


@dataclass(frozen=True)
class Targets:
    booking_url: str
    event_url: str
    # The dev signing key the target verifies tokens with (the stack's `dev_home`).
    identity: DevIdentity
    booking_dsn: str | None = None  # None: no audit
    event_dsn: str | None = None
    # The target's HOLD_SWEEP_INTERVAL_SECONDS: how long after its expiry a hold may stay HELD.
    hold_sweep_interval: float = DEFAULT_SWEEP_INTERVAL


@dataclass
class Result:
    workload: Workload
    event_ids: list[str]
    stats: RunStats
    problems: list[str] = field(default_factory=list)
    audit: Report | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and (self.audit is None or self.audit.ok)


async def run(
    workload: Workload,
    targets: Targets,
    settle_timeout: float = 60.0,
    measure: AbstractContextManager[object] | None = None,
) -> Result:
    """Mints the run's tokens, creates its events, drives the workload, checks the answers and
    audits. `measure` (a CPU meter, say) is entered for the load itself, not for the set-up and
    checks."""
    # Valid for the whole run, however long it is told to last.
    ttl = timedelta(hours=1, seconds=(workload.duration or 0) + settle_timeout)
    tokens = await asyncio.to_thread(Tokens.mint, targets.identity, workload.user_names(), ttl)
    connector = aiohttp.TCPConnector(limit=workload.concurrency, limit_per_host=workload.concurrency)
    timeout = aiohttp.ClientTimeout(total=workload.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        api = Api(session, targets.booking_url, targets.event_url, tokens)
        event_ids = [
            await api.create_event(f"Load test: {workload.mode} #{n + 1}", workload.seats_per_event)
            for n in range(workload.events)
        ]
        result = Result(workload, event_ids, RunStats())
        outcome = Outcome()
        with measure or nullcontext():
            await drive(api, workload, event_ids, result.stats, outcome)
        result.problems += _unexpected_statuses(result.stats)
        result.problems += outcome.problems[:20]
        await _wait_out_holds(outcome, result.stats.holds_left_to_expire, targets.hold_sweep_interval)
        result.problems += await _seat_checks(api, workload, event_ids, outcome, result.stats.holds_left_to_expire)
    if targets.booking_dsn and targets.event_dsn:
        result.audit = await asyncio.to_thread(
            settled_audit,
            targets.booking_dsn,
            targets.event_dsn,
            settle_timeout,
            sweep_interval=targets.hold_sweep_interval,
        )
    return result


async def _wait_out_holds(outcome: Outcome, left: int, sweep_interval: float) -> None:
    """Sleeps until the last hold seen has expired and been swept (by this machine's clock,
    against the booking service's expireTime: the same clock when both run here)."""
    if not left or outcome.latest_expiry is None:
        return
    wait = (outcome.latest_expiry - datetime.now(UTC)).total_seconds() + sweep_interval + EXPIRY_MARGIN
    if wait > 0:
        sys.stderr.write(f"waiting {wait:.1f} s for {left} hold(s) to run out and be swept\n")
        await asyncio.sleep(wait)


def _unexpected_statuses(stats: RunStats) -> list[str]:
    problems = []
    for name, series in stats.series().items():
        unexpected = {status: n for status, n in series.statuses.items() if status not in EXPECTED[name]}
        if unexpected:
            problems.append(f"unexpected {name} answers: {unexpected}")
    return problems


async def _seat_checks(
    api: Api, workload: Workload, event_ids: list[str], outcome: Outcome, holds_run_out: int
) -> list[str]:
    problems = []
    for index, event_id in enumerate(event_ids):
        available = await api.available_seats(event_id)
        expected = workload.seats_per_event - outcome.held[index]
        if available != expected:
            problems.append(
                f"event {event_id}: {available} seats left, but {workload.seats_per_event} - "
                f"{outcome.held[index]} confirmed by this run = {expected}"
            )
        # Seats given back after the sale (cancels, holds run out) may well be left over.
        given_back = workload.cancel_fraction or holds_run_out
        if not given_back and outcome.sold_out_answers[index] and available >= workload.seats_per_booking:
            answers = outcome.sold_out_answers[index]
            problems.append(f"event {event_id}: {answers} SOLD_OUT answers, yet {available} seats are left")
        if outcome.user_limit_answers[index] and not workload.cap_reachable():
            answers = outcome.user_limit_answers[index]
            problems.append(
                f"event {event_id}: {answers} USER_LIMIT_REACHED answers, yet no user asked for more than "
                f"{workload.user_cap} seats"
            )
    return problems[:20]
