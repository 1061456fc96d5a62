"""PostgreSQL storage of bookings.

The create path writes many bookings per statement: `insert_pending` records a whole batch of
requests PENDING in one INSERT, `settle` moves a whole batch to its outcome in one UPDATE (see
`BookingService._create_batch`). If such a statement fails for a reason that belongs to one
row (a constraint, or a deadlock between two batches that share a booking), it is redone row
by row, so only that row's request fails.

Status changes are conditional updates (`... WHERE status = ANY(from)`), so two actors
settling the same booking cannot both win: the loser gets no row back and re-reads. The
reconciler additionally works on a booking under its row lock (`locked_unsettled`), so a
request cannot confirm a booking whose seats the reconciler is releasing. Confirming a hold
and its expiry (`sweep_repository`) are such conditional updates too: exactly one moves it
out of HELD. Every time that decides (a hold's expire_time) is the database's clock.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from booking_service.domain import (
    Booking,
    BookingStatus,
    CancelReason,
    NewBooking,
    RejectReason,
    Settlement,
    within_user_limit,
)
from service_runtime.batching import Failed

log = logging.getLogger(__name__)

# Errors of one row (or of two concurrent batches meeting on a row): redo the batch row by row.
_ROW_ERRORS = (psycopg.errors.IntegrityError, psycopg.errors.DataError, psycopg.errors.DeadlockDetected)

_NAMES = (
    *("id", "user_id", "event_id", "seats", "status", "reject_reason", "idempotency_key", "request_hash"),
    *("create_time", "update_time", "hold", "expire_time", "cancel_reason", "reject_metadata"),
    "waitlist_entry_id",
)
COLUMNS = ", ".join(_NAMES)
# The same, of the table aliased `b`.
B_COLUMNS = ", ".join(f"b.{name}" for name in _NAMES)

# The per-user cap is decided under a transaction-scoped advisory lock per (user, event),
# taken in a fixed order so that concurrent batches (of any replica) cannot deadlock: then
# what each pair holds is read, the batch is decided in arrival order (`within_user_limit`),
# and the rows are written, before the locks go with the commit.
LOCK_USERS = """
SELECT pg_advisory_xact_lock(k)
  FROM (SELECT DISTINCT hashtextextended(u || '/' || e::text, 0) AS k
          FROM unnest(%(user_ids)s::text[], %(event_ids)s::uuid[]) AS t(u, e)) AS keys
 ORDER BY k
"""

HELD = """
SELECT user_id, event_id, sum(seats)::integer AS seats
  FROM bookings
 WHERE (user_id, event_id) IN (SELECT * FROM unnest(%(user_ids)s::text[], %(event_ids)s::uuid[]))
   AND status IN ('PENDING', 'CONFIRMED', 'CANCELLING', 'HELD', 'EXPIRING')
 GROUP BY user_id, event_id
"""

# New bookings, many in one statement: PENDING, or REJECTED (USER_LIMIT_REACHED) for those
# over the cap. A hold runs out HOLD_TTL_SECONDS after this statement, by the database's
# clock. A row whose (user, idempotency key) is taken (earlier, or by an earlier row of the
# same statement) is not inserted. Rows come back by id.
INSERT_NEW = f"""
INSERT INTO bookings (id, user_id, event_id, seats, status, reject_reason, idempotency_key, request_hash,
                      hold, expire_time)
SELECT id, user_id, event_id, seats, status, reason, idempotency_key, request_hash,
       hold, CASE WHEN hold THEN now() + %(hold_ttl)s::interval END
  FROM unnest(%(ids)s::uuid[], %(user_ids)s::text[], %(event_ids)s::uuid[], %(seats)s::integer[],
              %(statuses)s::text[], %(reasons)s::text[], %(keys)s::text[], %(hashes)s::bytea[],
              %(holds)s::boolean[])
       AS t(id, user_id, event_id, seats, status, reason, idempotency_key, request_hash, hold)
