"""The guarantees TicketFlow makes, checked against both databases at a quiet moment: the one
seat audit of the tests, the load tool and the benchmark.

    audit(booking_conn, event_conn) -> Report      both databases
    check(snapshot) -> Report                      the same checks on facts already read (pure)
    assert_seats_consistent(event_dsn)             the event service's database alone (1b)

1. Seats add up, per event: (a) total = available + seats of CONFIRMED bookings + seats of
   HELD bookings, and (b) inside the event service: total = available + seats of RESERVED
   reservations.
2. No seat is taken without a booking that holds it, and every booking that holds seats has
   them: RESERVED reservations and CONFIRMED + HELD bookings are the same booking ids, with the
   same event and seats.
3. Nothing is left unsettled: no PENDING, CANCELLING or EXPIRING booking (after the settle time).
4. No hold outlives its expiry: nothing HELD with an expire_time more than the hold sweep
   interval plus some slack ago (by the booking database's clock).
5. A cancelled event holds nothing: no RESERVED reservation of it, no CONFIRMED or HELD booking.
6. One booking per idempotency key (per user).
7. Waiting lists (tools.audit.waitlist): (a) waitlist_size = WAITING entries, none WAITING on a
   cancelled event; (b) an OFFERED entry's reservation has its event and seats; (c) every offer
   is acknowledged and recorded as its booking (same id, user, event, seats, entry), and every
   booking recorded as an offer is one; (d) no WAITING entry fits the available seats of an
   event on sale; (e) offers go first fit in join order: no offer skipped an earlier entry
   that fits (from the instants entries stopped waiting); (f) no queue jumping: no reservation
   but an offer took seats while an entry of its event was WAITING.
The event service's tests check (1b) after every race they stage; the end-to-end tests, the
load tool and the benchmark check all of them after a run (tools.audit.settled). The report
groups what it finds by check, each violation naming the event or booking.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from tools.audit import waitlist
from tools.audit.snapshot import SeatMismatch, Snapshot, read_snapshot, seat_mismatches

# Re-exported: the event service's tests use them.
__all__ = ["Report", "SeatMismatch", "assert_seats_consistent", "audit", "audit_dsns", "check", "seat_mismatches"]

# Statuses whose work is under way: a quiet moment has none.
UNSETTLED = ("PENDING", "CANCELLING", "EXPIRING")
# The hold sweeper's interval by default (the booking service's HOLD_SWEEP_INTERVAL_SECONDS).
DEFAULT_SWEEP_INTERVAL = 1.0
# Beyond the interval, time a sweep may take to start and commit on a loaded machine.
HOLD_SLACK = 5.0

# The checks, in report order.
SEATS = "seats add up (total = available + CONFIRMED + HELD)"
RESERVATIONS = "RESERVED reservations are exactly the CONFIRMED and HELD bookings"
UNSETTLED_CHECK = "nothing PENDING, CANCELLING or EXPIRING"
HOLDS = "no hold HELD past its expireTime"
CANCELLED = "a cancelled event holds nothing"
KEYS = "one booking per idempotency key"
WAITLIST_SIZES = "waitlist_size = WAITING entries (none on a cancelled event)"
OFFER_SEATS = "an OFFERED entry's reservation has its event and seats"
OFFERS_RECORDED = "every offer acknowledged and recorded as its booking"
UNOFFERED = "no WAITING entry fits an on-sale event's available seats"
OFFER_ORDER = "offers first fit in join order"
QUEUE_JUMPS = "no reservation taken while the list waited (no queue jumping)"
WAITLIST_CHECKS = (WAITLIST_SIZES, OFFER_SEATS, OFFERS_RECORDED, UNOFFERED, OFFER_ORDER, QUEUE_JUMPS)
CHECKS = (SEATS, RESERVATIONS, UNSETTLED_CHECK, HOLDS, CANCELLED, KEYS, *WAITLIST_CHECKS)


def assert_seats_consistent(event_dsn: str) -> None:
    """(1b) as a test assertion, on the event service's database."""
    with psycopg.connect(event_dsn) as conn:
        mismatches = seat_mismatches(conn)
    assert not mismatches, "; ".join(map(str, mismatches))


