"""PostgreSQL storage of waiting lists, and the offer step.

The offer step (`offer_seats`) runs inside every transaction that gives seats back or changes
what fits: a release and an update of the event (repository.py) and a join (here), under the
event's row lock. It reads the event, the decision instant (clock_timestamp(), after the lock)
and the WAITING entries that could fit, in one round trip; chooses the offers in Python
(`waitlist.choose_offers`: first fit in join order); and writes them in one statement: a
RESERVED reservation per offer, under a new booking id, the entries OFFERED, and the event's
seats and waitlist_size. An offer therefore exists exactly when the seats it holds were taken,
and a crash at any point leaves both or neither.

Every instant written under the event's row lock (create_time, update_time, offer_time) is
read from the clock after the lock: the order of the instants is the order of the decisions,
from which the audit checks the order of the offers.

Lock order: like an update of the event, a join and a leave lock the event's row and then
write its entries; the offer step, in whichever transaction, holds the event's row already.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from event_service import rows
from event_service.domain import Event, EventNotFound
from event_service.waitlist import (
    CurrentEntry,
    Joined,
    JoinRequest,
    Left,
    WaitlistEntry,
    WaitlistEntryNotFound,
    WaitlistState,
    choose_offers,
    decide_join,
    offers_open,
)

# Called with the offers each transaction made, once it committed (metrics).
OnOffers = Callable[[list[WaitlistEntry]], None]

_ENTRY_COLUMNS = (
    "w.id, w.event_id, w.user_id, w.seats, w.state, w.seq, w.create_time, w.update_time, w.offer_time, w.booking_id"
)
# 1 + the WAITING entries of the event joined earlier (the waitlist_queue index), for a
# WAITING entry; 0 otherwise.
_POSITION = """CASE WHEN w.state = 'WAITING' THEN 1 + (
        SELECT count(*) FROM waitlist_entries o
         WHERE o.event_id = w.event_id AND o.state = 'WAITING' AND o.seq < w.seq)
       ELSE 0 END AS position"""

# The WAITING entries, in join order after seq `after`, that could take some of `free` seats
# (unset: the event's free seats): nothing bigger can fit, and a page of `free` entries holds at
# least one that gets seats (the first fits), so the offer step reads at most a few pages.
SELECT_CANDIDATES = f"""
WITH free AS (
    SELECT coalesce(%(free)s::integer, (SELECT available_seats FROM events WHERE id = %(event_id)s)) AS seats
)
SELECT {_ENTRY_COLUMNS}, 0 AS position FROM waitlist_entries w
 WHERE w.event_id = %(event_id)s AND w.state = 'WAITING' AND w.seq > %(after)s
   AND w.seats <= (SELECT seats FROM free)
 ORDER BY w.seq
 LIMIT (SELECT seats FROM free)
"""

# The offers chosen, in one statement: their reservations, the entries, the event's counts.
WRITE_OFFERS = f"""
WITH chosen AS (
    SELECT * FROM unnest(%(entry_ids)s::uuid[], %(booking_ids)s::uuid[], %(seats)s::integer[])
                  AS c(entry_id, booking_id, seats)
), reserved AS (
    INSERT INTO reservations (booking_id, event_id, seats, state, create_time)
    SELECT booking_id, %(event_id)s, seats, 'RESERVED', %(now)s FROM chosen
), counted AS (
    UPDATE events
       SET available_seats = available_seats - (SELECT sum(seats) FROM chosen),
           waitlist_size = waitlist_size - (SELECT count(*) FROM chosen), update_time = now()
     WHERE id = %(event_id)s
)
UPDATE waitlist_entries AS w
   SET state = 'OFFERED', booking_id = c.booking_id, offer_time = %(now)s, update_time = %(now)s
  FROM chosen AS c
 WHERE w.id = c.entry_id AND w.state = 'WAITING'
RETURNING {_ENTRY_COLUMNS}, 0 AS position
"""

# A user's latest entry on an event's list, and whether its offer still holds the seats.
SELECT_CURRENT_ENTRY = f"""
SELECT {_ENTRY_COLUMNS}, {_POSITION}, coalesce(r.state = 'RESERVED', false) AS offer_reserved
  FROM waitlist_entries w LEFT JOIN reservations r ON r.booking_id = w.booking_id
 WHERE w.event_id = %(event_id)s AND w.user_id = %(user_id)s
 ORDER BY w.seq DESC
 LIMIT 1
