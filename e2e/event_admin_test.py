"""Changing and cancelling events end to end, both services as real processes: seats can be
added at any time and removed only down to what is sold or held (SEATS_IN_USE), also while
bookings race the change; a sales window moved by PATCH takes effect at once; cancelling an
event with 1,000 bookings (CONFIRMED and HELD) ends every one CANCELLED (EVENT_CANCELLED, as
its owner sees), every seat given back exactly once, even when the booking service is killed
in the middle of the cancellation and restarted. Every test ends with the audit."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from e2e.conftest import (
    auth,
    available,
    book,
    cancel_event,
    create_event,
    get_booking,
    get_event,
    instant,
    reason,
    rfc3339,
    settled_audit,
    update_event,
)
from tools.stack.stack import Stack
from tools.testing.launch import running_stack
from tools.testing.postgres import PostgresServer

# The booking service looks for cancelled events this often (default 2 s): tests wait less.
POLL = 0.5


@pytest.fixture
def stack(postgresql_server: PostgresServer, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(postgresql_server, tmp_path, EVENT_CANCELLATION_POLL_SECONDS=str(POLL)) as stack:
        yield stack


async def _audit(stack: Stack, timeout: float = 20.0) -> None:
    report = await settled_audit(stack, timeout)
    assert report.ok, report.lines()


async def test_seats_can_be_added_but_not_removed_below_what_is_sold_or_held(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    event_id = await create_event(http, stack, 10)
    assert (await book(http, stack, event_id, "alice", seats=3))[0] == 201
    status, hold = await book(http, stack, event_id, "bob", seats=2, hold=True)
    assert status == 201 and hold["status"] == "HELD"
    before = await get_event(http, stack, event_id)
    assert (before["totalSeats"], before["availableSeats"]) == (10, 5)

    status, body = await update_event(http, stack, event_id, mask="totalSeats", totalSeats=4)
    assert status == 409 and reason(body) == "SEATS_IN_USE", body
    assert body["details"][0]["metadata"]["taken_seats"] == "5"
    assert await get_event(http, stack, event_id) == before  # nothing changed

    status, body = await update_event(http, stack, event_id, mask="totalSeats", totalSeats=5)
    assert status == 200 and (body["totalSeats"], body["availableSeats"]) == (5, 0), body
    status, body = await book(http, stack, event_id, "carol")
    assert status == 409 and reason(body) == "SOLD_OUT"

    # No mask: the fields set in the body change.
    status, body = await update_event(http, stack, event_id, totalSeats=8)
    assert status == 200 and (body["totalSeats"], body["availableSeats"]) == (8, 3), body
    assert (await book(http, stack, event_id, "carol"))[0] == 201
    # The mask says what changes: the name, not the seats given beside it.
    status, body = await update_event(http, stack, event_id, mask="name", name="Renamed", totalSeats=1)
    assert status == 200 and body["name"] == "Renamed" and body["totalSeats"] == 8, body
    assert instant(body["updateTime"]) > instant(before["updateTime"])

    # The released hold's seats can be removed now; the sold ones still cannot.
    async with http.delete(f"{stack.booking_url}/bookings/{hold['id']}", headers=auth(stack, "bob")) as response:
        assert response.status == 200
    status, body = await update_event(http, stack, event_id, mask="totalSeats", totalSeats=3)
    assert status == 409 and reason(body) == "SEATS_IN_USE", body
    assert body["details"][0]["metadata"]["taken_seats"] == "4"
    status, body = await update_event(http, stack, event_id, mask="totalSeats", totalSeats=4)
    assert status == 200 and body["availableSeats"] == 0, body
    await _audit(stack)


async def test_seat_changes_racing_bookings_keep_the_seats_adding_up(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 40)
    bookings = [book(http, stack, event_id, f"racer-{n}", hold=n % 2 == 0) for n in range(60)]
    shrinks = [update_event(http, stack, event_id, mask="totalSeats", totalSeats=total) for total in range(39, 19, -2)]
    grows = [update_event(http, stack, event_id, mask="totalSeats", totalSeats=total) for total in (45, 50)]
    results = await asyncio.gather(*bookings, *shrinks, *grows)
    booked, changes = results[: len(bookings)], results[len(bookings) :]
    assert {status for status, _ in booked} <= {201, 409}
    for status, body in changes:
        assert status == 200 or (status == 409 and reason(body) == "SEATS_IN_USE"), body
        if status == 409:  # refused only when that many seats really were taken
            metadata = body["details"][0]["metadata"]
            assert int(metadata["taken_seats"]) > int(metadata.get("total_seats", 0)), metadata
    event = await get_event(http, stack, event_id)
    sold = sum(body["seats"] for status, body in booked if status == 201)
    assert event["totalSeats"] - event["availableSeats"] == sold
    await _audit(stack)


async def test_a_sales_window_moved_by_patch_takes_effect_at_once(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 10)
    later = datetime.now(UTC) + timedelta(hours=1)
    status, body = await update_event(http, stack, event_id, mask="salesStartTime", salesStartTime=rfc3339(later))
    assert status == 200, body
    status, body = await book(http, stack, event_id)
    assert status == 409 and reason(body) == "SALES_NOT_STARTED", body
    # Named in the mask but absent from the body: cleared, on sale at once.
    status, body = await update_event(http, stack, event_id, mask="salesStartTime")
    assert status == 200 and not body.get("salesStartTime"), body
    assert (await book(http, stack, event_id, "bob"))[0] == 201

    # What cannot be changed is refused and changes nothing.
    before = await get_event(http, stack, event_id)
    earlier = datetime.now(UTC) - timedelta(hours=1)
    status, body = await update_event(
        http, stack, event_id, salesStartTime=rfc3339(later), salesEndTime=rfc3339(earlier)
    )
    assert status == 400 and body["details"][0]["metadata"]["field"] == "sales_end_time", body
    status, body = await update_event(http, stack, event_id, mask="availableSeats", availableSeats=10)
    assert status == 400 and body["details"][0]["metadata"]["field"] == "update_mask", body
    status, body = await update_event(http, stack, event_id, id="00000000-0000-4000-8000-000000000000", name="X")
    assert status == 400, body
    assert await get_event(http, stack, event_id) == before
    await _audit(stack)


async def test_bookings_and_confirms_racing_an_event_cancellation_end_cancelled_or_refused(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    event_id = await create_event(http, stack, 300)
    holds = await asyncio.gather(*(book(http, stack, event_id, f"early-{n}", hold=True) for n in range(40)))
    assert all(status == 201 for status, _ in holds)

    tokens = {user: auth(stack, user) for user in [f"late-{n}" for n in range(150)]}

    # Bookings and confirms spread over 0.6 s, the cancellation in the middle of them.
    async def book_at(n: int) -> tuple[int, dict[str, Any]]:
        await asyncio.sleep(n * 0.004)
        body = {"eventId": event_id, "seats": 1, "hold": n % 2 == 0}
        async with http.post(f"{stack.booking_url}/bookings", json=body, headers=tokens[f"late-{n}"]) as response:
            return response.status, await response.json()

    async def confirm_at(n: int, hold: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        await asyncio.sleep(n * 0.015)
        url = f"{stack.booking_url}/bookings/{hold['id']}:confirm"
        async with http.post(url, json={}, headers=auth(stack, hold["userId"])) as response:
            return response.status, await response.json()

    async def cancel_midway() -> tuple[int, dict[str, Any]]:
        await asyncio.sleep(0.3)
        return await cancel_event(http, stack, event_id)

    racing = await asyncio.gather(
        *(book_at(n) for n in range(150)),
        *(confirm_at(n, body) for n, (_, body) in enumerate(holds)),
        cancel_midway(),
    )
    booked, confirms, (cancelled, _) = racing[:150], racing[150:190], racing[190]
    assert cancelled == 200
    for status, body in booked:
        assert status == 201 or (status == 409 and reason(body) == "EVENT_CANCELLED"), body
    for status, body in confirms:
        assert (status == 200 and body["status"] == "CONFIRMED") or (
            status == 409 and reason(body) == "EVENT_CANCELLED"
        ), body
    # Whatever was answered, every booking that got seats ends CANCELLED by the event, and none
    # keeps a seat; the refused ones are REJECTED.
    report = await settled_audit(stack, timeout=30)
    assert report.ok, report.lines()
    got_seats = 40 + sum(1 for status, _ in booked if status == 201)
    refused = 190 - got_seats
    assert report.bookings_by_status == {"CANCELLED": got_seats, **({"REJECTED": refused} if refused else {})}
    for _, body in [*holds, *(b for b in booked if b[0] == 201)]:
        final = await get_booking(http, stack, body["id"], user=body["userId"])
        assert (final["status"], final["cancelReason"]) == ("CANCELLED", "EVENT_CANCELLED"), final
    event = await get_event(http, stack, event_id)
    assert event["availableSeats"] == event["totalSeats"] == 300


BOOKINGS = 1000
USERS = 60  # at most 17 seats each: under the cap of 20 per user and event


def _cancelled_so_far(stack: Stack, event_id: str) -> Counter[str]:
    with psycopg.connect(stack.booking_dsn) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM bookings WHERE event_id = %s GROUP BY status", (event_id,)
        ).fetchall()
    return Counter({status: n for status, n in rows})


async def _users_bookings(http: aiohttp.ClientSession, stack: Stack, user: str) -> list[dict[str, Any]]:
    """All of `user`'s bookings, as the owner sees them (GET /users/me/bookings, every page)."""
    found: list[dict[str, Any]] = []
    token = ""
    while True:
        params = {"pageSize": "100", **({"pageToken": token} if token else {})}
        async with http.get(
            f"{stack.booking_url}/users/me/bookings", params=params, headers=auth(stack, user)
        ) as response:
            assert response.status == 200, await response.text()
            page = await response.json()
        found += page.get("bookings", [])
        if not (token := page.get("nextPageToken", "")):
            return found


