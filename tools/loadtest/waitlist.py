"""The waiting-list load run (issue 14): an event sold out to buyers of 2 seats each, many users
joining its waiting list at once, then a stream of cancellations of confirmed bookings while
each waiter who gets an offer confirms it, declines it (cancels the HELD booking) or lets it
run out, some confirmed offers are cancelled again, a few waiters leave, and newcomers keep
trying to book. The run ends when every offer has been dealt with and no new one comes; the
caller then audits both databases (`tools.audit.settled`), which checks that the offers were
recorded, went first fit in join order, that no seat stays unoffered while a waiter fits and
that nobody jumped the queue.

Shared by `//e2e:waitlist_load_test` (two booking replicas, one killed midway: `midway`) and
`bazel run //tools/loadtest -- waitlist` (by hand).

    outcome = await run_waitlist(api, WaitlistPlan(seats=200, waiters=500), midway=kill_one)
    verdict(outcome)        # what fails the run besides the audit (empty when all went well)
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

import aiohttp

from tools.devkeys import DevIdentity
from tools.loadtest.driver import Api, reason
from tools.loadtest.tokens import Tokens
from tools.loadtest.waitlist_plan import BUYER_SEATS, WaitlistOutcome, WaitlistPlan, verdict

__all__ = ["WaitlistOutcome", "WaitlistPlan", "run_waitlist", "run_waitlist_session", "verdict"]

# How often the run lists the event's waiting list to find new offers, and polls a booking.
LIST_POLL = 0.25
BOOKING_POLL = 0.2
# How long an offer may take to appear as a booking (the offer follower polls every
# WAITLIST_POLL_SECONDS; a replica killed mid-round leaves it to the other).
RECORD_TIMEOUT = 30.0


class _Run:
    def __init__(self, api: Api, plan: WaitlistPlan) -> None:
        self.api = api
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.outcome = WaitlistOutcome()
        self.handlers: dict[str, asyncio.Task[None]] = {}
        self.confirmed_offers: list[tuple[str, str]] = []  # (booking id, user)

    def problem(self, text: str) -> None:
        self.outcome.problems.append(text)

    @property
    def event_id(self) -> str:
        return self.outcome.event_id

    async def gated(self, gate: asyncio.Semaphore, call: Coroutine[Any, Any, Any]) -> Any:
        async with gate:
            return await call

    async def sell_out(self) -> list[tuple[str, str]]:
        """Books every seat, 2 per buyer: [(booking id, buyer)]."""
        gate = asyncio.Semaphore(self.plan.concurrency)
        body = {"eventId": self.event_id, "seats": BUYER_SEATS}
        answers = await asyncio.gather(
            *(
                self.gated(gate, self.api.call("POST", self.api.booking_url + "/bookings", json=body, headers=h))
                for h in (self.api.tokens.of(b) for b in self.plan.buyers)
            )
        )
        booked = []
        for buyer, (status, reply, _) in zip(self.plan.buyers, answers, strict=True):
            if status == 201 and reply.get("status") == "CONFIRMED":
                booked.append((str(reply["id"]), buyer))
            else:
                self.problem(f"booking of {buyer} answered {status}: {reply}")
        return booked

    async def join_all(self) -> None:
        gate = asyncio.Semaphore(self.plan.concurrency)
        seats = {w: self.rng.randint(1, 2) for w in self.plan.waiter_names}
        answers = await asyncio.gather(*(self.gated(gate, self.join(w, seats[w])) for w in self.plan.waiter_names))
        for waiter, (status, reply, _) in zip(self.plan.waiter_names, answers, strict=True):
            if status != 201 or reply.get("state") != "WAITING":
                self.problem(f"join of {waiter} answered {status}: {reply}")

    def join(self, user: str, seats: int) -> Coroutine[Any, Any, tuple[int | str, Any, float]]:
        url = f"{self.api.booking_url}/events/{self.event_id}/waitlist"
        return self.api.call("POST", url, json={"seats": seats}, headers=self.api.tokens.of(user))

    async def entries(self) -> list[dict[str, Any]]:
        """The event's whole waiting list in join order (admin)."""
        entries: list[dict[str, Any]] = []
        token = ""
        while True:
            url = f"{self.api.event_url}/events/{self.event_id}/waitlist"
            params = {"pageSize": "100", **({"pageToken": token} if token else {})}
            status, reply, _ = await self.api.call("GET", url, params=params, headers=self.api.tokens.of_admin())
            if status != 200:
                raise RuntimeError(f"GET {url} answered {status}: {reply}")
            entries += reply.get("entries", [])
            token = reply.get("nextPageToken", "")
            if not token:
                return entries

    def follow(self, entries: list[dict[str, Any]]) -> int:
        """Starts a handler for each offer not seen yet; how many it started."""
        new = [e for e in entries if e.get("state") == "OFFERED" and e["id"] not in self.handlers]
        for entry in new:
            self.handlers[entry["id"]] = asyncio.create_task(self.handle(entry))
        return len(new)

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.follow(await self.entries())
            await asyncio.sleep(LIST_POLL)

    async def booking(self, booking_id: str, user: str) -> tuple[int | str, Any]:
        status, reply, _ = await self.api.call(
            "GET", f"{self.api.booking_url}/bookings/{booking_id}", headers=self.api.tokens.of(user)
        )
        return status, reply

    async def handle(self, entry: dict[str, Any]) -> None:
        """What the offered waiter does: confirm, decline or let the offer run out."""
        self.outcome.offers += 1
        booking_id, user = str(entry["bookingId"]), str(entry["userId"])
        deadline = time.monotonic() + RECORD_TIMEOUT
        while (answer := await self.booking(booking_id, user))[0] != 200:
            if time.monotonic() > deadline:
                self.problem(f"offer {booking_id} of entry {entry['id']} not recorded after {RECORD_TIMEOUT:g} s")
                return
            await asyncio.sleep(BOOKING_POLL)
        booking = answer[1]
        if (booking.get("waitlistEntryId"), booking.get("seats"), booking.get("hold")) != (
            entry["id"],
            entry["seats"],
            True,
        ):
            self.problem(f"offer booking {booking} does not match its entry {entry}")
        fate = self.rng.random()
        if fate < self.plan.confirm_fraction:
            await self.confirm(booking_id, user)
        elif fate < self.plan.confirm_fraction + self.plan.decline_fraction:
            await self.decline(booking_id, user)
        else:
            await self.run_out(booking_id, user)

    async def confirm(self, booking_id: str, user: str) -> None:
        url = f"{self.api.booking_url}/bookings/{booking_id}:confirm"
        status, reply, _ = await self.api.call("POST", url, json={}, headers=self.api.tokens.of(user))
        if status == 200 and reply.get("status") == "CONFIRMED":
            self.outcome.confirmed += 1
            self.confirmed_offers.append((booking_id, user))
        elif status == 409 and reason(reply) == "HOLD_EXPIRED":
            self.outcome.expired += 1
            self.outcome.late += 1
        else:
            self.problem(f"confirm of offer {booking_id} answered {status}: {reply}")

    async def decline(self, booking_id: str, user: str) -> None:
        status, reply = await self.cancel(booking_id, user)
        if status == 200 and reply.get("status") == "CANCELLED":
            self.outcome.declined += 1
        elif status == 200 and reply.get("status") in ("EXPIRING", "EXPIRED"):
            self.outcome.expired += 1
            self.outcome.late += 1
        else:
            self.problem(f"decline of offer {booking_id} answered {status}: {reply}")

    async def run_out(self, booking_id: str, user: str) -> None:
        deadline = time.monotonic() + self.plan.offer_ttl + self.plan.expiry_grace
        # Not before its TTL: hundreds of waiters polling all along would be a load of their own.
        await asyncio.sleep(self.plan.offer_ttl)
        while time.monotonic() < deadline:
            status, reply = await self.booking(booking_id, user)
            if status == 200 and reply.get("status") == "EXPIRED":
                self.outcome.expired += 1
                return
            await asyncio.sleep(BOOKING_POLL)
        self.problem(
            f"offer {booking_id} left to run out is not EXPIRED {self.plan.offer_ttl + self.plan.expiry_grace:g} s on"
        )

    async def cancel(self, booking_id: str, user: str) -> tuple[int | str, Any]:
        status, reply, _ = await self.api.call(
            "DELETE", f"{self.api.booking_url}/bookings/{booking_id}", headers=self.api.tokens.of(user)
        )
        return status, reply

    async def stream(self, booked: list[tuple[str, str]], midway: Callable[[], Awaitable[None]] | None) -> None:
        """Cancels buyers' bookings one every interval; now and then a confirmed offer too, a
        waiter leaves, a newcomer tries to book. `midway` runs alongside from the middle on."""
        victims = self.rng.sample(booked, min(self.plan.cancellations, len(booked)))
        leavers = [w for w in self.plan.waiter_names if self.rng.random() < self.plan.leave_fraction]
        crash: asyncio.Task[None] | None = None
        for n, (booking_id, buyer) in enumerate(victims):
            if n == len(victims) // 2 and midway is not None:
                crash = asyncio.create_task(_run(midway))
            await self.cancel_confirmed(booking_id, buyer)
            if self.confirmed_offers and self.rng.random() < self.plan.recancel_fraction:
                await self.cancel_confirmed(*self.confirmed_offers.pop(self.rng.randrange(len(self.confirmed_offers))))
            if leavers and self.rng.random() < len(leavers) / max(1, len(victims) - n):
                await self.leave(leavers.pop())
            if n % 5 == 0:
                await self.newcomer()
            await asyncio.sleep(self.plan.interval)
        for leaver in leavers:
            await self.leave(leaver)
        if crash is not None:
            await crash

    async def cancel_confirmed(self, booking_id: str, user: str) -> None:
        status, reply = await self.cancel(booking_id, user)
        if status == 200 and reply.get("status") == "CANCELLED":
            self.outcome.cancelled += 1
        else:
            self.problem(f"cancel of confirmed booking {booking_id} answered {status}: {reply}")

    async def leave(self, user: str) -> None:
        url = f"{self.api.booking_url}/events/{self.event_id}/waitlist"
        status, reply, _ = await self.api.call("DELETE", url, headers=self.api.tokens.of(user))
        if status == 200 and reply.get("state") == "LEFT":
            self.outcome.left += 1
        elif status != 200 or reply.get("state") != "OFFERED":  # an offered waiter stays on it
            self.problem(f"leave of {user} answered {status}: {reply}")

    async def newcomer(self) -> None:
        """A user not on the list books 1 seat: SOLD_OUT while anyone waits. A booking it gets
        (nobody waiting, a seat free) is cancelled at once, so that seats go round again."""
        body = {"eventId": self.event_id, "seats": 1}
        headers = self.api.tokens.of(self.plan.newcomer)
        status, reply, _ = await self.api.call("POST", self.api.booking_url + "/bookings", json=body, headers=headers)
        self.outcome.newcomer_answers[f"{status} {reason(reply) or ''}".strip()] += 1
        if status == 201:
            await self.cancel(str(reply["id"]), self.plan.newcomer)
        elif status != 409 or reason(reply) != "SOLD_OUT":
            self.problem(f"newcomer's booking answered {status}: {reply}")

    async def drain(self) -> None:
        """Waits for every offer to be dealt with; offers made meanwhile (seats of declined and
        run-out offers go to the next waiters) are dealt with too, until none comes."""
        while True:
            await asyncio.gather(*self.handlers.values())
            if not self.follow(await self.entries()):
                return


