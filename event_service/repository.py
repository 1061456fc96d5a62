"""PostgreSQL storage of events and reservations.

Seats change in these ways, each atomic: `reserve_batch`, the path every reservation takes, is
one transaction that locks each of its events' rows once (in id order), reads the decision
instant from PostgreSQL's clock after the locks, decides the batch in Python
(`domain.allocate`) and writes every seat count and record in one statement; `reserve` is a
single statement (the batch's fallback when a booking id of the batch is recorded
concurrently, deciding the same way inside the statement); `release` is one statement, in a
transaction that then, when people wait for the event, runs the offer step
(`waitlist_repository.offer_seats`); `update_event` (with the offer step too) and
`cancel_event` (which closes the waiting list) are a transaction under the event's row lock.
While people wait for an event, reservations find no seat free: those that come back go to
the waiting list. The `reservations` row of a booking id is the record of truth: every path
ends by returning what is recorded, which is what makes replays safe.

Lock order: a reservation locks its event's row, then writes its record; a release locks the
record, then the event's row, then (offer step) writes the event's waiting-list entries and
the offers' new records; an update, a join or a leave of the waiting list lock the event's row,
then write its entries (and, offering, new records). A cancellation locks the event's row and
then only the records it can lock at once (SKIP LOCKED): a record it skips is being released
right now, and that release gives its seats back itself once the cancellation commits (and,
the event being cancelled, offers nothing), so every seat comes back exactly once and no two
of these ever wait for each other in a cycle. The offers' records are new booking ids, which
nobody else can be writing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import errors
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from event_service import rows
from event_service.changes import EventUpdate, apply_update
from event_service.domain import (
    Cancellation,
    Event,
    EventState,
    NewEvent,
    Reservation,
    ReservationState,
    SeatRequest,
    Turn,
    allocate,
)
from event_service.rows import EVENT_COLUMNS, LOCK_EVENT, RESERVATION_COLUMNS, SELECT_CLOCK
from event_service.waitlist_repository import OnOffers, offer_seats

INSERT_EVENT = f"""
INSERT INTO events (id, name, start_time, total_seats, available_seats, sales_start_time, sales_end_time)
VALUES (%(id)s, %(name)s, %(start_time)s, %(total_seats)s, %(total_seats)s, %(sales_start_time)s, %(sales_end_time)s)
RETURNING {EVENT_COLUMNS}
"""

SELECT_EVENT = f"SELECT {EVENT_COLUMNS} FROM events WHERE id = %(id)s"

UPDATE_EVENT = f"""
UPDATE events
   SET name = %(name)s, start_time = %(start_time)s, sales_start_time = %(sales_start_time)s,
       sales_end_time = %(sales_end_time)s, total_seats = %(total_seats)s,
       available_seats = %(available_seats)s, update_time = now()
 WHERE id = %(id)s
RETURNING {EVENT_COLUMNS}
"""

# Cancels a locked, SCHEDULED event: every RESERVED record of it becomes RELEASED with reason
# EVENT_CANCELLED, its seats come back with the state change, and its WAITING entries become
# CLOSED (at an instant read after the lock; OFFERED ones stay OFFERED: their reservations are
# released like any other), in one statement. A record locked by someone else is being
# released by the booking service (RELEASE): it is skipped rather than waited for (that
# RELEASE waits for this event's row, so waiting would deadlock), and that RELEASE adds its
# seats back itself right after this commits. Hence `available + released` rather than
# `total`: each seat comes back exactly once, whoever gives it back.
CANCEL_EVENT = f"""
WITH clock AS MATERIALIZED (
    SELECT clock_timestamp() AS now
), closed AS (
    UPDATE waitlist_entries SET state = 'CLOSED', update_time = (SELECT now FROM clock)
     WHERE event_id = %(id)s AND state = 'WAITING'
), released AS (
    UPDATE reservations
       SET state = 'RELEASED', release_time = now(), release_reason = 'EVENT_CANCELLED'
     WHERE state = 'RESERVED' AND booking_id IN (
           SELECT booking_id FROM reservations
            WHERE event_id = %(id)s AND state = 'RESERVED'
              FOR UPDATE SKIP LOCKED)
 RETURNING seats
)
UPDATE events
   SET available_seats = available_seats + (SELECT coalesce(sum(seats), 0) FROM released),
       state = 'CANCELLED', cancel_time = now(), update_time = now(), waitlist_size = 0
 WHERE id = %(id)s
