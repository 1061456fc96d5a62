"""PostgreSQL storage of events and reservations.

Seats change in two ways, each atomic: `reserve_batch`, the path every reservation takes, is
one transaction that locks each of its events' rows once (in id order), decides the batch in
Python (`domain.allocate`) and writes every seat count and record in one statement; `reserve`
and `release` are a single statement each (`reserve` is the batch's fallback when a booking id
of the batch is recorded concurrently). The `reservations` row of a booking id is the record
of truth: every path ends by returning what is recorded, which is what makes replays safe.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, errors
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from event_service.domain import Event, NewEvent, Reservation, ReservationState, SeatRequest, allocate

_EVENT_COLUMNS = "id, name, start_time, total_seats, available_seats, create_time, update_time"
_RESERVATION_COLUMNS = "booking_id, event_id, seats, state, create_time, release_time"

INSERT_EVENT = f"""
INSERT INTO events (id, name, start_time, total_seats, available_seats)
VALUES (%(id)s, %(name)s, %(start_time)s, %(total_seats)s, %(total_seats)s)
RETURNING {_EVENT_COLUMNS}
"""

SELECT_EVENT = f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = %(id)s"

SELECT_FIRST_EVENTS = f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY start_time, id LIMIT %(limit)s"

SELECT_EVENTS_AFTER = f"""
SELECT {_EVENT_COLUMNS} FROM events
 WHERE (start_time, id) > (%(after_time)s, %(after_id)s)
 ORDER BY start_time, id
 LIMIT %(limit)s
"""

COUNT_EVENTS = "SELECT count(*) AS n FROM events"

# Takes the seats if enough are left and records the outcome, in one statement: the
# conditional UPDATE takes the event's row lock and re-checks availability after waiting for
# it, so concurrent callers can never take more than there is. A booking id that already
# has a record makes the INSERT fail (unique violation), which undoes the UPDATE too. No row
# comes back when the event does not exist.
RESERVE = f"""
WITH event AS (
    SELECT id, available_seats FROM events WHERE id = %(event_id)s
), taken AS (
    UPDATE events
       SET available_seats = available_seats - %(seats)s, update_time = now()
     WHERE id = %(event_id)s AND available_seats >= %(seats)s
 RETURNING available_seats
)
INSERT INTO reservations (booking_id, event_id, seats, state)
SELECT %(booking_id)s, event.id, %(seats)s,
       CASE WHEN EXISTS (SELECT FROM taken) THEN 'RESERVED' ELSE 'SOLD_OUT' END
  FROM event
RETURNING {_RESERVATION_COLUMNS},
          coalesce((SELECT available_seats FROM taken), (SELECT available_seats FROM event)) AS available_seats
"""

# Gives a RESERVED booking's seats back (the state change and the seat count in one
# statement, so exactly once), or, when the booking id has no record at all, records it as
# RELEASED so that a late RESERVE for it fails. Returns no row when a record exists that is
# not RESERVED (already released, sold out) or appeared after this statement's snapshot.
RELEASE = f"""
WITH released AS (
    UPDATE reservations
       SET state = 'RELEASED', release_time = now()
     WHERE booking_id = %(booking_id)s AND state = 'RESERVED'
 RETURNING {_RESERVATION_COLUMNS}
), restored AS (
    UPDATE events
       SET available_seats = events.available_seats + released.seats, update_time = now()
      FROM released
     WHERE events.id = released.event_id
), marker AS (
    INSERT INTO reservations (booking_id, event_id, seats, state, release_time)
    SELECT %(booking_id)s, NULL, 0, 'RELEASED', now()
     WHERE NOT EXISTS (SELECT FROM released)
    ON CONFLICT (booking_id) DO NOTHING
 RETURNING {_RESERVATION_COLUMNS}
)
SELECT * FROM released UNION ALL SELECT * FROM marker
"""

# A batch of reservations (see `reserve_batch`): lock the rows of the batch's events, in id
# order so that concurrent batches cannot deadlock...
LOCK_EVENTS_FOR_BATCH = """
SELECT id, available_seats FROM events WHERE id = ANY(%(event_ids)s::uuid[]) ORDER BY id FOR UPDATE
"""

# ...read what is already recorded for the batch's booking ids (same round trip)...
SELECT_RECORDED = """
SELECT booking_id, event_id, seats, state, create_time, release_time
  FROM reservations WHERE booking_id = ANY(%(booking_ids)s::uuid[])
