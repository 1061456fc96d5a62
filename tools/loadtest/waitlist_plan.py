"""What a waiting-list load run (`tools.loadtest.waitlist`) does and what came of it: the plan
(sizes, the waiters' choices, the seed), the outcome (counts, the event and its list at the
end, unexpected answers), and the verdict that fails a run besides the audit."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

BUYER_SEATS = 2


@dataclass(frozen=True)
class WaitlistPlan:
    seats: int = 200  # the event's seats, sold out to seats // 2 buyers of 2 seats each
    waiters: int = 500  # users joining the waiting list at once, for 1 or 2 seats each
    cancellations: int = 80  # buyers' bookings cancelled, one every `interval` seconds
    interval: float = 0.1
    confirm_fraction: float = 0.5  # of the offers; `decline_fraction` declined, the rest run out
    decline_fraction: float = 0.25
    recancel_fraction: float = 0.2  # of the confirmed offers, cancelled again during the stream
    leave_fraction: float = 0.05  # of the waiters, leaving the list during the stream
    offer_ttl: float = 1800.0  # the target's WAITLIST_OFFER_TTL_SECONDS: how long a run-out offer takes
    # Beyond the TTL, how long an offer may take to end EXPIRED (a replica killed while
    # expiring it leaves it to the reconciler, after the target's PENDING_TIMEOUT_SECONDS).
    expiry_grace: float = 30.0
    concurrency: int = 64  # requests in flight while selling out and joining
    seed: int = 1

    @property
    def buyers(self) -> list[str]:
        return [f"wl-buyer-{n}" for n in range(self.seats // BUYER_SEATS)]

    @property
    def waiter_names(self) -> list[str]:
        return [f"wl-waiter-{n}" for n in range(self.waiters)]

    @property
    def newcomer(self) -> str:
        return "wl-newcomer"

    def users(self) -> list[str]:
        return [*self.buyers, *self.waiter_names, self.newcomer]

    def describe(self) -> str:
        return (
            f"waitlist: an event of {self.seats} seats sold out to {len(self.buyers)} buyers, {self.waiters} waiters, "
            f"{self.cancellations} cancellations every {self.interval:g} s; offers {self.confirm_fraction:.0%} "
            f"confirmed, {self.decline_fraction:.0%} declined, the rest run out ({self.offer_ttl:g} s); "
            f"seed {self.seed}"
        )


@dataclass
class WaitlistOutcome:
    event_id: str = ""
    offers: int = 0
    confirmed: int = 0
    declined: int = 0
    expired: int = 0
    late: int = 0  # of the expired: offers meant to be confirmed or declined that had run out
    cancelled: int = 0  # buyers' bookings and confirmed offers cancelled
    left: int = 0
    newcomer_answers: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    # The event (as GET /events/{id} answers) and its waiting list (join order) at the end.
    event: dict[str, Any] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0

    def report(self) -> str:
        states = Counter(str(e.get("state")) for e in self.entries)
        return (
            f"waitlist run of event {self.event_id} in {self.elapsed:.1f} s: {self.offers} offers "
            f"({self.confirmed} confirmed, {self.declined} declined, {self.expired} ran out, {self.late} of them "
            "before their waiter answered), "
            f"{self.cancelled} cancellations, {self.left} left; newcomers: {dict(self.newcomer_answers)}; "
            f"at the end {self.event.get('availableSeats')} seats available, list {dict(states)}"
        )

    def unoffered(self) -> list[str]:
        """WAITING entries that fit the event's available seats at the end (none should)."""
        available = int(self.event.get("availableSeats", 0))
        return [
            f"entry {e['id']} of {e['userId']} ({e['seats']} seat(s)) WAITING with {available} seat(s) available"
            for e in self.entries
            if e.get("state") == "WAITING" and int(e["seats"]) <= available
        ]


def verdict(outcome: WaitlistOutcome) -> list[str]:
    """What fails a run, besides the audit: unexpected answers, a freed seat left unoffered,
    a newcomer who booked while the list still waited at the end (it never grows after the
    joins, so it waited all along)."""
    failures = outcome.problems[:20] + outcome.unoffered()[:20]
    booked = sum(n for answer, n in outcome.newcomer_answers.items() if answer.startswith("201"))
    if booked and int(outcome.event.get("waitlistSize", 0)) > 0:
        failures.append(f"a newcomer booked {booked} time(s) while the list waited")
    return failures