ON CONFLICT (user_id, idempotency_key) DO NOTHING
RETURNING {COLUMNS}
"""

# Many PENDING bookings settled in one statement, each only if it is still PENDING. A booking
# of an event listed in cancelled_events never becomes CONFIRMED or HELD: the event service
# gave its seats back when the event was cancelled, so it becomes CANCELLED (EVENT_CANCELLED).
# (An event listed after this statement's snapshot finds the booking PENDING or CONFIRMED in
# its final check, and sweeps it: see sweep_repository.)
SETTLE = f"""
UPDATE bookings AS b
   SET (status, cancel_reason) = (
           SELECT CASE WHEN d.event_cancelled THEN 'CANCELLED' ELSE v.status END,
                  CASE WHEN d.event_cancelled THEN 'EVENT_CANCELLED' END
             FROM (SELECT v.status IN ('CONFIRMED', 'HELD') AND EXISTS (
                          SELECT FROM cancelled_events AS c WHERE c.event_id = b.event_id)
                       AS event_cancelled) AS d),
       reject_reason = v.reason, reject_metadata = v.metadata::jsonb, update_time = now(), lease_until = NULL
  FROM unnest(%(ids)s::uuid[], %(statuses)s::text[], %(reasons)s::text[], %(metadata)s::text[])
       AS v(id, status, reason, metadata)
 WHERE b.id = v.id AND b.status = 'PENDING'
RETURNING {B_COLUMNS}
"""

# A hold confirmed: only while HELD, before its expire_time and while its event is not known
# cancelled. The hold sweeper's UPDATE also requires HELD, and both lock the row: exactly one
# of them moves it.
CONFIRM = f"""
UPDATE bookings AS b
   SET status = 'CONFIRMED', update_time = now()
 WHERE id = %(id)s AND status = 'HELD' AND expire_time > now()
   AND NOT EXISTS (SELECT FROM cancelled_events AS c WHERE c.event_id = b.event_id)
RETURNING {COLUMNS}
"""

# Why a confirm moved nothing: the booking as it is, with the facts the confirm decided on.
CONFIRM_STATE = f"""
SELECT {COLUMNS}, coalesce(expire_time <= now(), false) AS expired,
       EXISTS (SELECT FROM cancelled_events AS c WHERE c.event_id = b.event_id) AS event_cancelled
  FROM bookings AS b WHERE id = %(id)s
"""

SELECT_BY_ID = f"SELECT {COLUMNS} FROM bookings WHERE id = %(id)s"

SELECT_BY_KEYS = f"""
SELECT {COLUMNS} FROM bookings
 WHERE (user_id, idempotency_key) IN (SELECT * FROM unnest(%(user_ids)s::text[], %(keys)s::text[]))
"""

TRANSITION = f"""
UPDATE bookings
   SET status = %(to)s, reject_reason = %(reason)s, update_time = now(), lease_until = NULL
 WHERE id = %(id)s AND status = ANY(%(from)s)
RETURNING {COLUMNS}
"""

SELECT_USER_FIRST = f"""
SELECT {COLUMNS} FROM bookings WHERE user_id = %(user_id)s
 ORDER BY create_time DESC, id DESC LIMIT %(limit)s
"""

SELECT_USER_AFTER = f"""
SELECT {COLUMNS} FROM bookings
 WHERE user_id = %(user_id)s AND (create_time, id) < (%(after_time)s, %(after_id)s)
 ORDER BY create_time DESC, id DESC LIMIT %(limit)s
"""

# Unsettled bookings older than `min_age`, oldest first, skipping those another replica is
# working on (leased, or row-locked right now); each returned booking is leased to the caller.
LEASE_UNSETTLED = """
UPDATE bookings SET lease_until = now() + %(lease)s
 WHERE id IN (
     SELECT id FROM bookings
      WHERE status IN ('PENDING', 'CANCELLING', 'EXPIRING')
        AND update_time < now() - %(min_age)s
        AND (lease_until IS NULL OR lease_until < now())
      ORDER BY update_time
      LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED)
RETURNING id
"""

LOCK_UNSETTLED = f"""
SELECT {COLUMNS} FROM bookings
 WHERE id = %(id)s AND status IN ('PENDING', 'CANCELLING', 'EXPIRING')
   FOR UPDATE SKIP LOCKED
