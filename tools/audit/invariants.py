"""The guarantees TicketFlow makes, checked against both databases at a quiet moment: the one
seat audit of the tests, the load tool and the benchmark.

    audit(booking_conn, event_conn) -> Report      both databases
    assert_seats_consistent(event_dsn)             the event service's database alone (1b)

1. Seats add up, per event: (a) total = available + seats of CONFIRMED bookings, and
   (b) inside the event service: total = available + seats of RESERVED reservations.
2. No seat is held without a CONFIRMED booking, and every CONFIRMED booking holds its seats:
   RESERVED reservations and CONFIRMED bookings are the same booking ids with the same seats.
3. Nothing is left unsettled: no PENDING or CANCELLING booking (after the settle time).
4. One booking per idempotency key.
The event service's tests check (1b) after every race they stage; the end-to-end tests, the
load tool and the benchmark check all of them after a run (tools.audit.settled).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import psycopg

_EVENTS = "SELECT id, total_seats, available_seats FROM events"
# (1b) in SQL: the event service's tests run it on databases of any size.
_SEAT_MISMATCHES = """
SELECT e.id, e.total_seats, e.available_seats, coalesce(h.held, 0) AS held
  FROM events e
  LEFT JOIN (SELECT event_id, sum(seats) AS held FROM reservations WHERE state = 'RESERVED' GROUP BY event_id) h
    ON h.event_id = e.id
 WHERE e.total_seats <> e.available_seats + coalesce(h.held, 0)
"""
_RESERVED = "SELECT booking_id, event_id, seats FROM reservations WHERE state = 'RESERVED'"
_CONFIRMED = "SELECT id, event_id, seats FROM bookings WHERE status = 'CONFIRMED'"
_UNSETTLED = "SELECT status, count(*) FROM bookings WHERE status IN ('PENDING', 'CANCELLING') GROUP BY status"
# Keys are per user: two users' "order-1" are two keys.
_DUPLICATE_KEYS = (
    "SELECT user_id, idempotency_key, count(*) FROM bookings WHERE idempotency_key IS NOT NULL "
    "GROUP BY user_id, idempotency_key HAVING count(*) > 1"
)
_STATUS_COUNTS = "SELECT status, count(*), coalesce(sum(seats), 0) FROM bookings GROUP BY status"


@dataclass(frozen=True)
class SeatMismatch:
    """An event whose seats do not add up inside the event service (1b)."""

    event_id: str
    total_seats: int
    available_seats: int
    reserved_seats: int

    def __str__(self) -> str:
        return (
            f"event {self.event_id}: total {self.total_seats} != available {self.available_seats}"
            f" + RESERVED {self.reserved_seats}"
        )


def seat_mismatches(event_conn: psycopg.Connection[Any], limit: int | None = None) -> list[SeatMismatch]:
    """(1b): the events of the event service's database whose seats do not add up."""
    query = _SEAT_MISMATCHES if limit is None else f"{_SEAT_MISMATCHES} LIMIT {int(limit)}"
    return [SeatMismatch(str(r[0]), r[1], r[2], int(r[3])) for r in event_conn.execute(query)]


def assert_seats_consistent(event_dsn: str) -> None:
    """(1b) as a test assertion, on the event service's database."""
    with psycopg.connect(event_dsn) as conn:
        mismatches = seat_mismatches(conn)
    assert not mismatches, "; ".join(map(str, mismatches))


@dataclass
class Report:
    violations: list[str] = field(default_factory=list)
    events: int = 0
    total_seats: int = 0
    available_seats: int = 0
    bookings_by_status: dict[str, int] = field(default_factory=dict)
    seats_by_status: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(self.bookings_by_status.items())) or "none"
        verdict = "PASSED" if self.ok else f"FAILED ({len(self.violations)} violations)"
        return (
            f"audit {verdict}: {self.events} events, {self.total_seats} seats in all, "
            f"{self.available_seats} available; bookings: {statuses}"
        )


def audit(booking_conn: psycopg.Connection[Any], event_conn: psycopg.Connection[Any], limit: int = 20) -> Report:
    """Checks the guarantees; lists at most `limit` violations of each kind."""
    report = Report()
    events = {row[0]: (row[1], row[2]) for row in event_conn.execute(_EVENTS)}
    reserved = {row[0]: (row[1], row[2]) for row in event_conn.execute(_RESERVED)}
    confirmed = {row[0]: (row[1], row[2]) for row in booking_conn.execute(_CONFIRMED)}
    report.events = len(events)
    report.total_seats = sum(total for total, _ in events.values())
    report.available_seats = sum(available for _, available in events.values())
    for status, count, seats in booking_conn.execute(_STATUS_COUNTS):
        report.bookings_by_status[status] = int(count)
        report.seats_by_status[status] = int(seats)

    def violation(kind: list[str], text: str) -> None:
        if len(kind) < limit:
            kind.append(text)

    seat_sums: list[str] = []
    held_by_event: dict[Any, int] = defaultdict(int)
    for event_id, seats in confirmed.values():
        held_by_event[event_id] += seats
    for event_id, (total, available) in events.items():
        if total != available + held_by_event.get(event_id, 0):
            violation(
                seat_sums,
                f"event {event_id}: total {total} != available {available} + CONFIRMED bookings' "
                f"{held_by_event.get(event_id, 0)}",
            )
    for mismatch in seat_mismatches(event_conn, limit):
        violation(seat_sums, str(mismatch))
    for event_id in set(held_by_event) - set(events):
        violation(seat_sums, f"CONFIRMED bookings hold seats of unknown event {event_id}")

    holds: list[str] = []
    for booking_id in reserved.keys() - confirmed.keys():
        violation(holds, f"reservation {booking_id} holds seats without a CONFIRMED booking")
    for booking_id in confirmed.keys() - reserved.keys():
        violation(holds, f"CONFIRMED booking {booking_id} holds no reservation")
    for booking_id in reserved.keys() & confirmed.keys():
        if reserved[booking_id] != confirmed[booking_id]:
            violation(
                holds, f"booking {booking_id}: reservation {reserved[booking_id]} != booking {confirmed[booking_id]}"
            )

    unsettled = [f"{count} booking(s) still {status}" for status, count in booking_conn.execute(_UNSETTLED)]
    keys = [
        f"idempotency key {key!r} of user {user!r} has {n} bookings"
        for user, key, n in booking_conn.execute(_DUPLICATE_KEYS)
    ]
    report.violations = seat_sums + holds + unsettled + keys[:limit]
    return report


def audit_dsns(booking_dsn: str, event_dsn: str) -> Report:
    # One snapshot per database: read both at a quiet moment (nothing in flight).
    with psycopg.connect(booking_dsn) as bookings, psycopg.connect(event_dsn) as events:
        return audit(bookings, events)