"""

# ...then write every event's seat count and every new record in one statement.
WRITE_BATCH = """
WITH seats AS (
    UPDATE events AS e SET available_seats = v.available, update_time = now()
      FROM unnest(%(event_ids)s::uuid[], %(availables)s::integer[]) AS v(id, available)
     WHERE e.id = v.id AND e.available_seats <> v.available
)
INSERT INTO reservations (booking_id, event_id, seats, state)
SELECT booking_id, event_id, seats, state
  FROM unnest(%(booking_ids)s::uuid[], %(record_event_ids)s::uuid[], %(seats)s::integer[], %(states)s::text[])
       AS t(booking_id, event_id, seats, state)
RETURNING booking_id, create_time
"""

# The record of a booking id, with its event's seats left (for SOLD_OUT answers).
SELECT_RESERVATION = """
SELECT r.booking_id, r.event_id, r.seats, r.state, r.create_time, r.release_time, e.available_seats
  FROM reservations r LEFT JOIN events e ON e.id = r.event_id
 WHERE r.booking_id = %(booking_id)s
"""


def _event(row: dict[str, Any]) -> Event:
    return Event(
        id=row["id"],
        name=row["name"],
        start_time=row["start_time"],
        total_seats=row["total_seats"],
        available_seats=row["available_seats"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


def _reservation(row: dict[str, Any]) -> Reservation:
    return Reservation(
        booking_id=row["booking_id"],
        event_id=row["event_id"],
        seats=row["seats"],
        state=ReservationState(row["state"]),
        create_time=row["create_time"],
        release_time=row["release_time"],
    )


class ReleaseRaced(RuntimeError):
    """A booking id's record kept changing under ReleaseSeats (should not happen)."""


class EventRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def create_event(self, new: NewEvent) -> Event:
        async with self._pool.connection() as conn:
            row = await _one(conn, INSERT_EVENT, _new_event_params(new))
        assert row is not None
        return _event(row)

    async def get_event(self, event_id: uuid.UUID) -> Event | None:
        async with self._pool.connection() as conn:
            row = await _one(conn, SELECT_EVENT, {"id": event_id})
        return _event(row) if row else None

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
            rows = await cursor.fetchall()
            count = await _one(conn, COUNT_EVENTS, {})
        assert count is not None
        return [_event(r) for r in rows], int(count["n"])

    async def reserve(self, request: SeatRequest) -> tuple[Reservation, int] | None:
        """Records the outcome of taking the seats; returns (what is recorded for the booking
        id, the event's available seats), or None when the event does not exist. A record
        made earlier for the same booking id is returned as it is (nothing is taken)."""
        params = {"booking_id": request.booking_id, "event_id": request.event_id, "seats": request.seats}
        async with self._pool.connection() as conn:
            try:
                row = await _one(conn, RESERVE, params)
            except errors.UniqueViolation:
                row = await _one(conn, SELECT_RESERVATION, params)
                assert row is not None, "a unique violation means the record exists"
        if row is None:
            return None
        return _reservation(row), row["available_seats"] or 0

    async def reserve_batch(self, requests: list[SeatRequest]) -> list[tuple[Reservation, int] | None]:
        """Reserves a batch of requests, for any events, in one transaction, deciding each
        event's requests exactly as one-by-one calls of `reserve` in list order would
        (`domain.allocate`). Returns, per request, what is recorded for its booking id and the
        seats left at its turn, or None when its event does not exist.

        Each event's row is locked once for the whole batch, and the transaction costs two
        round trips and one commit, whatever the batch size. If a booking id of the batch is
        recorded concurrently by someone else (the INSERT's unique violation rolls everything
        back), the batch is redone one request at a time."""
        try:
            return await self._reserve_batch(requests)
        except errors.UniqueViolation:
            return [await self.reserve(request) for request in requests]

    async def _reserve_batch(self, requests: list[SeatRequest]) -> list[tuple[Reservation, int] | None]:
        by_event: dict[uuid.UUID, list[SeatRequest]] = {}
        for request in requests:
            by_event.setdefault(request.event_id, []).append(request)
        async with self._pool.connection() as conn, conn.pipeline(), conn.transaction():
            events = conn.cursor(row_factory=dict_row)
            await events.execute(LOCK_EVENTS_FOR_BATCH, {"event_ids": list(by_event)})
            recorded_rows = conn.cursor(row_factory=dict_row)
            await recorded_rows.execute(SELECT_RECORDED, {"booking_ids": [r.booking_id for r in requests]})
            available = {row["id"]: row["available_seats"] for row in await events.fetchall()}
            recorded = {row["booking_id"]: _reservation(row) for row in await recorded_rows.fetchall()}
            # A booking id asked for under two events of the batch counts for its first one;
            # for the other it is a replay (as one-by-one calls would have it).
            first_event: dict[uuid.UUID, uuid.UUID] = {}
            for request in requests:
                if request.event_id in available:
                    first_event.setdefault(request.booking_id, request.event_id)
            allocations = {
                event_id: allocate(
                    available[event_id],
                    batch,
                    recorded.keys() | {b for b, e in first_event.items() if e != event_id},
                )
                for event_id, batch in by_event.items()
                if event_id in available
            }
            new_records = {
                request.booking_id: (request, state)
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
                        "booking_ids": [r.booking_id for r, _ in records],
                        "record_event_ids": [r.event_id for r, _ in records],
                        "seats": [r.seats for r, _ in records],
                        "states": [state.value for _, state in records],
                    },
                )
                created = {row["booking_id"]: row["create_time"] for row in await events.fetchall()}
                for request, state in records:
                    recorded[request.booking_id] = Reservation(
                        request.booking_id, request.event_id, request.seats, state, created[request.booking_id], None
                    )
        results: list[tuple[Reservation, int] | None] = []
        for request in requests:
            allocation = allocations.get(request.event_id)
            if allocation is None:
                results.append(None)
            else:
                left = allocation.available_after.get(request.booking_id, allocation.available)
                results.append((recorded[request.booking_id], left))
        return results

    async def release(self, booking_id: uuid.UUID) -> Reservation:
        """Gives the booking's seats back (once), or records the booking id as released."""
        params = {"booking_id": booking_id}
        async with self._pool.connection() as conn:
            # Each round sees everything committed before it started; a record that appears
            # between our snapshot and our write is seen by the next round.
            for _ in range(5):
                row = await _one(conn, RELEASE, params)
                if row is not None:
                    return _reservation(row)
                row = await _one(conn, SELECT_RESERVATION, params)
                if row is not None and row["state"] != ReservationState.RESERVED.value:
                    return _reservation(row)
        raise ReleaseRaced(f"the record of booking {booking_id} kept changing during release")

    async def get_reservation(self, booking_id: uuid.UUID) -> tuple[Reservation, int] | None:
        async with self._pool.connection() as conn:
            row = await _one(conn, SELECT_RESERVATION, {"booking_id": booking_id})
        return (_reservation(row), row["available_seats"] or 0) if row else None


async def _one(conn: AsyncConnection[Any], query: str, params: dict[str, Any]) -> dict[str, Any] | None:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(query, params)
    return await cursor.fetchone()


def _new_event_params(new: NewEvent) -> dict[str, Any]:
    return {"id": new.id, "name": new.name, "start_time": new.start_time, "total_seats": new.total_seats}