"""


def booking_of(row: dict[str, Any]) -> Booking:
    return Booking(
        id=row["id"],
        user_id=row["user_id"],
        event_id=row["event_id"],
        seats=row["seats"],
        status=BookingStatus(row["status"]),
        reject_reason=RejectReason(row["reject_reason"]) if row["reject_reason"] else None,
        idempotency_key=row["idempotency_key"],
        request_hash=bytes(row["request_hash"]) if row["request_hash"] is not None else None,
        create_time=row["create_time"],
        update_time=row["update_time"],
        hold=row["hold"],
        expire_time=row["expire_time"],
        cancel_reason=CancelReason(row["cancel_reason"]) if row["cancel_reason"] else None,
        reject_metadata=row["reject_metadata"],
        waitlist_entry_id=row["waitlist_entry_id"],
    )


async def _one(conn: AsyncConnection[Any], query: str, params: dict[str, Any]) -> Booking | None:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(query, params)
    row = await cursor.fetchone()
    return booking_of(row) if row else None


def _insert_params(news: Sequence[NewBooking], allowed: Sequence[bool]) -> dict[str, Any]:
    refused = RejectReason.USER_LIMIT_REACHED.value
    return {
        "ids": [n.id for n in news],
        "user_ids": [n.user_id for n in news],
        "event_ids": [n.event_id for n in news],
        "seats": [n.seats for n in news],
        "statuses": [BookingStatus.PENDING.value if ok else BookingStatus.REJECTED.value for ok in allowed],
        "reasons": [None if ok else refused for ok in allowed],
        "keys": [n.idempotency_key for n in news],
        "hashes": [n.request_hash for n in news],
        "holds": [n.hold for n in news],
    }


def _settle_params(settlements: Sequence[Settlement]) -> dict[str, Any]:
    return {
        "ids": [s.booking_id for s in settlements],
        "statuses": [s.status.value for s in settlements],
        "reasons": [s.reason.value if s.reason else None for s in settlements],
        "metadata": [json.dumps(dict(s.metadata)) if s.metadata else None for s in settlements],
    }


def _transition_params(
    booking_id: uuid.UUID, frm: Sequence[BookingStatus], to: BookingStatus, reason: RejectReason | None
) -> dict[str, Any]:
    return {
        "id": booking_id,
        "from": [s.value for s in frm],
        "to": to.value,
        "reason": reason.value if reason else None,
    }


class LockedBooking:
    """A booking held under its row lock until the enclosing `locked_unsettled` block ends."""

    def __init__(self, conn: AsyncConnection[Any], booking: Booking) -> None:
        self._conn = conn
        self.booking = booking

    async def transition(self, to: BookingStatus, reason: RejectReason | None = None) -> Booking:
        params = _transition_params(self.booking.id, [self.booking.status], to, reason)
        updated = await _one(self._conn, TRANSITION, params)
        assert updated is not None, "the row is locked: its status cannot have changed"
        self.booking = updated
        return updated

    async def settle(self, settlement: Settlement) -> Booking:
        """Settles the PENDING booking as `settle` does (a cancelled event's booking included)."""
        updated = await _one(self._conn, SETTLE, _settle_params([settlement]))
        assert updated is not None, "the row is locked: it is still PENDING"
        self.booking = updated
        return updated


class BookingRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def insert_pending(
        self, news: Sequence[NewBooking], user_limit: int, hold_ttl: timedelta = timedelta(minutes=10)
    ) -> list[Booking | Failed | None]:
        """Records the requests, in one transaction: PENDING, or REJECTED (USER_LIMIT_REACHED)
        when it would take its user past `user_limit` seats of the event (holds count). A hold
        gets its expire_time, `hold_ttl` from now. Per request, in order: its new booking,
        None when its user's idempotency key is taken, or `Failed` when its own row was
        refused."""
        try:
            inserted = await self._insert(news, user_limit, hold_ttl)
        except _ROW_ERRORS as error:
            if len(news) == 1:
                return [Failed(error)]
            log.warning("batch insert of %d redone row by row: %r", len(news), error)
            return [(await self.insert_pending([new], user_limit, hold_ttl))[0] for new in news]
        return [inserted.get(new.id) for new in news]

    async def _insert(
        self, news: Sequence[NewBooking], user_limit: int, hold_ttl: timedelta
    ) -> dict[uuid.UUID, Booking]:
        pairs = {"user_ids": [n.user_id for n in news], "event_ids": [n.event_id for n in news]}
        # Pipelined: BEGIN, the locks and the read travel together, then the INSERT and COMMIT.
        async with self._pool.connection() as conn, conn.pipeline(), conn.transaction():
            await conn.execute(LOCK_USERS, pairs)
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(HELD, pairs)
            held = {(row["user_id"], row["event_id"]): row["seats"] for row in await cursor.fetchall()}
            allowed = within_user_limit(held, news, user_limit)
            await cursor.execute(INSERT_NEW, _insert_params(news, allowed) | {"hold_ttl": hold_ttl})
            return {row["id"]: booking_of(row) for row in await cursor.fetchall()}

    async def settle(self, settlements: Sequence[Settlement]) -> dict[uuid.UUID, Booking]:
        """Moves each booking to its outcome if it is still PENDING; returns those it moved
        (a booking id twice in `settlements` is moved once). A row refused on its own is left
        PENDING, for the reconciler."""
        try:
            return await self._many(SETTLE, _settle_params(settlements))
        except _ROW_ERRORS as error:
            if len(settlements) == 1:
                log.warning("settlement of booking %s failed: %r", settlements[0].booking_id, error)
                return {}
            log.warning("batch settlement of %d redone row by row: %r", len(settlements), error)
            settled: dict[uuid.UUID, Booking] = {}
            for settlement in settlements:
                settled |= await self.settle([settlement])
            return settled

    async def _many(self, query: str, params: dict[str, Any]) -> dict[uuid.UUID, Booking]:
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(query, params)
            return {row["id"]: booking_of(row) for row in await cursor.fetchall()}

    async def get(self, booking_id: uuid.UUID) -> Booking | None:
        async with self._pool.connection() as conn:
            return await _one(conn, SELECT_BY_ID, {"id": booking_id})

    async def confirm(self, booking_id: uuid.UUID) -> tuple[Booking | None, bool, bool]:
        """Confirms the hold if it is HELD, unexpired and of an event not known cancelled:
        (the CONFIRMED booking, False, False). Else (the booking as it is, or None, whether
        its hold has run out, whether its event is known cancelled)."""
        async with self._pool.connection() as conn:
            if (confirmed := await _one(conn, CONFIRM, {"id": booking_id})) is not None:
                return confirmed, False, False
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(CONFIRM_STATE, {"id": booking_id})
            row = await cursor.fetchone()
        if row is None:
            return None, False, False
        return booking_of(row), bool(row["expired"]), bool(row["event_cancelled"])

    async def get_by_keys(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], Booking]:
        """The bookings of these (user id, idempotency key) pairs, by pair."""
        params = {"user_ids": [user for user, _ in keys], "keys": [key for _, key in keys]}
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(SELECT_BY_KEYS, params)
            return {(row["user_id"], row["idempotency_key"]): booking_of(row) for row in await cursor.fetchall()}

    async def transition(
        self,
        booking_id: uuid.UUID,
        frm: Sequence[BookingStatus],
        to: BookingStatus,
        reason: RejectReason | None = None,
    ) -> Booking | None:
        """Moves the booking to `to` if its status is one of `frm`; None if it was not."""
        async with self._pool.connection() as conn:
            return await _one(conn, TRANSITION, _transition_params(booking_id, frm, to, reason))

    async def list_for_user(self, user_id: str, limit: int, after: tuple[datetime, uuid.UUID] | None) -> list[Booking]:
        if after is None:
            query, params = SELECT_USER_FIRST, {"user_id": user_id, "limit": limit}
        else:
            query = SELECT_USER_AFTER
            params = {"user_id": user_id, "limit": limit, "after_time": after[0], "after_id": after[1]}
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(query, params)
            return [booking_of(row) for row in await cursor.fetchall()]

    async def lease_unsettled(self, min_age: timedelta, lease: timedelta, limit: int) -> list[uuid.UUID]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(LEASE_UNSETTLED, {"min_age": min_age, "lease": lease, "limit": limit})
            return [row[0] for row in await cursor.fetchall()]

    @asynccontextmanager
    async def locked_unsettled(self, booking_id: uuid.UUID) -> AsyncIterator[LockedBooking | None]:
        """The booking under its row lock if it is still unsettled and nobody else holds it."""
        async with self._pool.connection() as conn, conn.transaction():
            booking = await _one(conn, LOCK_UNSETTLED, {"id": booking_id})
            yield LockedBooking(conn, booking) if booking else None
