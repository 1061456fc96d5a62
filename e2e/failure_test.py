"""Failures between the two services: an event service that is down, a booking process killed
mid-way, clients that hang up mid-request. Whatever happens, once settled, the audit holds:
no seat held without a CONFIRMED booking, nothing left PENDING. Identity is on: every call
carries its user's bearer token (the bookings here are alice's unless named otherwise)."""

from __future__ import annotations

import asyncio
import json
import random

import aiohttp

from e2e.conftest import auth, available, book, create_event, settled_audit
from tools.audit.invariants import Report
from tools.stack.stack import Stack


async def _booking(http: aiohttp.ClientSession, stack: Stack, booking_id: str) -> dict[str, object]:
    async with http.get(f"{stack.booking_url}/bookings/{booking_id}", headers=auth(stack)) as response:
        assert response.status == 200
        body: dict[str, object] = await response.json()
        return body


async def _wait_status(http: aiohttp.ClientSession, stack: Stack, booking_id: str, timeout: float = 20) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = str((await _booking(http, stack, booking_id))["status"])
        if status not in ("PENDING", "CANCELLING") or asyncio.get_running_loop().time() > deadline:
            return status
        await asyncio.sleep(0.2)


async def test_event_service_down_is_503_then_a_retry_books(http: aiohttp.ClientSession, stack: Stack) -> None:
    # The client retries before the reconciler would give up on the booking.
    stack.start_service("booking", ready="/healthz", PENDING_TIMEOUT_SECONDS="120")
    event_id = await create_event(http, stack, 5)
    assert stack.stop_service("event") == 0
    status, body = await book(http, stack, event_id, key="while-down")
    assert status == 503, body
    assert body["details"][0]["reason"] == "EVENT_SERVICE_UNAVAILABLE"
    booking_id = body["details"][0]["metadata"]["booking_id"]
    assert (await _booking(http, stack, booking_id))["status"] == "PENDING"
    async with http.get(f"{stack.booking_url}/readyz") as response:
        assert response.status == 503

    stack.start_service("event")
    # As a client honouring Retry-After would: come back once the service is ready again.
    stack.booking.wait_ready("/readyz", timeout=30)
    status, body = await book(http, stack, event_id, key="while-down")
    assert status == 201 and body["id"] == booking_id and body["status"] == "CONFIRMED"
    assert await available(http, stack, event_id) == 4
    report = await settled_audit(stack)
    assert report.ok, report.violations


async def test_event_service_down_then_the_reconciler_settles(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 5)
    stack.stop_service("event")
    status, body = await book(http, stack, event_id)
    assert status == 503
    booking_id = body["details"][0]["metadata"]["booking_id"]
    stack.start_service("event")
    # Never retried: after PENDING_TIMEOUT the reconciler releases the booking id (so a
    # reservation can no longer land) and rejects the booking.
    assert await _wait_status(http, stack, booking_id) == "REJECTED"
    assert (await _booking(http, stack, booking_id))["rejectReason"] == "ABANDONED"
    assert await available(http, stack, event_id) == 5
    report = await settled_audit(stack)
    assert report.ok, report.violations


async def test_booking_killed_after_reserving_ends_settled(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 5)
    stack.kill_service("booking")
    stack.start_service("booking", ready="/healthz", TICKETFLOW_TEST_FAULTS="after_reserve")
    body = {"eventId": event_id, "userId": "alice", "seats": 2}
    try:
        async with http.post(f"{stack.booking_url}/bookings", json=body, headers=auth(stack)) as response:
            raise AssertionError(f"the process should have died, got {response.status}")
    except aiohttp.ClientError:
        pass
    assert stack.booking.wait(10) == -9
    # The seats were reserved; the booking row says PENDING. Restart without the fault.
    assert await available(http, stack, event_id) == 3
    stack.start_service("booking", ready="/healthz")
    report = await settled_audit(stack)
    assert report.ok, report.violations
    assert report.bookings_by_status == {"CONFIRMED": 1}
    assert await available(http, stack, event_id) == 3


async def test_booking_killed_mid_cancel_ends_cancelled(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 5)
    status, booking = await book(http, stack, event_id, seats=2)
    assert status == 201
    stack.kill_service("booking")
    stack.start_service("booking", ready="/healthz", TICKETFLOW_TEST_FAULTS="cancel_before_release")
    try:
        async with http.delete(f"{stack.booking_url}/bookings/{booking['id']}", headers=auth(stack)):
            raise AssertionError("the process should have died")
    except aiohttp.ClientError:
        pass
    stack.start_service("booking", ready="/healthz")
    assert await _wait_status(http, stack, booking["id"]) == "CANCELLED"
    assert await available(http, stack, event_id) == 5
    report = await settled_audit(stack)
    assert report.ok, report.violations


async def _hang_up(stack: Stack, event_id: str, n: int, token: str, rng: random.Random) -> None:
    """Sends a whole POST /bookings as ghost-n, then closes the connection at a random moment."""
    body = json.dumps({"eventId": event_id, "userId": f"ghost-{n}"}).encode()
    _, writer = await asyncio.open_connection("127.0.0.1", stack.booking.http_port)
    writer.write(
        b"POST /bookings HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    # From "before the server read it" to "while its saga runs" (300 requests take a while).
    await asyncio.sleep(rng.uniform(0, 0.5))
    writer.transport.abort()


async def _quiet_audit(stack: Stack, quiet: float = 1.0, timeout: float = 30.0) -> Report:
    """The settled audit, once no new booking has appeared for `quiet` seconds. A request the
    server has not read yet leaves no row, so "nothing PENDING" alone can come too early: with
    identity on, taking up 300 requests (a token check each) takes a while on two cores."""
    deadline = asyncio.get_running_loop().time() + timeout
    report = await settled_audit(stack, timeout)
    while True:
        await asyncio.sleep(quiet)
        again = await settled_audit(stack, timeout)
        if again.bookings_by_status == report.bookings_by_status or asyncio.get_running_loop().time() > deadline:
            return again
        report = again


async def test_clients_hanging_up_mid_request_leave_nothing_held(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 150)
    rng = random.Random(7)
    # Tokens first, so that the requests go out together.
    tokens = [stack.token(f"ghost-{n}") for n in range(300)]
    await asyncio.gather(*(_hang_up(stack, event_id, n, tokens[n], rng) for n in range(300)))
    report = await _quiet_audit(stack)
    assert report.ok, report.violations
    # Every request the server took up was carried through to an end, client or no client.
    assert set(report.bookings_by_status) <= {"CONFIRMED", "REJECTED"}
    confirmed = report.bookings_by_status.get("CONFIRMED", 0)
    assert confirmed == 150 - await available(http, stack, event_id)
    # And the service is still healthy after the storm.
    status, body = await book(http, stack, event_id, "after-the-storm")
    assert status == (201 if confirmed < 150 else 409), (confirmed, body)