RETURNING {EVENT_COLUMNS}
"""

# ListCancelledEvents: cancelled at or after `after`, past the page position, in
# (cancel_time, id) order (the events_cancelled index).
SELECT_CANCELLED = f"""
SELECT {EVENT_COLUMNS} FROM events
 WHERE state = 'CANCELLED'
   AND cancel_time >= coalesce(%(after)s::timestamptz, '-infinity')
   AND (cancel_time, id) > (coalesce(%(position_time)s::timestamptz, '-infinity'),
                            coalesce(%(position_id)s::uuid, '00000000-0000-0000-0000-000000000000'))
 ORDER BY cancel_time, id
 LIMIT %(limit)s
"""

SELECT_FIRST_EVENTS = f"SELECT {EVENT_COLUMNS} FROM events ORDER BY start_time, id LIMIT %(limit)s"

SELECT_EVENTS_AFTER = f"""
SELECT {EVENT_COLUMNS} FROM events
 WHERE (start_time, id) > (%(after_time)s, %(after_id)s)
 ORDER BY start_time, id
 LIMIT %(limit)s
"""

COUNT_EVENTS = "SELECT count(*) AS n FROM events"

# Decides one reservation and records the outcome, in one statement, as `reserve_batch`
# decides a batch of one: `event` locks the event's row (FOR UPDATE returns its latest
# version after any wait), `decided` reads the decision instant from the clock only then (a
# MATERIALIZED CTE hands on its rows only once they are locked; clock_timestamp() in the
# locking SELECT's own target list could be read before the wait) and decides, from the
# locked row, refused (cancelled, outside the sales window), reserved or sold out (also when
# people wait for the event: its free seats are kept for the waiting list). A booking
# id that already has a record makes the INSERT fail (unique violation), which undoes the
# UPDATE too. No row comes back when the event does not exist.
RESERVE = f"""
WITH event AS MATERIALIZED (
    SELECT id, available_seats, state, sales_start_time, sales_end_time, waitlist_size
      FROM events WHERE id = %(event_id)s FOR UPDATE
), decided AS MATERIALIZED (
    SELECT id, available_seats, sales_start_time, sales_end_time, waitlist_size, decided_at,
           CASE WHEN state = 'CANCELLED' THEN 'EVENT_CANCELLED'
                WHEN decided_at < sales_start_time THEN 'SALES_NOT_STARTED'
                WHEN sales_end_time <= decided_at THEN 'SALES_ENDED'
           END AS refusal_reason
      FROM (SELECT event.*, clock_timestamp() AS decided_at FROM event) AS locked
), taken AS (
    UPDATE events
       SET available_seats = decided.available_seats - %(seats)s, update_time = now()
      FROM decided
     WHERE events.id = decided.id AND decided.refusal_reason IS NULL AND decided.available_seats >= %(seats)s
       AND decided.waitlist_size = 0
 RETURNING events.available_seats
)
INSERT INTO reservations (booking_id, event_id, seats, state, refusal_reason, create_time)
SELECT %(booking_id)s, decided.id, %(seats)s,
       CASE WHEN decided.refusal_reason IS NOT NULL THEN 'REFUSED'
            WHEN EXISTS (SELECT FROM taken) THEN 'RESERVED'
            ELSE 'SOLD_OUT' END,
       decided.refusal_reason, decided.decided_at
  FROM decided
RETURNING {RESERVATION_COLUMNS},
          coalesce((SELECT available_seats FROM taken), (SELECT available_seats FROM decided)) AS available_seats,
          (SELECT sales_start_time FROM decided) AS sales_start_time,
          (SELECT sales_end_time FROM decided) AS sales_end_time,
          (SELECT waitlist_size FROM decided) AS waitlist_size
