"""Fixtures of the end-to-end tests: a running stack per test (identity and mutual TLS on, with
dev credentials of its own), an HTTP client, and the calls the tests make, each with the bearer
token of the user it acts as (`auth`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tools.audit.invariants import Report
from tools.audit.settled import settled_audit as settled_audit_dsns
from tools.stack.services import Service
from tools.stack.stack import Stack
from tools.testing.launch import running_stack
from tools.testing.postgres import PostgresServer


@pytest.fixture
def stack(postgresql_server: PostgresServer, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(postgresql_server, tmp_path) as stack:
        yield stack


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=600)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


def auth(stack: Stack, user: str = "alice", *, admin: bool = False) -> dict[str, str]:
    """The Authorization header of `user` (an admin's with `admin`), signed with the stack's dev key."""
    return {"Authorization": f"Bearer {stack.token(user, admin=admin)}"}


async def create_event(http: aiohttp.ClientSession, stack: Stack, seats: int, **fields: str) -> str:
    """A new event of `seats` seats, created by an admin; `fields` adds others (salesStartTime, ...)."""
    body = {"name": "Flash sale", "startTime": "2027-06-01T20:00:00Z", "totalSeats": seats, **fields}
    async with http.post(f"{stack.event_url}/events", json=body, headers=auth(stack, "ops", admin=True)) as response:
        assert response.status == 201, await response.text()
        return str((await response.json())["id"])


async def book(
    http: aiohttp.ClientSession,
    stack: Stack,
    event_id: str,
    user: str = "alice",
    seats: int = 1,
    key: str | None = None,
    hold: bool = False,
) -> tuple[int, dict[str, Any]]:
    """POST /bookings as `user`, for `user` (a hold with `hold`)."""
    headers = {**auth(stack, user), **({"Idempotency-Key": key} if key else {})}
    body: dict[str, Any] = {"eventId": event_id, "userId": user, "seats": seats}
    if hold:
        body["hold"] = True
    async with http.post(f"{stack.booking_url}/bookings", json=body, headers=headers) as response:
        return response.status, await response.json()


async def confirm(
    http: aiohttp.ClientSession, stack: Stack, booking_id: str, user: str = "alice"
) -> tuple[int, dict[str, Any]]:
    """POST /bookings/{id}:confirm as `user`."""
    url = f"{stack.booking_url}/bookings/{booking_id}:confirm"
    async with http.post(url, json={}, headers=auth(stack, user)) as response:
        return response.status, await response.json()


async def get_booking(
    http: aiohttp.ClientSession, stack: Stack, booking_id: str, user: str = "alice"
) -> dict[str, Any]:
    async with http.get(f"{stack.booking_url}/bookings/{booking_id}", headers=auth(stack, user)) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


async def get_event(http: aiohttp.ClientSession, stack: Stack, event_id: str) -> dict[str, Any]:
    # Reading events needs no token.
    async with http.get(f"{stack.event_url}/events/{event_id}") as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


async def available(http: aiohttp.ClientSession, stack: Stack, event_id: str) -> int:
    return int((await get_event(http, stack, event_id))["availableSeats"])


async def update_event(
    http: aiohttp.ClientSession, stack: Stack, event_id: str, mask: str | None = None, **fields: Any
) -> tuple[int, dict[str, Any]]:
    """PATCH /events/{id} as an admin with `fields` as the body, `mask` as ?updateMask=."""
    params = {"updateMask": mask} if mask is not None else None
    url = f"{stack.event_url}/events/{event_id}"
    async with http.patch(url, json=fields, params=params, headers=auth(stack, "ops", admin=True)) as response:
        return response.status, await response.json()


async def cancel_event(http: aiohttp.ClientSession, stack: Stack, event_id: str) -> tuple[int, dict[str, Any]]:
    """POST /events/{id}:cancel as an admin."""
    url = f"{stack.event_url}/events/{event_id}:cancel"
    async with http.post(url, json={}, headers=auth(stack, "ops", admin=True)) as response:
        return response.status, await response.json()


async def cancel(
    http: aiohttp.ClientSession, stack: Stack, booking_id: str, user: str = "alice"
) -> tuple[int, dict[str, Any]]:
    """DELETE /bookings/{id} as `user`: cancels a CONFIRMED booking, releases (declines) a HELD one."""
    async with http.delete(f"{stack.booking_url}/bookings/{booking_id}", headers=auth(stack, user)) as response:
        return response.status, await response.json()


async def join_waitlist(
    http: aiohttp.ClientSession, stack: Stack, event_id: str, user: str = "alice", seats: int = 1
) -> tuple[int, dict[str, Any]]:
    """POST /events/{id}/waitlist as `user` (booking service)."""
    url = f"{stack.booking_url}/events/{event_id}/waitlist"
    async with http.post(url, json={"seats": seats}, headers=auth(stack, user)) as response:
        return response.status, await response.json()


async def leave_waitlist(
    http: aiohttp.ClientSession, stack: Stack, event_id: str, user: str = "alice"
) -> tuple[int, dict[str, Any]]:
    """DELETE /events/{id}/waitlist as `user` (booking service)."""
    url = f"{stack.booking_url}/events/{event_id}/waitlist"
    async with http.delete(url, headers=auth(stack, user)) as response:
        return response.status, await response.json()


async def event_waitlist(http: aiohttp.ClientSession, stack: Stack, event_id: str) -> list[dict[str, Any]]:
    """An event's whole waiting list in join order, every state (event service, as an admin)."""
    entries: list[dict[str, Any]] = []
    params = {"pageSize": "100"}
    while True:
        url = f"{stack.event_url}/events/{event_id}/waitlist"
        async with http.get(url, params=params, headers=auth(stack, "ops", admin=True)) as response:
            assert response.status == 200, await response.text()
            page = await response.json()
        entries += page.get("entries", [])
        if not page.get("nextPageToken"):
            return entries
        params["pageToken"] = page["nextPageToken"]


def booking_replica(stack: Stack, ready: str | None = "/readyz", **overrides: str) -> Service:
    """Another booking_service process on the stack's booking database (with the stack's
    booking settings, and `overrides`), on ports of its own; ready (unless `ready` is None).
    The caller stops it."""
    return stack.start_replica("booking", ready, **overrides)


def reason(body: dict[str, Any]) -> str:
    """The ErrorInfo reason of an error answer."""
    return str(body["details"][0]["reason"])


def rfc3339(instant: datetime) -> str:
    """An instant as the proto3 JSON mapping writes it (UTC, "Z")."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def instant(text: str) -> datetime:
    """An RFC 3339 timestamp of an answer."""
    return datetime.fromisoformat(text)


async def settled_audit(stack: Stack, timeout: float = 20.0, sweep_interval: float = 1.0) -> Report:
    """Audits both databases once nothing is in flight (PENDING, CANCELLING, EXPIRING, bookings of
    a cancelled event still CONFIRMED or HELD), or the time is up. `sweep_interval`: the stack's
    HOLD_SWEEP_INTERVAL_SECONDS."""
    return await asyncio.to_thread(
        settled_audit_dsns, stack.booking_dsn, stack.event_dsn, timeout, sweep_interval=sweep_interval
    )