@dataclass
class Report:
    # Violations by check (only checks that found some), at most `limit` listed per kind
    # (then "... and N more"), and how many each check found in all.
    findings: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    events: int = 0
    cancelled_events: int = 0
    total_seats: int = 0
    available_seats: int = 0
    bookings_by_status: dict[str, int] = field(default_factory=dict)
    seats_by_status: dict[str, int] = field(default_factory=dict)
    # Waiting-list entries by state (empty when no event has a list).
    waitlist_by_state: dict[str, int] = field(default_factory=dict)
    # Bookings whose settling is under way: the unsettled statuses, CONFIRMED or HELD bookings
    # of a cancelled event (the booking service cancels them within seconds), and holds past
    # their expireTime by less than the sweep interval and slack (the sweeper is due to take
    # them; beyond that they are violations, not work in flight), and offers the booking
    # service has yet to record.
    in_flight: int = 0

    @property
    def violations(self) -> list[str]:
        return [v for check in CHECKS for v in self.findings.get(check, [])]

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(self.bookings_by_status.items())) or "none"
        verdict = "PASSED" if self.ok else f"FAILED ({sum(self.counts.values())} violations)"
        cancelled = f" ({self.cancelled_events} cancelled)" if self.cancelled_events else ""
        entries = ", ".join(f"{k} {v}" for k, v in sorted(self.waitlist_by_state.items()))
        return (
            f"audit {verdict}: {self.events} events{cancelled}, {self.total_seats} seats in all, "
            f"{self.available_seats} available; bookings: {statuses}"
            + (f"; waiting lists: {entries}" if entries else "")
        )

    def lines(self) -> list[str]:
        """The summary, then each failed check and its violations, indented."""
        lines = [self.summary()]
        for check_name in CHECKS:
            if check_name in self.findings:
                lines.append(f"  FAILED: {check_name}")
                lines += [f"    {violation}" for violation in self.findings[check_name]]
        return lines


