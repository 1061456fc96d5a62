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

# On sale for the waiting list: offers are made until the sales window ends (before it opens
# too: a list only exists after a sell-out), never once the event is cancelled.
_EVENTS = """
SELECT id, total_seats, available_seats, state = 'CANCELLED', waitlist_size,
       state = 'SCHEDULED' AND (sales_end_time IS NULL OR sales_end_time > now())
  FROM events
"""
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
# Every waiting-list entry, with when it stopped WAITING (NULL while it waits) and, for an
# offer, the reservation it names (the foreign key makes one exist).
_WAITLIST = """
SELECT w.id, w.event_id, w.user_id, w.seats, w.seq, w.state, w.create_time,
       CASE w.state WHEN 'WAITING' THEN NULL WHEN 'OFFERED' THEN w.offer_time ELSE w.update_time END,
       w.booking_id, w.acknowledge_time IS NOT NULL, r.event_id, r.seats
  FROM waitlist_entries w LEFT JOIN reservations r ON r.booking_id = w.booking_id
 ORDER BY w.event_id, w.seq
"""
# Queue jumps: a reservation that took seats (RESERVED, or RELEASED after holding some) and
# is no offer, made while an entry of its event was WAITING: joined before it, and leaving
# the WAITING state (offered, left, closed) only after it, or not yet. Reservations and
# entries are decided under the event's row lock, their instants read from the clock after
# it, so the instants order them. Only the first entry that waited is named.
_QUEUE_JUMPS = """
SELECT r.booking_id, r.event_id, r.create_time, j.id, j.create_time, count(*) OVER ()
  FROM reservations r
  CROSS JOIN LATERAL (
        SELECT w.id, w.create_time FROM waitlist_entries w
         WHERE w.event_id = r.event_id AND w.create_time < r.create_time
           AND (w.state = 'WAITING'
                OR CASE w.state WHEN 'OFFERED' THEN w.offer_time ELSE w.update_time END > r.create_time)
         ORDER BY w.seq LIMIT 1) j
 WHERE (r.state = 'RESERVED' OR (r.state = 'RELEASED' AND r.seats > 0))
   AND r.event_id IN (SELECT event_id FROM waitlist_entries)
   AND NOT EXISTS (SELECT FROM waitlist_entries o WHERE o.booking_id = r.booking_id)
 ORDER BY r.create_time
 LIMIT %s
"""
# Bookings recorded for offers.
_OFFER_BOOKINGS = (
    "SELECT id, user_id, event_id, seats, status, waitlist_entry_id FROM bookings WHERE waitlist_entry_id IS NOT NULL"
)
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
    # WAITING entries as the event row counts them, and whether offers can be made (SCHEDULED,
    # sales not ended).
    waitlist_size: int = 0
    on_sale: bool = True


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


@dataclass(frozen=True)
class WaitlistEntry:
    """A waiting-list entry as the event service has it."""

    id: str
    event_id: str
    user_id: str
    seats: int
    seq: int
    state: str
    create_time: datetime
    # When it stopped WAITING (offer_time, or update_time when it left or was closed); None
    # while WAITING.
    left_time: datetime | None = None
    # An offer's booking id, whether the booking service acknowledged it, and the event and
    # seats of the reservation it names.
    booking_id: str | None = None
    acknowledged: bool = False
    reservation: Seats | None = None


@dataclass(frozen=True)
class OfferBooking:
    """A booking recorded for a waiting-list offer (booking service)."""

    booking_id: str
    user_id: str
    event_id: str
    seats: int
    status: str
    entry_id: str


@dataclass(frozen=True)
class QueueJump:
    """A reservation (not an offer) made while an entry of its event was WAITING."""

    booking_id: str
    event_id: str
    create_time: datetime
    entry_id: str
    entry_create_time: datetime

    def __str__(self) -> str:
        return (
            f"reservation {self.booking_id} took seats of event {self.event_id} at {self.create_time.isoformat()} "
            f"while entry {self.entry_id} (joined {self.entry_create_time.isoformat()}) was WAITING"
        )


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
    # Waiting lists: every entry (event service), in join order per event; the bookings
    # recorded for offers (booking service), by booking id; the first queue jumps and how
    # many there are in all.
    waitlist: list[WaitlistEntry] = field(default_factory=list)
    offer_bookings: dict[str, OfferBooking] = field(default_factory=dict)
    queue_jumps: list[QueueJump] = field(default_factory=list)
    queue_jump_count: int = 0


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
    for event_id, total, available, cancelled, waitlist_size, on_sale in event_conn.execute(_EVENTS):
        snapshot.events[str(event_id)] = EventSeats(total, available, bool(cancelled), waitlist_size, bool(on_sale))
    for booking_id, event_id, seats in event_conn.execute(_RESERVED):
        snapshot.reserved[str(booking_id)] = Seats(str(event_id), seats)
    snapshot.seat_mismatches = seat_mismatches(event_conn, limit)
    _read_waitlist(snapshot, event_conn, limit)
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
    for booking_id, user_id, event_id, seats, status, entry_id in booking_conn.execute(_OFFER_BOOKINGS):
        snapshot.offer_bookings[str(booking_id)] = OfferBooking(
            str(booking_id), user_id, str(event_id), seats, status, str(entry_id)
        )
    return snapshot


def _read_waitlist(snapshot: Snapshot, event_conn: psycopg.Connection[Any], limit: int) -> None:
    for row in event_conn.execute(_WAITLIST):
        entry_id, event_id, user_id, seats, seq, state, created, left, booking_id, acked, r_event, r_seats = row
        snapshot.waitlist.append(
            WaitlistEntry(
                id=str(entry_id),
                event_id=str(event_id),
                user_id=user_id,
                seats=seats,
                seq=seq,
                state=state,
                create_time=created,
                left_time=left,
                booking_id=str(booking_id) if booking_id else None,
                acknowledged=bool(acked),
                reservation=Seats(str(r_event), r_seats) if booking_id else None,
            )
        )
    for booking_id, event_id, created, entry_id, entry_created, total in event_conn.execute(_QUEUE_JUMPS, (limit,)):
        snapshot.queue_jumps.append(QueueJump(str(booking_id), str(event_id), created, str(entry_id), entry_created))
        snapshot.queue_jump_count = int(total)
