"""PostgreSQL side of waiting lists: what a user holds of an event (the cap check of a join), and
the offers recorded as bookings (the offer follower's step 2).

Both work under the per-(user, event) advisory locks that the create path takes (LOCK_USERS of
`repository`), so an offer, a join's check and a new booking of the same user and event are
decided one at a time, by any replica. An offer is recorded once: its booking id is the key
(ON CONFLICT (id) DO NOTHING), and the ids already recorded are read under the locks first, so
a replayed page (a follower that died before its acknowledgement, or two followers on the same
page) inserts nothing and decides nothing again. An offer of an event known cancelled is
recorded CANCELLED; one recorded HELD while its event's cancellation is being listed is seen by
the event-cancellation follower before the event is done (sweep_repository.LOCK_EVENT).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from booking_service.domain import Booking, BookingStatus, CancelReason, RejectReason
from booking_service.repository import COLUMNS, HELD, LOCK_USERS, booking_of
from booking_service.sweep_repository import EVENT_LOCK
from booking_service.waitlist import WaitlistEntry, decide_offers

# Shared: offers of one event are recorded by many followers at once, while the event cannot
# be marked done by its cancellation (see sweep_repository.LOCK_EVENT).
LOCK_EVENTS_SHARED = f"""
SELECT pg_advisory_xact_lock_shared(k)
  FROM (SELECT DISTINCT {EVENT_LOCK.format(event="e")} AS k
          FROM unnest(%(event_ids)s::uuid[]) AS t(e)) AS keys
 ORDER BY k
"""

RECORDED = f"SELECT {COLUMNS} FROM bookings WHERE id = ANY(%(ids)s::uuid[])"

# The transaction's now(): what the offers' expire_time and their lag are measured from.
NOW = "SELECT now()"

CANCELLED = "SELECT event_id FROM cancelled_events WHERE event_id = ANY(%(event_ids)s::uuid[])"

# Offers as holds: HELD until `ttl` from now (the database's clock), or REJECTED / CANCELLED at
# once (expire_time now(): offers are holds, and a hold has an expire_time).
INSERT_OFFERS = f"""
INSERT INTO bookings (id, user_id, event_id, seats, status, reject_reason, cancel_reason, hold, expire_time,
                      waitlist_entry_id)
SELECT id, user_id, event_id, seats, status, reason, cancel, true,
       CASE WHEN status = 'HELD' THEN now() + %(ttl)s::interval ELSE now() END, entry_id
  FROM unnest(%(ids)s::uuid[], %(user_ids)s::text[], %(event_ids)s::uuid[], %(seats)s::integer[],
              %(statuses)s::text[], %(reasons)s::text[], %(cancels)s::text[], %(entry_ids)s::uuid[])
       AS t(id, user_id, event_id, seats, status, reason, cancel, entry_id)
ON CONFLICT (id) DO NOTHING
RETURNING {COLUMNS}
"""


@dataclass(frozen=True)
class RecordedOffers:
    # Every offer's booking, by booking id: recorded now, or found recorded before.
    bookings: dict[uuid.UUID, Booking]
    # The booking ids this call recorded (a replay records none).
    new: list[uuid.UUID]
    # The database's now() of the recording, for the lag of each new offer.
    now: datetime


def _pairs(user_ids: Sequence[str], event_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    return {"user_ids": list(user_ids), "event_ids": list(event_ids)}


_REASONS = {BookingStatus.REJECTED: RejectReason.USER_LIMIT_REACHED.value}
_CANCELS = {BookingStatus.CANCELLED: CancelReason.EVENT_CANCELLED.value}


class WaitlistRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def held_seats(self, user_id: str, event_id: uuid.UUID) -> int:
        """Seats the user holds of the event (PENDING, CONFIRMED, HELD...), read under the
        pair's advisory lock, so that a create of the same pair in flight is counted."""
        pairs = _pairs([user_id], [event_id])
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(LOCK_USERS, pairs)
            cursor = await conn.execute(HELD, pairs)
            row = await cursor.fetchone()
            return int(row[2]) if row else 0

    async def record_offers(self, offers: Sequence[WaitlistEntry], user_limit: int, ttl: timedelta) -> RecordedOffers:
        """Records each offer not recorded yet as a booking of its user, in one transaction
        (see `waitlist.decide_offers`); returns every offer's booking."""
        offers = [o for o in offers if o.booking_id is not None]
        ids = [o.booking_id for o in offers]
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(LOCK_USERS, _pairs([o.user_id for o in offers], [o.event_id for o in offers]))
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(RECORDED, {"ids": ids})
            found = {row["id"]: booking_of(row) for row in await cursor.fetchall()}
            fresh = [o for o in offers if o.booking_id not in found]
            now_cursor = await conn.execute(NOW)
            now_row = await now_cursor.fetchone()
            assert now_row is not None
            if not fresh:
                return RecordedOffers(found, [], now_row[0])
            pairs = _pairs([o.user_id for o in fresh], [o.event_id for o in fresh])
            # Before the cancelled events are read, and until the offers are committed.
            await conn.execute(LOCK_EVENTS_SHARED, pairs)
            await cursor.execute(HELD, pairs)
            held = {(row["user_id"], row["event_id"]): row["seats"] for row in await cursor.fetchall()}
            await cursor.execute(CANCELLED, pairs)
            cancelled = {row["event_id"] for row in await cursor.fetchall()}
            outcomes = decide_offers(fresh, held, cancelled, user_limit)
            params = {
                "ids": [o.booking_id for o in fresh],
                **pairs,
                "seats": [o.seats for o in fresh],
                "statuses": [s.value for s in outcomes],
                "reasons": [_REASONS.get(s) for s in outcomes],
                "cancels": [_CANCELS.get(s) for s in outcomes],
                "entry_ids": [o.id for o in fresh],
                "ttl": ttl,
            }
            await cursor.execute(INSERT_OFFERS, params)
            inserted = {row["id"]: booking_of(row) for row in await cursor.fetchall()}
        return RecordedOffers(found | inserted, list(inserted), now_row[0])