async def run_waitlist_session(
    plan: WaitlistPlan,
    booking_url: str,
    event_url: str,
    identity: DevIdentity,
    timeout: float = 30.0,
    midway: Callable[[], Awaitable[None]] | None = None,
) -> WaitlistOutcome:
    """`run_waitlist` with a client session and tokens of its own (the load tool's way)."""
    tokens = await asyncio.to_thread(Tokens.mint, identity, plan.users(), timedelta(hours=2))
    connector = aiohttp.TCPConnector(limit=max(plan.concurrency, 600))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        return await run_waitlist(Api(session, booking_url, event_url, tokens), plan, midway)


async def _run(call: Callable[[], Awaitable[None]]) -> None:
    await call()


async def run_waitlist(
    api: Api, plan: WaitlistPlan, midway: Callable[[], Awaitable[None]] | None = None
) -> WaitlistOutcome:
    """Runs the plan against the services behind `api` (its tokens must cover `plan.users()`)."""
    run = _Run(api, plan)
    started = time.perf_counter()
    run.outcome.event_id = await api.create_event("Waiting-list load run", plan.seats)
    booked = await run.sell_out()
    await run.join_all()
    stop = asyncio.Event()
    watcher = asyncio.create_task(run.watch(stop))
    try:
        try:
            await run.stream(booked, midway)
        finally:
            stop.set()
            await watcher
        await run.drain()
    finally:  # on a failure, the waiters stop too
        for handler in run.handlers.values():
            handler.cancel()
    status, event, _ = await api.call("GET", f"{api.event_url}/events/{run.event_id}")
    run.outcome.event = event if status == 200 else {}
    run.outcome.entries = await run.entries()
    run.outcome.elapsed = time.perf_counter() - started
    return run.outcome