"""

SELECT_ENTRY = f"SELECT {_ENTRY_COLUMNS}, {_POSITION} FROM waitlist_entries w WHERE w.id = %(id)s"

INSERT_ENTRY = """
WITH entry AS (
    INSERT INTO waitlist_entries (id, event_id, user_id, seats, state, create_time, update_time)
    VALUES (%(id)s, %(event_id)s, %(user_id)s, %(seats)s, 'WAITING', %(now)s, %(now)s)
)
UPDATE events SET waitlist_size = waitlist_size + 1, update_time = now() WHERE id = %(event_id)s
"""

LEAVE = f"""
WITH left_entry AS (
    UPDATE waitlist_entries SET state = 'LEFT', update_time = %(now)s
     WHERE id = %(id)s AND state = 'WAITING'
 RETURNING *
), counted AS (
    UPDATE events SET waitlist_size = waitlist_size - (SELECT count(*) FROM left_entry), update_time = now()
     WHERE id = %(event_id)s
)
SELECT {_ENTRY_COLUMNS}, 0 AS position FROM left_entry w
"""

# A user's entries, newest first, before the page position (a seq).
SELECT_USER_ENTRIES = f"""
SELECT {_ENTRY_COLUMNS}, {_POSITION} FROM waitlist_entries w
 WHERE w.user_id = %(user_id)s AND w.seq < coalesce(%(before)s::bigint, 9223372036854775807)
 ORDER BY w.seq DESC
 LIMIT %(limit)s
"""

# An event's entries in join order, after the page position (a seq).
SELECT_EVENT_ENTRIES = f"""
SELECT {_ENTRY_COLUMNS}, {_POSITION} FROM waitlist_entries w
 WHERE w.event_id = %(event_id)s AND w.seq > coalesce(%(after)s::bigint, 0)
 ORDER BY w.seq
 LIMIT %(limit)s
"""

EVENT_EXISTS = "SELECT EXISTS (SELECT FROM events WHERE id = %(id)s) AS found"

# Offers the booking service has not recorded yet, oldest first (waitlist_unacknowledged).
SELECT_OFFERS = f"""
SELECT {_ENTRY_COLUMNS}, 0 AS position FROM waitlist_entries w
 WHERE w.state = 'OFFERED' AND w.acknowledge_time IS NULL
 ORDER BY w.offer_time, w.id
 LIMIT %(limit)s
"""

ACKNOWLEDGE = """
UPDATE waitlist_entries SET acknowledge_time = now()
 WHERE booking_id = ANY(%(booking_ids)s::uuid[]) AND state = 'OFFERED' AND acknowledge_time IS NULL
