"""Sends a workload to TicketFlow's public REST API and records every response.

`concurrency` workers share one aiohttp connection pool of the same size, so at most that
many requests are in flight; each worker sends its next booking as soon as the previous one
is answered (a closed loop, like pgbench's clients). Every request carries a bearer token
(`Tokens`): a booking, its confirm and its cancel its user's, an event's creation the admin's.
A planned hold is booked with `"hold": true` and, if the plan says so, confirmed as soon as it
is HELD; a confirm that comes after the hold ran out answers `409 HOLD_EXPIRED`, which is
counted, not a problem. Besides statuses and latencies, the run keeps what it needs to check
the answers afterwards (`Outcome`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp

from tools.loadtest.stats import ERROR, RunStats
from tools.loadtest.tokens import Tokens
from tools.loadtest.workload import PlannedBooking, Workload, bookings

SOLD_OUT = "SOLD_OUT"
USER_LIMIT_REACHED = "USER_LIMIT_REACHED"
HOLD_EXPIRED = "HOLD_EXPIRED"


@dataclass
class Outcome:
    """What the answers say, per event (index): seats held by CONFIRMED (at once, or holds
    confirmed), not cancelled bookings, and the 409s by their reason; and when the last hold
    this run saw runs out (the booking service's clock, from `expireTime`)."""

    held: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    sold_out_answers: Counter[int] = field(default_factory=Counter)
    user_limit_answers: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    latest_expiry: datetime | None = None

    def saw_hold(self, expire_time: str | None) -> None:
        if expire_time is None:
            self.problems.append("a HELD booking without an expireTime")
            return
        expiry = datetime.fromisoformat(expire_time)
        if self.latest_expiry is None or expiry > self.latest_expiry:
            self.latest_expiry = expiry


class Api:
    def __init__(self, session: aiohttp.ClientSession, booking_url: str, event_url: str, tokens: Tokens) -> None:
        self.session = session
        self.booking_url = booking_url.rstrip("/")
        self.event_url = event_url.rstrip("/")
        self.tokens = tokens

    async def call(self, method: str, url: str, **kwargs: Any) -> tuple[int | str, Any, float]:
        """(status or ERROR, parsed JSON body or None, seconds)."""
        start = time.perf_counter()
        try:
            async with self.session.request(method, url, **kwargs) as response:
                raw = await response.read()
                status: int | str = response.status
        except (aiohttp.ClientError, TimeoutError):
            return ERROR, None, time.perf_counter() - start
        elapsed = time.perf_counter() - start
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return status, body, elapsed

    async def create_event(self, name: str, seats: int) -> str:
        body = {"name": name, "startTime": "2030-01-01T20:00:00Z", "totalSeats": seats}
        status, reply, _ = await self.call(
            "POST", f"{self.event_url}/events", json=body, headers=self.tokens.of_admin()
        )
        if status != 201:
            raise RuntimeError(f"POST {self.event_url}/events answered {status}: {reply}")
        return str(reply["id"])

    async def available_seats(self, event_id: str) -> int:
        status, reply, _ = await self.call("GET", f"{self.event_url}/events/{event_id}")
        if status != 200:
            raise RuntimeError(f"GET {self.event_url}/events/{event_id} answered {status}: {reply}")
        return int(reply["availableSeats"])

    async def book(self, event_id: str, planned: PlannedBooking) -> tuple[int | str, Any, float]:
        headers = {**self.tokens.of(planned.user), **({"Idempotency-Key": planned.key} if planned.key else {})}
        body: dict[str, Any] = {"eventId": event_id, "userId": planned.user, "seats": planned.seats}
        if planned.hold:
            body["hold"] = True
        return await self.call("POST", f"{self.booking_url}/bookings", json=body, headers=headers)

    async def confirm(self, booking_id: str, user: str) -> tuple[int | str, Any, float]:
        """Confirms `user`'s HELD booking, as that user."""
        return await self.call(
            "POST", f"{self.booking_url}/bookings/{booking_id}:confirm", json={}, headers=self.tokens.of(user)
        )

    async def cancel(self, booking_id: str, user: str) -> tuple[int | str, Any, float]:
        """Cancels `user`'s booking, as that user."""
        return await self.call("DELETE", f"{self.booking_url}/bookings/{booking_id}", headers=self.tokens.of(user))


async def drive(api: Api, workload: Workload, event_ids: list[str], stats: RunStats, outcome: Outcome) -> None:
    """Runs the workload to its end (or its duration) and fills `stats` and `outcome`."""
    plan: Iterator[PlannedBooking] = bookings(workload, key_prefix=f"lt-{event_ids[0][:8]}")
    started = time.perf_counter()
    deadline = started + workload.duration if workload.duration else None

    async def worker() -> None:
        for planned in plan:  # one shared iterator: each booking is sent once
            if deadline is not None and time.perf_counter() > deadline:
                return
            await _one_booking(api, event_ids, planned, stats, outcome)

    progress = asyncio.create_task(_progress(workload, stats, started))
    try:
        await asyncio.gather(*(worker() for _ in range(workload.concurrency)))
    finally:
        stats.elapsed = time.perf_counter() - started
        progress.cancel()
    sys.stderr.write("\n" if sys.stderr.isatty() else "")


async def _one_booking(
    api: Api, event_ids: list[str], planned: PlannedBooking, stats: RunStats, outcome: Outcome
) -> None:
    event_id = event_ids[planned.event]
    status, body, seconds = await api.book(event_id, planned)
    stats.book.add(status, seconds)
    booking_id, counted = _record(planned, status, body, stats, outcome)
    if planned.retry:
        again, again_body, seconds = await api.book(event_id, planned)
        stats.retry.add(again, seconds)
        again_id = again_body.get("id") if again == 201 and isinstance(again_body, dict) else None
        # A retry with the same key gets the first answer again: the same status, the same booking.
        if status in (201, 409) and (again != status or again_id != booking_id):
            outcome.problems.append(
                f"retry of booking {planned.index} (key {planned.key}) answered {again} {again_id}, "
                f"first {status} {booking_id}"
            )
    if planned.confirm and booking_id is not None and not counted:
        counted = await _confirm(api, planned, booking_id, stats, outcome)
    if planned.cancel and booking_id is not None:
        cancelled, cancel_body, seconds = await api.cancel(booking_id, planned.user)
        stats.cancel.add(cancelled, seconds)
        if cancelled == 200 and isinstance(cancel_body, dict) and cancel_body.get("status") == "CANCELLED":
            if counted:
                outcome.held[planned.event] -= planned.seats
            else:
                stats.holds_released += 1


def _record(
    planned: PlannedBooking, status: int | str, body: Any, stats: RunStats, outcome: Outcome
) -> tuple[str | None, bool]:
    """Records a booking's answer: (the booking's id if it got seats, whether it is CONFIRMED
    and so counted in `outcome.held`)."""
    if status == 409:
        if reason(body) == USER_LIMIT_REACHED:
            outcome.user_limit_answers[planned.event] += 1
        else:
            outcome.sold_out_answers[planned.event] += 1
    booking_id = body.get("id") if status == 201 and isinstance(body, dict) else None
    if booking_id is None or booking_id in stats.confirmed_ids:
        return booking_id, False
    stats.confirmed_ids.add(booking_id)
    if body.get("status") == "HELD":
        stats.holds += 1
        outcome.saw_hold(body.get("expireTime"))
        return booking_id, False
    if planned.hold:
        outcome.problems.append(f"hold {planned.index} answered 201 {body.get('status')}, not HELD")
    outcome.held[planned.event] += planned.seats
    return booking_id, True


async def _confirm(api: Api, planned: PlannedBooking, booking_id: str, stats: RunStats, outcome: Outcome) -> bool:
    """Confirms a HELD booking; whether it is CONFIRMED now."""
    status, body, seconds = await api.confirm(booking_id, planned.user)
    stats.confirm.add(status, seconds)
    if status == 200 and isinstance(body, dict) and body.get("status") == "CONFIRMED":
        stats.hold_confirms += 1
        outcome.held[planned.event] += planned.seats
        return True
    if status == 409 and reason(body) == HOLD_EXPIRED:
        stats.hold_expired_answers += 1
    elif status in (200, 409):
        outcome.problems.append(f"confirm of hold {booking_id} answered {status}: {body}")
    return False


def reason(body: Any) -> str | None:
    """The `reason` of an error answer's first detail (google.rpc.ErrorInfo), if any."""
    try:
        return str(body["details"][0]["reason"])
    except (KeyError, IndexError, TypeError):
        return None


async def _progress(workload: Workload, stats: RunStats, started: float) -> None:
    """One line on stderr per second (rewritten in place on a terminal)."""
    end = "\r" if sys.stderr.isatty() else "\n"
    last = 0
    while True:
        await asyncio.sleep(1.0)
        done = stats.book.count
        elapsed = time.perf_counter() - started
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(stats.book.statuses.items(), key=lambda kv: str(kv[0])))
        sys.stderr.write(
            f"[{elapsed:6.1f} s] {done}/{workload.requests} bookings  {done - last} in the last second  {statuses}{end}"
        )
        sys.stderr.flush()
        last = done