"""

# Gives a RESERVED booking's seats back (the state change and the seat count in one
# statement, so exactly once), or, when the booking id has no record at all, records it as
# RELEASED so that a late RESERVE for it fails. Returns no row when a record exists that is
# not RESERVED (already released, sold out) or appeared after this statement's snapshot.
# waitlist_size is the event's after the release (NULL for a marker): above 0, the release's
# transaction offers the seats to the waiting list (`release`).
RELEASE = f"""
WITH released AS (
    UPDATE reservations
       SET state = 'RELEASED', release_time = now()
     WHERE booking_id = %(booking_id)s AND state = 'RESERVED'
 RETURNING {RESERVATION_COLUMNS}
), restored AS (
    UPDATE events
       SET available_seats = events.available_seats + released.seats, update_time = now()
      FROM released
     WHERE events.id = released.event_id
 RETURNING events.waitlist_size
), marker AS (
    INSERT INTO reservations (booking_id, event_id, seats, state, release_time)
    SELECT %(booking_id)s, NULL, 0, 'RELEASED', now()
     WHERE NOT EXISTS (SELECT FROM released)
    ON CONFLICT (booking_id) DO NOTHING
 RETURNING {RESERVATION_COLUMNS}
)
SELECT *, (SELECT waitlist_size FROM restored) AS waitlist_size FROM released
UNION ALL
SELECT *, NULL::integer FROM marker
"""

# A batch of reservations (see `reserve_batch`): lock the rows of the batch's events, in id
# order so that concurrent batches cannot deadlock...
LOCK_EVENTS_FOR_BATCH = f"""
SELECT {EVENT_COLUMNS} FROM events WHERE id = ANY(%(event_ids)s::uuid[]) ORDER BY id FOR UPDATE
"""

# ...read the decision instant (SELECT_CLOCK, after the locks)...

# ...read what is already recorded for the batch's booking ids (same round trip)...
SELECT_RECORDED = f"""
SELECT {RESERVATION_COLUMNS} FROM reservations WHERE booking_id = ANY(%(booking_ids)s::uuid[])
"""

# ...then write every event's seat count and every new record, made at the decision instant,
# in one statement.
WRITE_BATCH = """
WITH seats AS (
    UPDATE events AS e SET available_seats = v.available, update_time = now()
      FROM unnest(%(event_ids)s::uuid[], %(availables)s::integer[]) AS v(id, available)
     WHERE e.id = v.id AND e.available_seats <> v.available
)
INSERT INTO reservations (booking_id, event_id, seats, state, refusal_reason, create_time)
SELECT booking_id, event_id, seats, state, refusal_reason, %(now)s
  FROM unnest(%(booking_ids)s::uuid[], %(record_event_ids)s::uuid[], %(seats)s::integer[], %(states)s::text[],
              %(refusal_reasons)s::text[])
       AS t(booking_id, event_id, seats, state, refusal_reason)
RETURNING booking_id, create_time
"""

# The record of a booking id, with its event's seats left, waiting list and sales window (for
# refusals).
SELECT_RESERVATION = """
SELECT r.booking_id, r.event_id, r.seats, r.state, r.create_time, r.release_time, r.refusal_reason,
       r.release_reason, e.available_seats, e.sales_start_time, e.sales_end_time, e.waitlist_size
  FROM reservations r LEFT JOIN events e ON e.id = r.event_id
 WHERE r.booking_id = %(booking_id)s
"""


class ReleaseRaced(RuntimeError):
    """A booking id's record kept changing under ReleaseSeats (should not happen)."""


