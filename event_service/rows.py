"""Rows of the event service's tables as domain objects, and the statements that every
transaction on an event's seats starts with (shared by repository.py and
waitlist_repository.py)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from event_service.domain import Event, EventState, RefusalReason, ReleaseReason, Reservation, ReservationState, Turn

EVENT_COLUMNS = (
    "id, name, start_time, total_seats, available_seats, create_time, update_time,"
    " sales_start_time, sales_end_time, state, cancel_time, waitlist_size"
)
RESERVATION_COLUMNS = "booking_id, event_id, seats, state, create_time, release_time, refusal_reason, release_reason"

# Changes of an event's seats or of its waiting list decide under the event's row lock.
LOCK_EVENT = f"SELECT {EVENT_COLUMNS} FROM events WHERE id = %(id)s FOR UPDATE"

# The decision instant, in a statement of its own so that it is read once the locks are held
# (a clock in the locking statement's target list may be read before its wait).
SELECT_CLOCK = "SELECT clock_timestamp() AS now"


def event(row: dict[str, Any]) -> Event:
    return Event(
        id=row["id"],
        name=row["name"],
        start_time=row["start_time"],
        total_seats=row["total_seats"],
        available_seats=row["available_seats"],
        create_time=row["create_time"],
        update_time=row["update_time"],
        sales_start_time=row["sales_start_time"],
        sales_end_time=row["sales_end_time"],
        state=EventState(row["state"]),
        cancel_time=row["cancel_time"],
        waitlist_size=row["waitlist_size"],
    )


def reservation(row: dict[str, Any]) -> Reservation:
    return Reservation(
        booking_id=row["booking_id"],
        event_id=row["event_id"],
        seats=row["seats"],
        state=ReservationState(row["state"]),
        create_time=row["create_time"],
        release_time=row["release_time"],
        refusal_reason=RefusalReason(row["refusal_reason"]) if row["refusal_reason"] else None,
        release_reason=ReleaseReason(row["release_reason"]) if row["release_reason"] else None,
    )


def turn(row: dict[str, Any]) -> Turn:
    """The event facts of a row with the event's available_seats, waitlist_size and sales
    window: while people wait, no seat is free to a newcomer."""
    waiting = row["waitlist_size"] or 0
    available = 0 if waiting else row["available_seats"] or 0
    return Turn(available, row["sales_start_time"], row["sales_end_time"], waiting)


async def one(conn: AsyncConnection[Any], query: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(query, params)
    return await cursor.fetchone()
