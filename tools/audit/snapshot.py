"""What the audit reads from both databases: one `Snapshot` of the facts its checks need.

All SQL of the audit is here; the checks themselves (`tools.audit.invariants.check`) are pure
functions of a snapshot, tested without a database. Times are judged by the booking
database's clock (`now()`), the clock the booking service's hold sweeper decides by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

_EVENTS = "SELECT id, total_seats, available_seats, state = 'CANCELLED' FROM events"
# (1b) in SQL: the event service's tests run it on databases of any size.
_SEAT_MISMATCHES = """
SELECT e.id, e.total_seats, e.available_seats, coalesce(h.held, 0) AS held
  FROM events e
  LEFT JOIN (SELECT event_id, sum(seats) AS held FROM reservations WHERE state = 'RESERVED' GROUP BY event_id) h
    ON h.event_id = e.id
 WHERE e.total_seats <> e.available_seats + coalesce(h.held, 0)
"""
_RESERVED = "SELECT booking_id, event_id, seats FROM reservations WHERE state = 'RESERVED'"
_HOLDING = "SELECT id, event_id, seats, status FROM bookings WHERE status IN ('CONFIRMED', 'HELD')"
_STATUS_COUNTS = "SELECT status, count(*), coalesce(sum(seats), 0) FROM bookings GROUP BY status"
# Holds the sweeper should have taken by now: HELD longer than `grace` seconds past expire_time.
_OVERDUE_HOLDS = """
SELECT id, expire_time, extract(epoch FROM now() - expire_time)::float8, count(*) OVER ()
  FROM bookings
 WHERE status = 'HELD' AND expire_time < now() - make_interval(secs => %s)
 ORDER BY expire_time
 LIMIT %s
"""
# Holds due but within the grace: the sweeper is about to take them (work in flight).
_DUE_HOLDS = """
SELECT count(*) FROM bookings
 WHERE status = 'HELD' AND expire_time <= now() AND expire_time >= now() - make_interval(secs => %s)
"""
# Keys are per user: two users' "order-1" are two keys.
_DUPLICATE_KEYS = (
    "SELECT user_id, idempotency_key, count(*) FROM bookings WHERE idempotency_key IS NOT NULL "
    "GROUP BY user_id, idempotency_key HAVING count(*) > 1"
)


@dataclass(frozen=True)
class EventSeats:
    """An event's seat counts in the event service, and whether it is cancelled."""

    total: int
    available: int
    cancelled: bool = False


@dataclass(frozen=True)
class Seats:
    """Seats of one event that a reservation or a booking holds."""

    event_id: str
    seats: int


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


@dataclass(frozen=True)
class OverdueHold:
    """A booking still HELD well past its expire_time."""

    booking_id: str
    expire_time: datetime
    overdue_seconds: float


@dataclass
class Snapshot:
    """Both databases as the checks see them. Ids are strings."""

    events: dict[str, EventSeats] = field(default_factory=dict)
    # RESERVED reservations (event service), by booking id.
    reserved: dict[str, Seats] = field(default_factory=dict)
    # CONFIRMED and HELD bookings (booking service), by id.
    confirmed: dict[str, Seats] = field(default_factory=dict)
    held: dict[str, Seats] = field(default_factory=dict)
    # Every status: (bookings, seats).
    statuses: dict[str, tuple[int, int]] = field(default_factory=dict)
    # (1b), from the event service's database alone.
    seat_mismatches: list[SeatMismatch] = field(default_factory=list)
    # The first overdue holds, and how many there are in all.
    overdue_holds: list[OverdueHold] = field(default_factory=list)
    overdue_count: int = 0
    # Holds past their expire_time, but not by more than the grace: being swept.
    due_holds: int = 0
    # The grace the overdue holds were read with: sweep interval + slack, seconds.
    hold_grace: float = 0.0
    # (user, key, bookings) for keys with more than one booking.
    duplicate_keys: list[tuple[str, str, int]] = field(default_factory=list)


def seat_mismatches(event_conn: psycopg.Connection[Any], limit: int | None = None) -> list[SeatMismatch]:
    """(1b): the events of the event service's database whose seats do not add up."""
    query = _SEAT_MISMATCHES if limit is None else f"{_SEAT_MISMATCHES} LIMIT {int(limit)}"
    return [SeatMismatch(str(r[0]), r[1], r[2], int(r[3])) for r in event_conn.execute(query)]


def read_snapshot(
    booking_conn: psycopg.Connection[Any], event_conn: psycopg.Connection[Any], hold_grace: float, limit: int
) -> Snapshot:
    """Reads what the checks need; at most `limit` of each kind of listed row (mismatches,
    overdue holds). Read both at a quiet moment: the two databases are two snapshots."""
    snapshot = Snapshot(hold_grace=hold_grace)
    for event_id, total, available, cancelled in event_conn.execute(_EVENTS):
        snapshot.events[str(event_id)] = EventSeats(total, available, bool(cancelled))
    for booking_id, event_id, seats in event_conn.execute(_RESERVED):
        snapshot.reserved[str(booking_id)] = Seats(str(event_id), seats)
    snapshot.seat_mismatches = seat_mismatches(event_conn, limit)
    for booking_id, event_id, seats, status in booking_conn.execute(_HOLDING):
        (snapshot.confirmed if status == "CONFIRMED" else snapshot.held)[str(booking_id)] = Seats(str(event_id), seats)
    for status, count, seats in booking_conn.execute(_STATUS_COUNTS):
        snapshot.statuses[status] = (int(count), int(seats))
    for booking_id, expire_time, overdue, total in booking_conn.execute(_OVERDUE_HOLDS, (hold_grace, limit)):
        snapshot.overdue_holds.append(OverdueHold(str(booking_id), expire_time, float(overdue)))
        snapshot.overdue_count = int(total)
    due = booking_conn.execute(_DUE_HOLDS, (hold_grace,)).fetchone()
    snapshot.due_holds = int(due[0]) if due else 0
    snapshot.duplicate_keys = [(str(u), str(k), int(n)) for u, k, n in booking_conn.execute(_DUPLICATE_KEYS)]
    return snapshot
