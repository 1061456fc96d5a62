"""Two booking service replicas on one database, as in production: their hold sweepers share
the expiring holds and their event-cancellation followers the cancelled event's bookings, and
when one replica dies in the middle of a cancellation the other finishes it. Every hold ends
EXPIRED and every booking of the cancelled event CANCELLED, each seat back exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from e2e.conftest import available, book, booking_replica, cancel_event, create_event, settled_audit
from tools.stack.stack import Stack
from tools.testing.launch import running_stack
from tools.testing.postgres import PostgresServer

TTL, SWEEP, POLL = 2, 0.05, 0.3
SETTINGS = {
    "HOLD_TTL_SECONDS": str(TTL),
    "HOLD_SWEEP_INTERVAL_SECONDS": str(SWEEP),
    "EVENT_CANCELLATION_POLL_SECONDS": str(POLL),
}


@pytest.fixture
def stack(postgresql_server: PostgresServer, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(postgresql_server, tmp_path, **SETTINGS) as stack:
        yield stack


async def test_two_replicas_expire_every_hold_once(http: aiohttp.ClientSession, stack: Stack) -> None:
    replica = booking_replica(stack)
    try:
        event_id = await create_event(http, stack, 400)
        holds = await asyncio.gather(*(book(http, stack, event_id, f"u{n}", seats=2, hold=True) for n in range(200)))
        assert Counter(status for status, _ in holds) == {201: 200}
        assert await available(http, stack, event_id) == 0
        await asyncio.sleep(TTL + 1)
        report = await settled_audit(stack, sweep_interval=SWEEP)
        assert report.ok, report.lines()
        assert report.bookings_by_status == {"EXPIRED": 200}
        assert await available(http, stack, event_id) == 400
    finally:
        replica.child.stop(10)


async def test_a_replica_dying_mid_cancellation_leaves_the_rest_to_the_other(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    # The stack's own replica stays healthy; the second dies after the first chunk it cancels.
    # Holds last long here: each one is cancelled with its event, none runs out first.
    stack.start_service("booking", HOLD_TTL_SECONDS="600")
    replica = booking_replica(stack, HOLD_TTL_SECONDS="600", TICKETFLOW_TEST_FAULTS="event_cancel_after_chunk")
    try:
        event_id = await create_event(http, stack, 700)
        gate = asyncio.Semaphore(64)

        async def one(n: int) -> tuple[int, dict[str, Any]]:
            async with gate:
                return await book(http, stack, event_id, f"owner-{n % 40}", hold=n % 2 == 0)

        booked = await asyncio.gather(*(one(n) for n in range(600)))
        assert Counter(status for status, _ in booked) == {201: 600}
        # The healthy replica is frozen while the event is cancelled, so that the dying one
        # starts the work: it cancels a chunk and dies. Then the healthy one thaws and finishes.
        os.kill(stack.booking.pid, signal.SIGSTOP)
        try:
            status, _ = await cancel_event(http, stack, event_id)
            assert status == 200
            assert await asyncio.to_thread(replica.wait, 30) == -9
        finally:
            os.kill(stack.booking.pid, signal.SIGCONT)
        report = await settled_audit(stack, timeout=60, sweep_interval=SWEEP)
        assert report.ok, report.lines()
        assert report.bookings_by_status == {"CANCELLED": 600}
        assert await available(http, stack, event_id) == 700
        assert stack.booking.exit_code() is None
    finally:
        replica.child.stop(10)
