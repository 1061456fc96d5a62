"""The waiting-list load run (`tools.loadtest.waitlist`) against both services, with two booking
service replicas: an event sold out to 100 buyers, 500 users joining its list at once, a stream
of cancellations while the waiters confirm, decline or let run out the offers they get, and one
replica SIGKILLed midway, its successor killed between recording offers and acknowledging them,
then a healthy one started. It ends with a clean audit (offers recorded once
each, first fit in join order, no queue jumping, nothing PENDING or EXPIRING), every freed seat
offered (no WAITING entry fits the seats left) and every kind of offer outcome seen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from e2e.conftest import booking_replica, settled_audit
from tools.loadtest.driver import Api
from tools.loadtest.tokens import Tokens
from tools.loadtest.waitlist import WaitlistPlan, run_waitlist, verdict
from tools.stack.services import Service
from tools.stack.stack import Stack
from tools.testing.launch import running_stack
from tools.testing.postgres import PostgresServer

OFFER_TTL, SWEEP = 3, 0.05
SETTINGS = {
    "WAITLIST_OFFER_TTL_SECONDS": str(OFFER_TTL),
    "WAITLIST_POLL_SECONDS": "0.1",
    "HOLD_SWEEP_INTERVAL_SECONDS": str(SWEEP),
}
PLAN = WaitlistPlan(seats=200, waiters=500, cancellations=80, interval=0.1, offer_ttl=OFFER_TTL, seed=14)


@pytest.fixture
def stack(postgresql_server: PostgresServer, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(postgresql_server, tmp_path, **SETTINGS) as stack:
        yield stack


async def test_500_waiters_and_a_stream_of_cancellations_survive_a_replica_killed_midway(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    started = time.monotonic()
    # The requests go to the stack's replica; the second one shares the background work
    # (recording offers, expiring them) until it is killed, and again once restarted.
    replicas: list[Service] = [booking_replica(stack)]
    killed: list[int | None] = []

    async def kill_and_restart() -> None:
        victim = replicas[-1]
        victim.child.kill()
        killed.append(await asyncio.to_thread(victim.wait, 10))
        # Its successor dies too, at the worst moment: offers recorded, not yet acknowledged
        # (the fault point kills it with SIGKILL), maybe before it is even ready: its offer
        # follower starts at once. Then a healthy one takes over.
        faulty = booking_replica(stack, None, TICKETFLOW_TEST_FAULTS="waitlist_offer_before_ack")
        replicas.append(faulty)
        killed.append(await asyncio.to_thread(faulty.wait, 60))
        replicas.append(await asyncio.to_thread(booking_replica, stack))

    tokens = Tokens.mint(stack.identity, PLAN.users(), timedelta(hours=1))
    try:
        outcome = await run_waitlist(Api(http, stack.booking_url, stack.event_url, tokens), PLAN, kill_and_restart)
        report = await settled_audit(stack, timeout=30, sweep_interval=SWEEP)
    finally:
        for replica in replicas:
            replica.child.stop(10)
    print(outcome.report())
    print("\n".join(report.lines()))

    # No unexpected answer, and every freed seat was offered (no WAITING entry fits what is
    # left); the audit checks the same in the databases, and the order of the offers.
    assert verdict(outcome) == []
    assert killed == [-9, -9]
    assert report.ok, report.lines()
    assert not {"PENDING", "CANCELLING", "EXPIRING"} & report.bookings_by_status.keys()
    assert outcome.event.get("waitlistSize", 0) > 0  # the list never ran dry, so no newcomer ever booked
    assert set(outcome.newcomer_answers) == {"409 SOLD_OUT"}
    assert outcome.confirmed and outcome.declined and outcome.expired and outcome.cancelled >= PLAN.cancellations
    assert outcome.offers == outcome.confirmed + outcome.declined + outcome.expired
    assert time.monotonic() - started < 180, "the run took too long"