async def test_cancelling_an_event_with_1000_bookings_survives_a_kill_midway(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    seats = BOOKINGS + 100
    event_id = await create_event(http, stack, seats)
    other_event = await create_event(http, stack, 5)
    assert (await book(http, stack, other_event, "bystander"))[0] == 201
    gate = asyncio.Semaphore(64)

    async def one(n: int) -> tuple[int, dict[str, Any]]:
        async with gate:
            return await book(http, stack, event_id, f"owner-{n % USERS}", hold=n % 3 == 0)

    booked = await asyncio.gather(*(one(n) for n in range(BOOKINGS)))
    assert Counter(status for status, _ in booked) == {201: BOOKINGS}
    assert Counter(body["status"] for _, body in booked) == {"CONFIRMED": 666, "HELD": 334}
    assert await available(http, stack, event_id) == seats - BOOKINGS

    # The booking service dies after the first chunk of the cancellation it commits.
    stack.start_service("booking", TICKETFLOW_TEST_FAULTS="event_cancel_after_chunk")
    status, event = await cancel_event(http, stack, event_id)
    assert status == 200 and event["state"] == "CANCELLED" and event["cancelTime"], event
    # The event service gave every seat back at once, in its own transaction.
    assert (event["availableSeats"], event["totalSeats"]) == (seats, seats)
    status, again = await cancel_event(http, stack, event_id)
    assert status == 200 and again["cancelTime"] == event["cancelTime"]  # cancelling again changes nothing
    assert await asyncio.to_thread(stack.booking.wait, 30) == -9
    midway = _cancelled_so_far(stack, event_id)
    assert 0 < midway["CANCELLED"] < BOOKINGS, midway

    stack.start_service("booking")  # without the fault: it resumes where the dead one stopped
    status, body = await book(http, stack, event_id, "latecomer")
    assert status == 409 and reason(body) == "EVENT_CANCELLED", body
    # A cancelled event cannot be changed, and is still listed.
    status, body = await update_event(http, stack, event_id, mask="name", name="Back on")
    assert status == 409 and reason(body) == "EVENT_CANCELLED", body
    async with http.get(f"{stack.event_url}/events", params={"pageSize": "100"}) as response:
        listed = {e["id"]: e["state"] for e in (await response.json())["events"]}
    assert listed == {event_id: "CANCELLED", other_event: "SCHEDULED"}
    report = await settled_audit(stack, timeout=60)
    assert report.ok, report.lines()
    assert _cancelled_so_far(stack, event_id) == {"CANCELLED": BOOKINGS, "REJECTED": 1}
    with psycopg.connect(stack.booking_dsn) as conn:
        reasons = conn.execute(
            "SELECT cancel_reason, count(*) FROM bookings WHERE event_id = %s AND status = 'CANCELLED' "
            "GROUP BY cancel_reason",
            (event_id,),
        ).fetchall()
    assert reasons == [("EVENT_CANCELLED", BOOKINGS)]
    # Every seat back exactly once: the reservations were released by the cancellation alone.
    with psycopg.connect(stack.event_dsn) as conn:
        released = conn.execute(
            "SELECT state, coalesce(release_reason, refusal_reason), count(*) FROM reservations WHERE event_id = %s "
            "GROUP BY 1, 2 ORDER BY 1",
            (event_id,),
        ).fetchall()
    # (and the latecomer's booking id, refused for good)
    assert released == [("REFUSED", "EVENT_CANCELLED", 1), ("RELEASED", "EVENT_CANCELLED", BOOKINGS)]
    event = await get_event(http, stack, event_id)
    assert (event["availableSeats"], event["totalSeats"]) == (seats, seats)
    # The bystander's booking of another event is untouched.
    assert report.bookings_by_status.get("CONFIRMED") == 1

    # Each owner sees every booking of the event CANCELLED, and why.
    seen = 0
    for n in range(USERS):
        mine = [b for b in await _users_bookings(http, stack, f"owner-{n}") if b["eventId"] == event_id]
        assert {(b["status"], b["cancelReason"]) for b in mine} == {("CANCELLED", "EVENT_CANCELLED")}, mine[:3]
        seen += len(mine)
    assert seen == BOOKINGS