"""


def entry(row: dict[str, Any]) -> WaitlistEntry:
    return WaitlistEntry(
        id=row["id"],
        event_id=row["event_id"],
        user_id=row["user_id"],
        seats=row["seats"],
        state=WaitlistState(row["state"]),
        seq=row["seq"],
        create_time=row["create_time"],
        update_time=row["update_time"],
        position=row["position"],
        offer_time=row["offer_time"],
        booking_id=row["booking_id"],
    )


async def offer_seats(conn: AsyncConnection[Any], event_id: uuid.UUID) -> list[WaitlistEntry]:
    """The offer step, inside the caller's transaction, which holds the event's row lock (or
    takes it here): offers the event's free seats to its WAITING entries, first fit in join
    order, unless the event is cancelled or its sales have ended. Returns the offers made."""
    async with conn.pipeline():
        locked = conn.cursor(row_factory=dict_row)
        await locked.execute(rows.LOCK_EVENT, {"id": event_id})
        clock = conn.cursor(row_factory=dict_row)
        await clock.execute(rows.SELECT_CLOCK)
        candidates = conn.cursor(row_factory=dict_row)
        await candidates.execute(SELECT_CANDIDATES, {"event_id": event_id, "free": None, "after": 0})
        event_row = await locked.fetchone()
        clock_row = await clock.fetchone()
        page = [entry(row) for row in await candidates.fetchall()]
    if event_row is None or not page:
        return []
    assert clock_row is not None
    event, now = rows.event(event_row), clock_row["now"]
    if not offers_open(event.sales, now):
        return []
    free, asked, chosen = event.available_seats, event.available_seats, list[WaitlistEntry]()
    while True:
        picked = choose_offers(free, page)
        chosen += picked
        free -= sum(e.seats for e in picked)
        if free == 0 or len(page) < asked:
            break
        # A full page: entries after it may fit what is left.
        asked = free
        await candidates.execute(SELECT_CANDIDATES, {"event_id": event_id, "free": free, "after": page[-1].seq})
        page = [entry(row) for row in await candidates.fetchall()]
    if not chosen:
        return []
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        WRITE_OFFERS,
        {
            "event_id": event_id,
            "entry_ids": [e.id for e in chosen],
            "booking_ids": [uuid.uuid4() for _ in chosen],
            "seats": [e.seats for e in chosen],
            "now": now,
        },
    )
    offered = [entry(row) for row in await cursor.fetchall()]
    assert len(offered) == len(chosen), "the chosen entries are WAITING under the event's row lock"
    return sorted(offered, key=lambda e: e.seq)


class WaitlistRepository:
    def __init__(self, pool: AsyncConnectionPool, on_offers: OnOffers | None = None) -> None:
        self._pool = pool
        self._on_offers = on_offers or (lambda offers: None)

    async def join(self, request: JoinRequest) -> Joined:
        """Puts the user on the event's list (or returns the entry they have, see
        `waitlist.decide_join`) and runs the offer step, in one transaction under the event's
        row lock. EventNotFound, EventCancelled, SalesNotStarted, SalesEnded, SeatsAvailable."""
        params = {"id": request.event_id, "event_id": request.event_id, "user_id": request.user_id}
        async with self._pool.connection() as conn, conn.transaction():
            event, now, current = await self._lock(conn, params)
            existing = decide_join(event, request, current, now)
            if existing is not None:
                return Joined(existing, created=False)
            entry_id = uuid.uuid4()
            # The insert travels with the offer step's reads (one round trip).
            async with conn.pipeline():
                await conn.execute(INSERT_ENTRY, {**params, "id": entry_id, "seats": request.seats, "now": now})
                offers = await offer_seats(conn, request.event_id)
            row = await rows.one(conn, SELECT_ENTRY, {"id": entry_id})
        assert row is not None
        self._on_offers(offers)
        return Joined(entry(row), created=True)

    async def leave(self, event_id: uuid.UUID, user_id: str) -> Left:
        """Takes the user's WAITING entry off the list (LEFT), under the event's row lock; an
        entry in another state is returned as it is. No offer step: leaving frees no seat,
        and the entries behind were already weighed against the same free seats.
        EventNotFound, WaitlistEntryNotFound."""
        params = {"id": event_id, "event_id": event_id, "user_id": user_id}
        async with self._pool.connection() as conn, conn.transaction():
            _, now, current = await self._lock(conn, params)
            if current is None:
                raise WaitlistEntryNotFound(event_id, user_id)
            if current.entry.state is not WaitlistState.WAITING:
                return Left(current.entry, left_now=False)
            row = await rows.one(conn, LEAVE, {"id": current.entry.id, "event_id": event_id, "now": now})
        assert row is not None
        return Left(entry(row), left_now=True)

    async def _lock(
        self, conn: AsyncConnection[Any], params: dict[str, Any]
    ) -> tuple[Event, datetime, CurrentEntry | None]:
        """Locks the event's row and reads, after the lock, the clock and the user's latest
        entry, in one round trip. EventNotFound."""
        async with conn.pipeline():
            locked = conn.cursor(row_factory=dict_row)
            await locked.execute(rows.LOCK_EVENT, params)
            clock = conn.cursor(row_factory=dict_row)
            await clock.execute(rows.SELECT_CLOCK)
            current = conn.cursor(row_factory=dict_row)
            await current.execute(SELECT_CURRENT_ENTRY, params)
            event_row, clock_row, current_row = (
                await locked.fetchone(),
                await clock.fetchone(),
                await current.fetchone(),
            )
        if event_row is None:
            raise EventNotFound(params["event_id"])
        assert clock_row is not None
        found = CurrentEntry(entry(current_row), current_row["offer_reserved"]) if current_row else None
        return rows.event(event_row), clock_row["now"], found

    async def list_for_user(self, user_id: str, limit: int, before: int | None) -> list[WaitlistEntry]:
        """Up to `limit` of the user's entries, newest first, joined before the `before` seq."""
        return await self._select(SELECT_USER_ENTRIES, {"user_id": user_id, "limit": limit, "before": before})

    async def list_for_event(self, event_id: uuid.UUID, limit: int, after: int | None) -> list[WaitlistEntry] | None:
        """Up to `limit` of the event's entries in join order, after the `after` seq; None when
        the event does not exist."""
        async with self._pool.connection() as conn:
            found = await rows.one(conn, EVENT_EXISTS, {"id": event_id})
            assert found is not None
            if not found["found"]:
                return None
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(SELECT_EVENT_ENTRIES, {"event_id": event_id, "limit": limit, "after": after})
            return [entry(row) for row in await cursor.fetchall()]

    async def list_offers(self, limit: int) -> list[WaitlistEntry]:
        """Up to `limit` offers the booking service has not acknowledged, oldest first."""
        return await self._select(SELECT_OFFERS, {"limit": limit})

    async def acknowledge(self, booking_ids: Sequence[uuid.UUID]) -> int:
        """Marks the offers of these booking ids as recorded; how many this call marked."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(ACKNOWLEDGE, {"booking_ids": list(booking_ids)})
            return cursor.rowcount

    async def _select(self, query: str, params: dict[str, Any]) -> list[WaitlistEntry]:
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(query, params)
            return [entry(row) for row in await cursor.fetchall()]
