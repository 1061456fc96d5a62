"""What a load run sends: a deterministic sequence of bookings, from the options and a seed.

Two shapes:
- flash: every booking is for one event (the hot row);
- spread: each booking picks one of many events at random.
Optionally a fraction of the bookings is sent twice with the same Idempotency-Key (a client
retrying), a fraction is made as holds (`"hold": true`: HELD until confirmed or expired) of
which a fraction is confirmed right away (`POST /bookings/{id}:confirm`), and a fraction of the
bookings is cancelled right away (a HELD one released).

Bookings are made by `user_count()` simulated users in turn (`user-0`, `user-1`, ...), each
with a token of its own. The target caps the seats one user holds of one event
(MAX_SEATS_PER_USER_PER_EVENT, `user_cap` here); unless told otherwise, there are enough users
that none can ask for more than the cap, counting every booking it sends, so that every 409 is
a real SOLD_OUT.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    mode: str  # "flash" or "spread"
    requests: int
    concurrency: int
    events: int
    seats_per_event: int
    seats_per_booking: int = 1
    retry_fraction: float = 0.0
    cancel_fraction: float = 0.0
    keys: bool = False  # an Idempotency-Key on every booking, not only on those retried
    seed: int = 1
    timeout: float = 30.0
    duration: float | None = None  # stop sending new bookings after this many seconds
    users: int = 0  # simulated users; 0: just enough that none can reach user_cap
    user_cap: int = 20  # the target's MAX_SEATS_PER_USER_PER_EVENT
    hold_fraction: float = 0.0  # share of bookings made as holds
    confirm_fraction: float = 0.0  # share of the holds then confirmed

    def user_count(self) -> int:
        if self.users:
            return self.users
        return math.ceil(self.requests / max(1, self.user_cap // self.seats_per_booking))

    def cap_reachable(self) -> bool:
        """Whether one user may ask for more seats of one event than the cap, so that
        USER_LIMIT_REACHED is an answer to expect (all bookings on one event: the worst case)."""
        return math.ceil(self.requests / self.user_count()) * self.seats_per_booking > self.user_cap

    def describe(self) -> str:
        extras = []
        if self.retry_fraction:
            extras.append(f"{self.retry_fraction:.0%} retried with the same Idempotency-Key")
        if self.hold_fraction:
            extras.append(f"{self.hold_fraction:.0%} as holds, {self.confirm_fraction:.0%} of them confirmed")
        if self.cancel_fraction:
            extras.append(f"{self.cancel_fraction:.0%} of confirmed bookings cancelled")
        if self.duration:
            extras.append(f"for at most {self.duration:g} s")
        where = "1 event" if self.events == 1 else f"{self.events} events"
        return (
            f"{self.mode}: {self.requests} bookings of {self.seats_per_booking} seat(s) on {where} of "
            f"{self.seats_per_event} seats, {self.concurrency} concurrent, by {self.user_count()} users "
            f"(a token each), seed {self.seed}" + (f"; {', '.join(extras)}" if extras else "")
        )

    def user_names(self) -> list[str]:
        return [user_name(n) for n in range(self.user_count())]


@dataclass(frozen=True)
class PlannedBooking:
    index: int
    event: int  # index into the run's events
    user: str
    seats: int
    key: str | None
    retry: bool
    cancel: bool
    hold: bool = False
    confirm: bool = False  # a hold confirmed once HELD


def bookings(workload: Workload, key_prefix: str) -> Iterator[PlannedBooking]:
    """The run's bookings in order. `key_prefix` makes the keys unique to the run (the same
    seed against the same databases must not replay an earlier run's keys)."""
    rng = random.Random(workload.seed)
    users = workload.user_count()
    for index in range(workload.requests):
        event = 0 if workload.events == 1 else rng.randrange(workload.events)
        retry = rng.random() < workload.retry_fraction
        cancel = rng.random() < workload.cancel_fraction
        # Drawn only when asked for, so that runs without holds stay what they were for a seed.
        hold = bool(workload.hold_fraction) and rng.random() < workload.hold_fraction
        confirm = hold and rng.random() < workload.confirm_fraction
        key = f"{key_prefix}-{index}" if (workload.keys or retry) else None
        user = user_name(index % users)
        yield PlannedBooking(index, event, user, workload.seats_per_booking, key, retry, cancel, hold, confirm)


def user_name(n: int) -> str:
    return f"user-{n}"
