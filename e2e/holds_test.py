"""Holds end to end, both services as real processes with a short HOLD_TTL_SECONDS: a hold
takes its seats at once, is confirmed (idempotently) or released by its owner, or runs out and
gives its seats back with no request at all; confirms racing the expiry each have exactly one
outcome, and the answer agrees with the booking's final state. Every test ends with the audit
(which also finds any hold left HELD past its expiry)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from e2e.conftest import (
    auth,
    available,
    book,
    confirm,
    create_event,
    get_booking,
    instant,
    reason,
    settled_audit,
)
from tools.stack.stack import Stack
from tools.testing.launch import running_stack
from tools.testing.postgres import PostgresServer

# Short enough that tests wait little, long enough that a hold is confirmed well before it runs
# out when the test means it to be; the sweeper looks as often as the service allows.
TTL = 3
SWEEP = 0.05


@pytest.fixture
def stack(postgresql_server: PostgresServer, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(
        postgresql_server, tmp_path, HOLD_TTL_SECONDS=str(TTL), HOLD_SWEEP_INTERVAL_SECONDS=str(SWEEP)
    ) as stack:
        yield stack


async def _audit(stack: Stack) -> None:
    report = await settled_audit(stack, sweep_interval=SWEEP)
    assert report.ok, report.lines()


async def _seats_back(
    http: aiohttp.ClientSession, stack: Stack, event_id: str, seats: int, deadline: datetime
) -> tuple[int, datetime]:
    """Polls the event until it has `seats` seats available or the deadline passes: (its
    available seats, when they were seen)."""
    while True:
        now = await available(http, stack, event_id)
        seen = datetime.now(UTC)
        if now == seats or seen > deadline:
            return now, seen
        await asyncio.sleep(0.05)


async def test_a_hold_takes_its_seats_and_runs_out_with_no_request(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 5)
    before = datetime.now(UTC)
    status, hold = await book(http, stack, event_id, seats=2, hold=True, key="cart-9")
    assert status == 201, hold
    assert hold["status"] == "HELD" and hold["hold"] is True
    expires = instant(hold["expireTime"])
    # now() + HOLD_TTL_SECONDS on the database's clock (the same machine's).
    assert before + timedelta(seconds=TTL - 1) < expires < datetime.now(UTC) + timedelta(seconds=TTL + 1)
    assert await available(http, stack, event_id) == 3

    # Nobody asks the booking service anything: only the event's seats are watched.
    seats, came_back = await _seats_back(http, stack, event_id, 5, expires + timedelta(seconds=SWEEP + 5))
    assert seats == 5
    assert came_back >= expires, "the seats came back before the hold ran out"

    expired = await get_booking(http, stack, hold["id"])
    assert expired["status"] == "EXPIRED"
    assert expired["expireTime"] == hold["expireTime"]  # kept once EXPIRED
    status, body = await confirm(http, stack, hold["id"])
    assert status == 409 and reason(body) == "HOLD_EXPIRED", body
    # Cancelling an expired hold returns it unchanged; the seats stay given back once.
    async with http.delete(f"{stack.booking_url}/bookings/{hold['id']}", headers=auth(stack)) as response:
        assert response.status == 200 and (await response.json())["status"] == "EXPIRED"
    assert await available(http, stack, event_id) == 5
    # Replaying the hold's request with its key answers that booking, as it is now: no new hold.
    status, replay = await book(http, stack, event_id, seats=2, hold=True, key="cart-9")
    assert status == 201 and replay["id"] == hold["id"] and replay["status"] == "EXPIRED", replay
    assert await available(http, stack, event_id) == 5
    await _audit(stack)


async def test_a_confirmed_hold_keeps_its_seats_and_confirming_again_answers_the_same(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    event_id = await create_event(http, stack, 5)
    status, hold = await book(http, stack, event_id, seats=2, hold=True, key="cart-1")
    assert status == 201 and hold["status"] == "HELD"
    # The same key and body: the same hold, no more seats taken.
    status, again = await book(http, stack, event_id, seats=2, hold=True, key="cart-1")
    assert status == 201 and again["id"] == hold["id"]
    # The same key for a booking that is not a hold is another request.
    status, other = await book(http, stack, event_id, seats=2, key="cart-1")
    assert status == 422 and reason(other) == "IDEMPOTENCY_KEY_REUSED"
    assert await available(http, stack, event_id) == 3

    status, confirmed = await confirm(http, stack, hold["id"])
    assert status == 200 and confirmed["status"] == "CONFIRMED", confirmed
    status, twice = await confirm(http, stack, hold["id"])
    assert status == 200 and twice == confirmed
    # Someone else cannot confirm it, nor see it.
    status, body = await confirm(http, stack, hold["id"], user="bob")
    assert status == 404 and reason(body) == "BOOKING_NOT_FOUND"

    await asyncio.sleep(TTL + 1)  # past the hold's expiry: a confirmed hold stays confirmed
    assert (await get_booking(http, stack, hold["id"]))["status"] == "CONFIRMED"
    assert await available(http, stack, event_id) == 3
    status, body = await book(http, stack, event_id)
    assert status == 201 and body["status"] == "CONFIRMED" and not body.get("expireTime")
    status, body = await confirm(http, stack, body["id"])
    assert status == 200 and body["status"] == "CONFIRMED"  # confirming a confirmed booking: unchanged
    await _audit(stack)


async def test_a_released_hold_gives_its_seats_back_once(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 5)
    status, hold = await book(http, stack, event_id, seats=3, hold=True)
    assert status == 201
    async with http.delete(f"{stack.booking_url}/bookings/{hold['id']}", headers=auth(stack)) as response:
        assert response.status == 200
        assert (await response.json())["status"] == "CANCELLED"
    assert await available(http, stack, event_id) == 5
    status, body = await confirm(http, stack, hold["id"])
    assert status == 409 and reason(body) == "BOOKING_NOT_CONFIRMABLE", body
    assert body["details"][0]["metadata"]["status"] == "CANCELLED"
    await asyncio.sleep(TTL + 0.5)  # the sweeper finds nothing to give back twice
    assert await available(http, stack, event_id) == 5
    await _audit(stack)


async def test_holds_count_against_the_per_user_cap(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 100)
    status, _ = await book(http, stack, event_id, seats=15, hold=True)
    assert status == 201
    status, body = await book(http, stack, event_id, seats=6)
    assert status == 409 and reason(body) == "USER_LIMIT_REACHED", body
    # Once the hold has run out, its seats no longer count.
    await asyncio.sleep(TTL + 1)
    status, body = await book(http, stack, event_id, seats=6)
    assert status == 201, body
    await _audit(stack)


RACES = 100
# Confirms fired from SPREAD seconds before each hold's expireTime to SPREAD seconds after.
# Wide enough that, on a loaded 2-core machine, the earlier half of the confirms sent before
# the expiry still arrive before it (the test needs both outcomes to happen).
SPREAD = 0.6


async def test_confirms_racing_expiry_have_exactly_one_outcome_each(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, RACES)
    users = [f"racer-{n}" for n in range(RACES)]
    tokens = {user: auth(stack, user) for user in users}  # signed up front, not mid-race
    holds = await asyncio.gather(*(book(http, stack, event_id, user, hold=True) for user in users))
    assert all(status == 201 and body["status"] == "HELD" for status, body in holds), holds
    assert await available(http, stack, event_id) == 0

    async def race(n: int, hold: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        # This machine's clock and the database's are the same clock.
        offset = -SPREAD + 2 * SPREAD * n / (RACES - 1)
        fire_at = instant(hold["expireTime"]).timestamp() + offset
        await asyncio.sleep(max(0.0, fire_at - time.time()))
        url = f"{stack.booking_url}/bookings/{hold['id']}:confirm"
        async with http.post(url, json={}, headers=tokens[hold["userId"]]) as response:
            return response.status, await response.json(), offset

    answers = await asyncio.gather(*(race(n, body) for n, (_, body) in enumerate(holds)))
    await asyncio.sleep(SWEEP + 1)  # every hold that lost has been swept
    report = await settled_audit(stack, sweep_interval=SWEEP)
    assert report.ok, report.lines()

    outcomes: Counter[str] = Counter()
    for (_, hold), (status, body, offset) in zip(holds, answers, strict=True):
        final = await get_booking(http, stack, hold["id"], user=hold["userId"])
        if status == 200:
            # The confirm won: the booking is CONFIRMED, and was confirmed before it expired.
            assert body["status"] == "CONFIRMED" and final["status"] == "CONFIRMED", (offset, body, final)
            outcomes["confirmed"] += 1
        else:
            # The expiry won: the confirm was told so, and the hold ended EXPIRED.
            assert status == 409 and reason(body) == "HOLD_EXPIRED", (offset, status, body)
            assert final["status"] == "EXPIRED", (offset, final)
            outcomes["expired"] += 1
        # Sent after the expiry, it is decided after it too: it must lose. (One sent before may
        # still lose, when it is decided after the expiry: the row's state decides, not the send.)
        if offset > 0:
            assert status == 409, f"a confirm sent {offset:.2f} s after expiry won: {body}"
        # Asking again gets the same answer: the outcome is final.
        again, again_body = await confirm(http, stack, hold["id"], user=hold["userId"])
        assert again == status and (again != 200 or again_body == body)
    assert outcomes["confirmed"] + outcomes["expired"] == RACES
    assert outcomes["confirmed"] > 10 and outcomes["expired"] > 10, outcomes
    assert report.bookings_by_status == {"CONFIRMED": outcomes["confirmed"], "EXPIRED": outcomes["expired"]}
    # Every expired hold's seat came back exactly once.
    assert await available(http, stack, event_id) == outcomes["expired"]


async def test_holds_running_out_while_the_event_service_is_down_come_back_once_it_is_up(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    event_id = await create_event(http, stack, 5)
    holds = [await book(http, stack, event_id, seats=n, hold=True) for n in (1, 2)]
    assert all(status == 201 for status, _ in holds)
    assert stack.stop_service("event") == 0
    await asyncio.sleep(TTL + 1)
    # Ran out: no confirm can win any more, though the seats cannot be given back yet. Each is
    # EXPIRING: the sweeper marks due holds every round, whatever the releases of an earlier
    # round still wait for.
    for _, hold in holds:
        assert (await get_booking(http, stack, hold["id"]))["status"] == "EXPIRING"
        status, body = await confirm(http, stack, hold["id"])
        assert status == 409 and reason(body) == "HOLD_EXPIRED", body
    stack.start_service("event")
    # The reconciler finishes them: seats back once, EXPIRED.
    report = await settled_audit(stack, sweep_interval=SWEEP)
    assert report.ok, report.lines()
    assert report.bookings_by_status == {"EXPIRED": 2}
    assert await available(http, stack, event_id) == 5


async def test_holds_of_a_killed_booking_service_run_out_once_it_is_back(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    event_id = await create_event(http, stack, 5)
    status, hold = await book(http, stack, event_id, seats=3, hold=True)
    assert status == 201
    stack.kill_service("booking")
    await asyncio.sleep(TTL + 0.5)
    assert await available(http, stack, event_id) == 2  # nobody was there to give them back
    stack.start_service("booking")
    seats, _ = await _seats_back(http, stack, event_id, 5, datetime.now(UTC) + timedelta(seconds=10))
    assert seats == 5
    assert (await get_booking(http, stack, hold["id"]))["status"] == "EXPIRED"
    await _audit(stack)


async def test_releases_racing_expiry_give_every_seat_back_exactly_once(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    racers = 50
    event_id = await create_event(http, stack, racers * 2)
    users = [f"leaver-{n}" for n in range(racers)]
    tokens = {user: auth(stack, user) for user in users}
    holds = await asyncio.gather(*(book(http, stack, event_id, user, seats=2, hold=True) for user in users))
    assert all(status == 201 for status, _ in holds), holds

    async def release(n: int, hold: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        offset = -SPREAD + 2 * SPREAD * n / (racers - 1)
        await asyncio.sleep(max(0.0, instant(hold["expireTime"]).timestamp() + offset - time.time()))
        url = f"{stack.booking_url}/bookings/{hold['id']}"
        async with http.delete(url, headers=tokens[hold["userId"]]) as response:
            return response.status, await response.json()

    answers = await asyncio.gather(*(release(n, body) for n, (_, body) in enumerate(holds)))
    report = await settled_audit(stack, sweep_interval=SWEEP)
    assert report.ok, report.lines()
    for (_, hold), (status, body) in zip(holds, answers, strict=True):
        assert status == 200, body
        final = (await get_booking(http, stack, hold["id"], user=hold["userId"]))["status"]
        # The release won (CANCELLED), or the expiry did and the release returned the hold as it was.
        assert (body["status"], final) in {
            ("CANCELLED", "CANCELLED"),
            ("EXPIRING", "EXPIRED"),
            ("EXPIRED", "EXPIRED"),
        }, (body["status"], final)
    assert set(report.bookings_by_status) <= {"CANCELLED", "EXPIRED"}
    assert await available(http, stack, event_id) == racers * 2  # every seat back, once
