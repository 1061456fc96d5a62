"""On-sale windows end to end, both services as real processes: a flash sale opening at a set
instant, with 64 clients racing it, refuses everything decided before the instant and sells
exactly the seats after it; a sale's end refuses what comes after; a refusal replayed with its
Idempotency-Key stays the same refusal after the window opens. The client's clock and the
services' (PostgreSQL's) are this machine's one clock."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp

from e2e.conftest import auth, available, book, create_event, get_event, instant, reason, rfc3339, settled_audit
from tools.stack.stack import Stack

CLIENTS = 64
SEATS = 50


@dataclass(frozen=True)
class Answer:
    sent: float  # time.time() when the request was sent
    received: float  # ... and when its answer was read
    status: int
    reason: str | None
    metadata: dict[str, str]


async def _client(
    http: aiohttp.ClientSession, stack: Stack, event_id: str, headers: dict[str, str], start: float, give_up: float
) -> list[Answer]:
    """Books one seat after another from `start` until the event is sold out."""
    await asyncio.sleep(max(0.0, start - time.time()))
    answers: list[Answer] = []
    while time.time() < give_up:
        sent = time.time()
        async with http.post(
            f"{stack.booking_url}/bookings", json={"eventId": event_id, "seats": 1}, headers=headers
        ) as response:
            body = await response.json()
            status = response.status
        received = time.time()
        detail = body["details"][0] if status >= 400 else {}
        answers.append(Answer(sent, received, status, detail.get("reason"), detail.get("metadata", {})))
        if detail.get("reason") == "SALES_NOT_STARTED":
            await asyncio.sleep(0.02)  # keep knocking, but leave the two cores some room
        elif status != 201:
            break  # sold out (or a failure, which the test reports)
    return answers


async def test_a_sale_opening_at_an_instant_refuses_before_and_sells_exactly_the_seats_after(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    headers = [auth(stack, f"fan-{n}") for n in range(CLIENTS)]  # signed before the race
    opening = datetime.now(UTC) + timedelta(seconds=3)
    event_id = await create_event(http, stack, SEATS, salesStartTime=rfc3339(opening))
    assert instant((await get_event(http, stack, event_id))["salesStartTime"]) == opening
    at = opening.timestamp()

    runs = await asyncio.gather(*(_client(http, stack, event_id, h, at - 1.0, at + 30) for h in headers))
    answers = [a for run in runs for a in run]
    outcomes = Counter((a.status, a.reason) for a in answers)
    assert set(outcomes) <= {(201, None), (409, "SALES_NOT_STARTED"), (409, "SOLD_OUT")}, outcomes
    assert outcomes[(201, None)] == SEATS, outcomes
    assert outcomes[(409, "SALES_NOT_STARTED")] >= CLIENTS, outcomes  # everyone knocked before the opening
    # Never half: no seat was sold before the opening instant ...
    early = [a for a in answers if a.status == 201 and a.received < at]
    assert not early, f"{len(early)} bookings answered 201 up to {at - min(a.received for a in early):.3f} s early"
    # ... and no request sent after it was told the sale had not started.
    late = [a for a in answers if a.reason == "SALES_NOT_STARTED" and a.sent >= at]
    assert not late, f"{len(late)} requests sent after the opening were refused SALES_NOT_STARTED"
    refusals = {a.metadata.get("sales_start_time") for a in answers if a.reason == "SALES_NOT_STARTED"}
    assert {instant(t) for t in refusals if t} == {opening} and None not in refusals, refusals
    # Every client was eventually told it was sold out.
    assert all(run and run[-1].reason == "SOLD_OUT" for run in runs)

    assert await available(http, stack, event_id) == 0
    report = await settled_audit(stack)
    assert report.ok, report.lines()
    assert report.bookings_by_status["CONFIRMED"] == SEATS
    assert report.bookings_by_status["REJECTED"] == len(answers) - SEATS


async def test_a_sales_window_refuses_before_and_after_and_replays_keep_their_answer(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    now = datetime.now(UTC)
    start, end = now + timedelta(seconds=1.5), now + timedelta(seconds=3.5)
    event_id = await create_event(http, stack, 10, salesStartTime=rfc3339(start), salesEndTime=rfc3339(end))

    status, early = await book(http, stack, event_id, key="early")
    assert status == 409 and reason(early) == "SALES_NOT_STARTED", early
    assert instant(early["details"][0]["metadata"]["sales_start_time"]) == start

    await asyncio.sleep(max(0.0, start.timestamp() - time.time()) + 0.1)
    status, body = await book(http, stack, event_id, "bob")
    assert status == 201 and body["status"] == "CONFIRMED", body
    # The refused request, retried with its key once the sale is open: the same refusal.
    status, again = await book(http, stack, event_id, key="early")
    assert status == 409 and reason(again) == "SALES_NOT_STARTED", again
    assert again["details"][0]["metadata"] == early["details"][0]["metadata"]
    status, body = await book(http, stack, event_id, key="on-time")
    assert status == 201, body

    await asyncio.sleep(max(0.0, end.timestamp() - time.time()) + 0.1)
    status, late = await book(http, stack, event_id, "carol")
    assert status == 409 and reason(late) == "SALES_ENDED", late
    status, again = await book(http, stack, event_id, key="on-time")  # a replay of a success still succeeds
    assert status == 201 and again["status"] == "CONFIRMED"

    assert await available(http, stack, event_id) == 8
    report = await settled_audit(stack)
    assert report.ok, report.lines()
    assert report.bookings_by_status == {"CONFIRMED": 2, "REJECTED": 2}


async def test_a_sales_window_that_ends_before_it_starts_is_refused(http: aiohttp.ClientSession, stack: Stack) -> None:
    now = datetime.now(UTC)
    body = {
        "name": "Backwards",
        "startTime": "2027-06-01T20:00:00Z",
        "totalSeats": 10,
        "salesStartTime": rfc3339(now + timedelta(hours=2)),
        "salesEndTime": rfc3339(now + timedelta(hours=1)),
    }
    async with http.post(f"{stack.event_url}/events", json=body, headers=auth(stack, "ops", admin=True)) as response:
        assert response.status == 400
        answer = await response.json()
    assert reason(answer) == "FIELD_INVALID" and answer["details"][0]["metadata"]["field"] == "sales_end_time"
    async with http.get(f"{stack.event_url}/events") as response:
        assert (await response.json())["totalSize"] == 0  # nothing written
