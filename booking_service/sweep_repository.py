"""PostgreSQL side of the booking service's two sweeps, both safe in every replica at once.

Hold expiry (`holds.HoldSweeper`): `start_expiring` moves due holds HELD -> EXPIRING in one
UPDATE over rows leased with FOR UPDATE SKIP LOCKED (two replicas never take the same hold,
and a hold being confirmed right now is skipped, then re-checked: exactly one of the confirm
and the expiry moves it out of HELD); `finish_expiring` moves those whose seats are back
EXPIRING -> EXPIRED.

Event cancellation (`event_cancellation.CancellationFollower`): the events the event service
reported cancelled are kept in cancelled_events; their CONFIRMED and HELD bookings are
cancelled in chunks (a process that dies between two chunks leaves the rest to whichever
replica looks next), and an event is done once no booking of it is PENDING, CONFIRMED or HELD
(nor a waiting-list offer of it being recorded: see LOCK_EVENT).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from psycopg_pool import AsyncConnectionPool

START_EXPIRING = """
UPDATE bookings AS b
   SET status = 'EXPIRING', update_time = now(), lease_until = NULL
  FROM (SELECT id FROM bookings
         WHERE status = 'HELD' AND expire_time <= now()
           AND event_id NOT IN (SELECT event_id FROM cancelled_events)
         ORDER BY expire_time
         LIMIT %(limit)s
           FOR UPDATE SKIP LOCKED) AS due
 WHERE b.id = due.id AND b.status = 'HELD'
RETURNING b.id, extract(epoch FROM now() - b.expire_time)::float8 AS lag
"""

FINISH_EXPIRING = """
UPDATE bookings SET status = 'EXPIRED', update_time = now(), lease_until = NULL
 WHERE id = ANY(%(ids)s::uuid[]) AND status = 'EXPIRING'
RETURNING id
"""

LATEST_CANCEL_TIME = "SELECT max(cancel_time) FROM cancelled_events"

RECORD_CANCELLED = """
INSERT INTO cancelled_events (event_id, cancel_time)
SELECT * FROM unnest(%(event_ids)s::uuid[], %(cancel_times)s::timestamptz[])
ON CONFLICT (event_id) DO NOTHING
"""

OPEN_CANCELLED = """
SELECT event_id FROM cancelled_events WHERE done_time IS NULL ORDER BY cancel_time, event_id
"""

# One chunk of an event's cancellation. Rows another transaction holds (a confirm, the
# reconciler, another replica's chunk) are skipped; the final check keeps the event open
# until they are swept too.
CANCEL_CHUNK = """
UPDATE bookings AS b
   SET status = 'CANCELLED', cancel_reason = 'EVENT_CANCELLED', update_time = now(), lease_until = NULL
  FROM (SELECT id FROM bookings
         WHERE event_id = %(event_id)s AND status IN ('CONFIRMED', 'HELD')
         LIMIT %(limit)s
           FOR UPDATE SKIP LOCKED) AS chunk
 WHERE b.id = chunk.id AND b.status IN ('CONFIRMED', 'HELD')
"""

# A waiting-list offer has no row before it is recorded, so a recording that read the event as
# not cancelled could commit a HELD offer just after the event was marked done (and a hold of a
# listed event never expires: it would stay HELD). Recording offers holds this lock of each
# offer's event shared (`waitlist_repository`), and marking an event done holds it exclusively:
# done is decided only once no recording that may have missed the listing is in flight.
EVENT_LOCK = "hashtextextended('cancelled-event/' || {event}::text, 0)"
LOCK_EVENT = f"SELECT pg_advisory_xact_lock({EVENT_LOCK.format(event='%(event_id)s::uuid')})"

# Done once nothing of the event may still hold seats by its booking: a settle that started
# before the event was listed is seen here PENDING (uncommitted) or CONFIRMED (committed),
# never missed, so the event stays open until a later chunk sweeps it.
FINISH_CANCELLED = """
UPDATE cancelled_events SET done_time = now()
 WHERE event_id = %(event_id)s AND done_time IS NULL
   AND NOT EXISTS (SELECT FROM bookings
                    WHERE event_id = %(event_id)s AND status IN ('PENDING', 'CONFIRMED', 'HELD'))
"""


class SweepRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def start_expiring(self, limit: int) -> list[tuple[uuid.UUID, float]]:
        """Up to `limit` holds past their expire_time, moved HELD -> EXPIRING, oldest first:
        (booking id, seconds since it ran out)."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(START_EXPIRING, {"limit": limit})
            return [(row[0], float(row[1])) for row in await cursor.fetchall()]

    async def finish_expiring(self, booking_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        """EXPIRING -> EXPIRED for those still EXPIRING; returns the ones moved."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(FINISH_EXPIRING, {"ids": list(booking_ids)})
            return [row[0] for row in await cursor.fetchall()]

    async def latest_cancel_time(self) -> datetime | None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(LATEST_CANCEL_TIME)
            row = await cursor.fetchone()
            return row[0] if row else None

    async def record_cancelled(self, events: Sequence[tuple[uuid.UUID, datetime]]) -> None:
        """Lists the events as cancelled (those listed already stay as they are)."""
        params = {"event_ids": [e for e, _ in events], "cancel_times": [t for _, t in events]}
        async with self._pool.connection() as conn:
            await conn.execute(RECORD_CANCELLED, params)

    async def open_cancelled(self) -> list[uuid.UUID]:
        """Listed events whose bookings may still need cancelling, the earliest cancelled first."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(OPEN_CANCELLED)
            return [row[0] for row in await cursor.fetchall()]

    async def cancel_chunk(self, event_id: uuid.UUID, limit: int) -> int:
        """Cancels up to `limit` CONFIRMED or HELD bookings of the event; returns how many."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(CANCEL_CHUNK, {"event_id": event_id, "limit": limit})
            return cursor.rowcount

    async def finish_cancelled(self, event_id: uuid.UUID) -> bool:
        """Marks the event done if no booking of it is PENDING, CONFIRMED or HELD any more."""
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(LOCK_EVENT, {"event_id": event_id})
            cursor = await conn.execute(FINISH_CANCELLED, {"event_id": event_id})
            return cursor.rowcount == 1
