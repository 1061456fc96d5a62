"""Fixtures of the end-to-end tests: a running stack per test (identity and mutual TLS on, with
dev credentials of its own), an HTTP client, and the calls the tests make, each with the bearer
token of the user it acts as (`auth`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tools.audit.invariants import Report
from tools.audit.settled import settled_audit as settled_audit_dsns
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


async def create_event(http: aiohttp.ClientSession, stack: Stack, seats: int) -> str:
    """A new event of `seats` seats, created by an admin."""
    body = {"name": "Flash sale", "startTime": "2027-06-01T20:00:00Z", "totalSeats": seats}
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
) -> tuple[int, dict[str, Any]]:
    """POST /bookings as `user`, for `user`."""
    headers = {**auth(stack, user), **({"Idempotency-Key": key} if key else {})}
    body = {"eventId": event_id, "userId": user, "seats": seats}
    async with http.post(f"{stack.booking_url}/bookings", json=body, headers=headers) as response:
        return response.status, await response.json()


async def available(http: aiohttp.ClientSession, stack: Stack, event_id: str) -> int:
    # Reading events needs no token.
    async with http.get(f"{stack.event_url}/events/{event_id}") as response:
        return int((await response.json())["availableSeats"])


async def settled_audit(stack: Stack, timeout: float = 20.0) -> Report:
    """Audits both databases once nothing is left PENDING or CANCELLING (or the time is up)."""
    return await asyncio.to_thread(settled_audit_dsns, stack.booking_dsn, stack.event_dsn, timeout)