class EventRepository:
    def __init__(self, pool: AsyncConnectionPool, on_offers: OnOffers | None = None) -> None:
        """`on_offers` hears of the offers each committed release or update made."""
        self._pool = pool
        self._on_offers = on_offers or (lambda offers: None)

    async def create_event(self, new: NewEvent) -> Event:
        async with self._pool.connection() as conn:
            row = await rows.one(conn, INSERT_EVENT, _new_event_params(new))
        assert row is not None
        return rows.event(row)

    async def get_event(self, event_id: uuid.UUID) -> Event | None:
        async with self._pool.connection() as conn:
            row = await rows.one(conn, SELECT_EVENT, {"id": event_id})
        return rows.event(row) if row else None

    async def list_events(self, limit: int, after: tuple[datetime, uuid.UUID] | None) -> tuple[list[Event], int]:
        """Up to `limit` events after the (start_time, id) position, and the total count."""
        params: dict[str, Any]
        if after is None:
            query, params = SELECT_FIRST_EVENTS, {"limit": limit}
        else:
            query, params = SELECT_EVENTS_AFTER, {"limit": limit, "after_time": after[0], "after_id": after[1]}
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(query, params)
            found = await cursor.fetchall()
            count = await rows.one(conn, COUNT_EVENTS, {})
        assert count is not None
        return [rows.event(r) for r in found], int(count["n"])

    async def update_event(self, event_id: uuid.UUID, update: EventUpdate) -> Event | None:
        """Applies a validated update under the event's row lock (`changes.apply_update`
        decides it against the locked row); None when the event does not exist. When people
        wait for the event, the same transaction then offers them what now fits (seats may
        have been added, or the sales window reopened)."""
        offers = []
        async with self._pool.connection() as conn, conn.transaction():
            row = await rows.one(conn, LOCK_EVENT, {"id": event_id})
            if row is None:
                return None
            current = rows.event(row)
            if not update.fields and current.state is EventState.SCHEDULED:
                return current
            changed = apply_update(current, update)
            row = await rows.one(conn, UPDATE_EVENT, _event_params(changed))
            assert row is not None
            if row["waitlist_size"] > 0:
                offers = await offer_seats(conn, event_id)
                if offers:
                    row = await rows.one(conn, SELECT_EVENT, {"id": event_id})
        assert row is not None
        self._on_offers(offers)
        return rows.event(row)

    async def cancel_event(self, event_id: uuid.UUID) -> Cancellation | None:
        """Cancels the event and gives back every seat its reservations hold, in one
        transaction; a cancelled event is returned as it is. None when it does not exist."""
        async with self._pool.connection() as conn, conn.transaction():
            row = await rows.one(conn, LOCK_EVENT, {"id": event_id})
            if row is None:
                return None
            if row["state"] == EventState.CANCELLED.value:
                return Cancellation(rows.event(row), cancelled_now=False)
            row = await rows.one(conn, CANCEL_EVENT, {"id": event_id})
        assert row is not None
        return Cancellation(rows.event(row), cancelled_now=True)

    async def list_cancelled_events(
        self, after: datetime | None, limit: int, position: tuple[datetime, uuid.UUID] | None
    ) -> list[Event]:
        """Up to `limit` events cancelled at or after `after`, past the (cancel_time, id)
        `position`, in that order."""
        params = {
            "after": after,
            "limit": limit,
            "position_time": position[0] if position else None,
            "position_id": position[1] if position else None,
        }
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(SELECT_CANCELLED, params)
            return [rows.event(row) for row in await cursor.fetchall()]

    async def reserve(self, request: SeatRequest) -> tuple[Reservation, Turn] | None:
        """Records the outcome of taking the seats; returns (what is recorded for the booking
        id, the event's seats left and sales window), or None when the event does not exist.
        A record made earlier for the same booking id is returned as it is (nothing is
        taken)."""
        params = {"booking_id": request.booking_id, "event_id": request.event_id, "seats": request.seats}
        async with self._pool.connection() as conn:
            try:
                row = await rows.one(conn, RESERVE, params)
            except errors.UniqueViolation:
                row = await rows.one(conn, SELECT_RESERVATION, params)
                assert row is not None, "a unique violation means the record exists"
        if row is None:
            return None
        return rows.reservation(row), rows.turn(row)

    async def reserve_batch(self, requests: list[SeatRequest]) -> list[tuple[Reservation, Turn] | None]:
        """Reserves a batch of requests, for any events, in one transaction, deciding each
        event's requests exactly as one-by-one calls of `reserve` in list order would
        (`domain.allocate`), all at one instant of PostgreSQL's clock read after the events'
        row locks. Returns, per request, what is recorded for its booking id and its event as
        its turn found it, or None when its event does not exist.

        Each event's row is locked once for the whole batch, and the transaction costs two
        round trips and one commit, whatever the batch size. If a booking id of the batch is
        recorded concurrently by someone else (the INSERT's unique violation rolls everything
        back), the batch is redone one request at a time."""
        try:
            return await self._reserve_batch(requests)
        except errors.UniqueViolation:
            return [await self.reserve(request) for request in requests]

    async def _reserve_batch(self, requests: list[SeatRequest]) -> list[tuple[Reservation, Turn] | None]:
        by_event: dict[uuid.UUID, list[SeatRequest]] = {}
        for request in requests:
            by_event.setdefault(request.event_id, []).append(request)
        async with self._pool.connection() as conn, conn.pipeline(), conn.transaction():
            events = conn.cursor(row_factory=dict_row)
            await events.execute(LOCK_EVENTS_FOR_BATCH, {"event_ids": list(by_event)})
            clock = conn.cursor(row_factory=dict_row)
            await clock.execute(SELECT_CLOCK)
            recorded_rows = conn.cursor(row_factory=dict_row)
            await recorded_rows.execute(SELECT_RECORDED, {"booking_ids": [r.booking_id for r in requests]})
            locked = {row["id"]: rows.event(row) for row in await events.fetchall()}
            clock_row = await clock.fetchone()
            assert clock_row is not None
            now: datetime = clock_row["now"]
            recorded = {row["booking_id"]: rows.reservation(row) for row in await recorded_rows.fetchall()}
            # A booking id asked for under two events of the batch counts for its first one;
            # for the other it is a replay (as one-by-one calls would have it).
            first_event: dict[uuid.UUID, uuid.UUID] = {}
            for request in requests:
                if request.event_id in locked:
                    first_event.setdefault(request.booking_id, request.event_id)
            allocations = {
                event_id: allocate(
                    locked[event_id].available_seats,
                    batch,
                    recorded.keys() | {b for b, e in first_event.items() if e != event_id},
                    locked[event_id].sales,
                    now,
                    waiting=locked[event_id].waitlist_size > 0,
                )
                for event_id, batch in by_event.items()
                if event_id in locked
            }
            new_records = {
                request.booking_id: (request, state, allocation.refusal)
                for allocation in allocations.values()
                for request, state in allocation.new_records
            }
            if new_records:
                records = list(new_records.values())
                await events.execute(
                    WRITE_BATCH,
                    {
                        "event_ids": list(allocations),
                        "availables": [a.available for a in allocations.values()],
                        "booking_ids": [r.booking_id for r, _, _ in records],
                        "record_event_ids": [r.event_id for r, _, _ in records],
                        "seats": [r.seats for r, _, _ in records],
                        "states": [state.value for _, state, _ in records],
                        "refusal_reasons": [
                            refusal.value if state is ReservationState.REFUSED and refusal else None
                            for _, state, refusal in records
                        ],
                        "now": now,
                    },
                )
                created = {row["booking_id"]: row["create_time"] for row in await events.fetchall()}
                for request, state, refusal in records:
                    recorded[request.booking_id] = Reservation(
                        request.booking_id,
                        request.event_id,
                        request.seats,
                        state,
                        created[request.booking_id],
                        None,
                        refusal if state is ReservationState.REFUSED else None,
                    )
        results: list[tuple[Reservation, Turn] | None] = []
        for request in requests:
            allocation = allocations.get(request.event_id)
            if allocation is None:
                results.append(None)
            else:
                event = locked[request.event_id]
                left = allocation.available_after.get(request.booking_id, allocation.free_to_newcomers)
                turn = Turn(left, event.sales_start_time, event.sales_end_time, event.waitlist_size)
                results.append((recorded[request.booking_id], turn))
        return results

    async def release(self, booking_id: uuid.UUID) -> Reservation:
        """Gives the booking's seats back (once), or records the booking id as released. When
        people wait for the event, the same transaction offers them the seats (the offer step,
        under the event's row lock that RELEASE took), so seats never come back unoffered."""
        params = {"booking_id": booking_id}
        async with self._pool.connection() as conn:
            # Each round sees everything committed before it started; a record that appears
            # between our snapshot and our write is seen by the next round.
            for _ in range(5):
                async with conn.pipeline(), conn.transaction():
                    released = await rows.one(conn, RELEASE, params)
                    # waitlist_size is NULL for a marker: no seat came back.
                    waiting = released is not None and (released["waitlist_size"] or 0) > 0
                    offers = await offer_seats(conn, released["event_id"]) if released and waiting else []
                if released is not None:
                    self._on_offers(offers)
                    return rows.reservation(released)
                row = await rows.one(conn, SELECT_RESERVATION, params)
                if row is not None and row["state"] != ReservationState.RESERVED.value:
                    return rows.reservation(row)
        raise ReleaseRaced(f"the record of booking {booking_id} kept changing during release")

    async def get_reservation(self, booking_id: uuid.UUID) -> tuple[Reservation, Turn] | None:
        async with self._pool.connection() as conn:
            row = await rows.one(conn, SELECT_RESERVATION, {"booking_id": booking_id})
        return (rows.reservation(row), rows.turn(row)) if row else None


def _new_event_params(new: NewEvent) -> dict[str, Any]:
    return {
        "id": new.id,
        "name": new.name,
        "start_time": new.start_time,
        "total_seats": new.total_seats,
        "sales_start_time": new.sales_start_time,
        "sales_end_time": new.sales_end_time,
    }


def _event_params(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "name": event.name,
        "start_time": event.start_time,
        "sales_start_time": event.sales_start_time,
        "sales_end_time": event.sales_end_time,
        "total_seats": event.total_seats,
        "available_seats": event.available_seats,
    }