class _Findings:
    """Violations of one check, at most `limit` listed, then how many more there were."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.listed: list[str] = []
        self.more = 0

    def add(self, text: str) -> None:
        if len(self.listed) < self.limit:
            self.listed.append(text)
        else:
            self.more += 1

    def extend(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.add(text)

    @property
    def count(self) -> int:
        return len(self.listed) + self.more

    def result(self) -> list[str]:
        return self.listed + ([f"... and {self.more} more"] if self.more else [])


def _listed(texts: Iterable[str], limit: int) -> _Findings:
    findings = _Findings(limit)
    findings.extend(texts)
    return findings


def check(snapshot: Snapshot, limit: int = 20) -> Report:
    """The checks on one snapshot of both databases; lists at most `limit` violations of each kind."""
    report = Report(
        events=len(snapshot.events),
        cancelled_events=sum(e.cancelled for e in snapshot.events.values()),
        total_seats=sum(e.total for e in snapshot.events.values()),
        available_seats=sum(e.available for e in snapshot.events.values()),
        bookings_by_status={status: n for status, (n, _) in snapshot.statuses.items()},
        seats_by_status={status: seats for status, (_, seats) in snapshot.statuses.items()},
        waitlist_by_state=waitlist.states(snapshot),
    )
    holding = {**snapshot.confirmed, **snapshot.held}
    cancelled = {event_id for event_id, e in snapshot.events.items() if e.cancelled}
    report.in_flight = (
        sum(report.bookings_by_status.get(s, 0) for s in UNSETTLED)
        + sum(1 for b in holding.values() if b.event_id in cancelled)
        + snapshot.due_holds
        + waitlist.unacknowledged(snapshot)
    )
    found = {
        SEATS: _seats(snapshot, limit),
        RESERVATIONS: _reservations(snapshot, limit),
        UNSETTLED_CHECK: _listed(
            (
                f"{report.bookings_by_status[s]} booking(s) still {s}"
                for s in UNSETTLED
                if report.bookings_by_status.get(s)
            ),
            limit,
        ),
        HOLDS: _overdue_holds(snapshot, limit),
        CANCELLED: _cancelled(snapshot, cancelled, limit),
        KEYS: _listed(
            (f"idempotency key {key!r} of user {user!r} has {n} bookings" for user, key, n in snapshot.duplicate_keys),
            limit,
        ),
        WAITLIST_SIZES: _listed(waitlist.sizes(snapshot), limit),
        OFFER_SEATS: _listed(waitlist.offer_seats(snapshot), limit),
        OFFERS_RECORDED: _listed(waitlist.recorded(snapshot), limit),
        UNOFFERED: _listed(waitlist.unoffered(snapshot), limit),
        OFFER_ORDER: _listed(waitlist.order(snapshot), limit),
        QUEUE_JUMPS: _queue_jumps(snapshot, limit),
    }
    report.findings = {name: f.result() for name, f in found.items() if f.count}
    report.counts = {name: f.count for name, f in found.items() if f.count}
    return report


def _seats(snapshot: Snapshot, limit: int) -> _Findings:
    findings = _Findings(limit)
    confirmed: dict[str, int] = defaultdict(int)
    held: dict[str, int] = defaultdict(int)
    for booking in snapshot.confirmed.values():
        confirmed[booking.event_id] += booking.seats
    for booking in snapshot.held.values():
        held[booking.event_id] += booking.seats
    for event_id, event in snapshot.events.items():
        c, h = confirmed.get(event_id, 0), held.get(event_id, 0)
        if event.total != event.available + c + h:
            findings.add(
                f"event {event_id}: total {event.total} != available {event.available} + CONFIRMED {c} + HELD {h}"
                f" (off by {event.total - event.available - c - h:+d})"
            )
    findings.extend(map(str, snapshot.seat_mismatches))
    for event_id in sorted((set(confirmed) | set(held)) - set(snapshot.events)):
        findings.add(f"bookings hold seats of event {event_id}, which the event service does not know")
    return findings


def _reservations(snapshot: Snapshot, limit: int) -> _Findings:
    findings = _Findings(limit)
    holding = {**snapshot.confirmed, **snapshot.held}
    for booking_id in sorted(snapshot.reserved.keys() - holding.keys()):
        r = snapshot.reserved[booking_id]
        findings.add(
            f"reservation {booking_id} holds {r.seats} seat(s) of event {r.event_id} "
            "without a CONFIRMED or HELD booking"
        )
    for booking_id in sorted(holding.keys() - snapshot.reserved.keys()):
        status = "CONFIRMED" if booking_id in snapshot.confirmed else "HELD"
        findings.add(f"{status} booking {booking_id} holds no reservation")
    for booking_id in sorted(snapshot.reserved.keys() & holding.keys()):
        r, b = snapshot.reserved[booking_id], holding[booking_id]
        if r != b:
            findings.add(
                f"booking {booking_id}: reservation has {r.seats} seat(s) of event {r.event_id}, "
                f"booking {b.seats} of event {b.event_id}"
            )
    return findings


def _overdue_holds(snapshot: Snapshot, limit: int) -> _Findings:
    findings = _listed(
        (
            f"booking {hold.booking_id} still HELD {hold.overdue_seconds:.1f} s after its expireTime "
            f"{hold.expire_time.isoformat()} (allowed: {snapshot.hold_grace:g} s)"
            for hold in snapshot.overdue_holds
        ),
        limit,
    )
    # The snapshot lists the first ones only; the rest are counted in the database.
    findings.more += max(0, snapshot.overdue_count - findings.count)
    return findings


def _queue_jumps(snapshot: Snapshot, limit: int) -> _Findings:
    findings = _listed(map(str, snapshot.queue_jumps), limit)
    # The snapshot lists the first ones only; the rest are counted in the database.
    findings.more += max(0, snapshot.queue_jump_count - findings.count)
    return findings


def _cancelled(snapshot: Snapshot, cancelled: set[str], limit: int) -> _Findings:
    findings = _Findings(limit)
    reserved: dict[str, int] = defaultdict(int)
    for reservation in snapshot.reserved.values():
        if reservation.event_id in cancelled:
            reserved[reservation.event_id] += 1
    for event_id, n in sorted(reserved.items()):
        findings.add(f"cancelled event {event_id} still has {n} RESERVED reservation(s)")
    for status, bookings in (("CONFIRMED", snapshot.confirmed), ("HELD", snapshot.held)):
        per_event: dict[str, int] = defaultdict(int)
        for booking in bookings.values():
            if booking.event_id in cancelled:
                per_event[booking.event_id] += 1
        for event_id, n in sorted(per_event.items()):
            findings.add(f"cancelled event {event_id} still has {n} {status} booking(s)")
    return findings


def audit(
    booking_conn: psycopg.Connection[Any],
    event_conn: psycopg.Connection[Any],
    limit: int = 20,
    sweep_interval: float = DEFAULT_SWEEP_INTERVAL,
) -> Report:
    """Checks the guarantees on both databases; lists at most `limit` violations of each kind.
    `sweep_interval` is the booking service's HOLD_SWEEP_INTERVAL_SECONDS."""
    return check(read_snapshot(booking_conn, event_conn, sweep_interval + HOLD_SLACK, limit), limit)


def audit_dsns(booking_dsn: str, event_dsn: str, sweep_interval: float = DEFAULT_SWEEP_INTERVAL) -> Report:
    # One snapshot per database: read both at a quiet moment (nothing in flight).
    with psycopg.connect(booking_dsn) as bookings, psycopg.connect(event_dsn) as events:
        return audit(bookings, events, sweep_interval=sweep_interval)
