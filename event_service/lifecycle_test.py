"""Sales windows, changing and cancelling events, against a real PostgreSQL: every decision is
made under the event's row lock at an instant of the database's clock, so races with the
opening instant, with seat removals and with cancellation all end exact."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from event_service.changes import EventValues, SeatsInUse, event_update
from event_service.domain import (
    Cancellation,
    Event,
    EventCancelled,
    EventState,
    Limits,
    NewEvent,
    RefusalReason,
    ReleaseReason,
    Reservation,
    ReservationState,
    SeatRequest,
    Turn,
)
from event_service.repository import EventRepository
from tools.audit.invariants import assert_seats_consistent

START = datetime(2027, 3, 1, 19, 30, tzinfo=UTC)
LIMITS = Limits(max_total_seats=100_000, max_seats_per_booking=10)
# A reservation path: the batch transaction, or the single RESERVE statement (its fallback).
Decided = tuple[Reservation, Turn] | None
Reserve = Callable[[EventRepository, SeatRequest], Coroutine[Any, Any, Decided]]


async def _batch_of_one(repo: EventRepository, request: SeatRequest) -> Decided:
    [result] = await repo.reserve_batch([request])
    return result


async def _single_statement(repo: EventRepository, request: SeatRequest) -> Decided:
    return await repo.reserve(request)


PATHS = [pytest.param(_batch_of_one, id="batch"), pytest.param(_single_statement, id="single_statement")]


@pytest.fixture
def repo(pool: AsyncConnectionPool) -> EventRepository:
    return EventRepository(pool)


def _db_now(dsn: str) -> datetime:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0].astimezone(UTC)  # type: ignore[no-any-return]


async def _event(
    repo: EventRepository, seats: int, sales_start: datetime | None = None, sales_end: datetime | None = None
) -> Event:
    return await repo.create_event(NewEvent(uuid.uuid4(), "Concert", START, seats, sales_start, sales_end))


async def _current(repo: EventRepository, event_id: uuid.UUID) -> Event:
    event = await repo.get_event(event_id)
    assert event is not None
    return event


def _records(dsn: str, event_id: uuid.UUID) -> list[tuple[str, int, datetime, str | None, str | None]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT state, seats, create_time, refusal_reason, release_reason FROM reservations WHERE event_id = %s",
            (event_id,),
        ).fetchall()


async def _update(repo: EventRepository, event_id: uuid.UUID, values: EventValues, *mask: str) -> Event | None:
    return await repo.update_event(event_id, event_update(values, list(mask), LIMITS))


# --- Sales windows -----------------------------------------------------------------------------


@pytest.mark.parametrize("reserve", PATHS)
async def test_before_the_sales_start_a_reservation_is_refused_and_its_replay_too(
    repo: EventRepository, dsn: str, reserve: Reserve
) -> None:
    opening = _db_now(dsn) + timedelta(hours=1)
    event = await _event(repo, 10, sales_start=opening)
    request = SeatRequest(uuid.uuid4(), event.id, 2)
    first = await reserve(repo, request)
    assert first is not None
    recorded, turn = first
    assert recorded.state is ReservationState.REFUSED
    assert recorded.refusal_reason is RefusalReason.SALES_NOT_STARTED
    assert turn.sales_start_time == opening
    again = await reserve(repo, request)
    assert again is not None and again[0] == recorded
    assert (await _current(repo, event.id)).available_seats == 10
    assert_seats_consistent(dsn)


@pytest.mark.parametrize("reserve", PATHS)
async def test_after_the_sales_end_a_reservation_is_refused(repo: EventRepository, dsn: str, reserve: Reserve) -> None:
    now = _db_now(dsn)
    event = await _event(repo, 10, sales_start=now - timedelta(hours=2), sales_end=now - timedelta(seconds=1))
    result = await reserve(repo, SeatRequest(uuid.uuid4(), event.id, 2))
    assert result is not None
    assert result[0].refusal_reason is RefusalReason.SALES_ENDED
    assert (await _current(repo, event.id)).available_seats == 10


@pytest.mark.parametrize("reserve", PATHS)
async def test_a_reservation_waiting_on_the_lock_past_the_opening_is_decided_after_it(
    repo: EventRepository, dsn: str, reserve: Reserve
) -> None:
    """The decision instant is read once the event's row is locked, not when the statement
    starts: a request sent before the opening that gets the lock after it sells."""
    opening = _db_now(dsn) + timedelta(milliseconds=400)
    event = await _event(repo, 10, sales_start=opening)
    with psycopg.connect(dsn) as blocker:
        blocker.execute("SELECT 1 FROM events WHERE id = %s FOR UPDATE", (event.id,))
        pending = asyncio.create_task(reserve(repo, SeatRequest(uuid.uuid4(), event.id, 1)))
        await asyncio.sleep(0.2)
        assert _db_now(dsn) < opening and not pending.done()
        await asyncio.sleep(max(0.0, (opening - _db_now(dsn)).total_seconds()) + 0.1)
        blocker.rollback()
    result = await pending
    assert result is not None
    assert result[0].state is ReservationState.RESERVED
    assert result[0].create_time >= opening
    assert_seats_consistent(dsn)


@pytest.mark.parametrize("reserve", PATHS)
async def test_a_reservation_waiting_on_the_lock_past_the_sales_end_is_refused(
    repo: EventRepository, dsn: str, reserve: Reserve
) -> None:
    closing = _db_now(dsn) + timedelta(milliseconds=300)
    event = await _event(repo, 10, sales_end=closing)
    with psycopg.connect(dsn) as blocker:
        blocker.execute("SELECT 1 FROM events WHERE id = %s FOR UPDATE", (event.id,))
        pending = asyncio.create_task(reserve(repo, SeatRequest(uuid.uuid4(), event.id, 1)))
        await asyncio.sleep(max(0.0, (closing - _db_now(dsn)).total_seconds()) + 0.1)
        blocker.rollback()
    result = await pending
    assert result is not None
    assert result[0].refusal_reason is RefusalReason.SALES_ENDED
    assert (await _current(repo, event.id)).available_seats == 10


async def test_batches_racing_the_opening_instant_refuse_everything_before_and_sell_the_seats_after(
    repo: EventRepository, dsn: str
) -> None:
    seats = 40
    opening = _db_now(dsn) + timedelta(milliseconds=500)
    event = await _event(repo, seats, sales_start=opening)

    async def client(n: int) -> None:
        # Each client sends small batches across the opening instant, without pause, until
        # it is told the seats are sold out (or, should that never come, for 10 seconds).
        deadline = opening + timedelta(seconds=10)
        while _db_now(dsn) < deadline:
            results = await repo.reserve_batch([SeatRequest(uuid.uuid4(), event.id, 1) for _ in range(1 + n % 3)])
            if any(r is not None and r[0].state is ReservationState.SOLD_OUT for r in results):
                return

    await asyncio.gather(*(client(n) for n in range(8)))
    records = _records(dsn, event.id)
    before = [r for r in records if r[2] < opening]
    after = [r for r in records if r[2] >= opening]
    assert before and after, "the run must straddle the opening"
    assert {(state, reason) for state, _, _, reason, _ in before} == {("REFUSED", "SALES_NOT_STARTED")}
    assert {state for state, *_ in after} <= {"RESERVED", "SOLD_OUT"}
    assert sum(n for state, n, *_ in after if state == "RESERVED") == seats
    assert (await _current(repo, event.id)).available_seats == 0
    assert_seats_consistent(dsn)


# --- Changing events -----------------------------------------------------------------------------


async def test_an_update_changes_the_named_fields_and_the_update_time(repo: EventRepository, dsn: str) -> None:
    event = await _event(repo, 10)
    opening = _db_now(dsn) + timedelta(days=1)
    changed = await _update(
        repo,
        event.id,
        EventValues(name="Renamed", sales_start_time=opening, total_seats=99),
        "name",
        "sales_start_time",
    )
    assert changed is not None
    assert (changed.name, changed.sales_start_time, changed.total_seats) == ("Renamed", opening, 10)
    assert changed.update_time > event.update_time
    assert await _current(repo, event.id) == changed


async def test_updating_an_unknown_event_returns_none(repo: EventRepository) -> None:
    assert await _update(repo, uuid.uuid4(), EventValues(name="x")) is None


async def test_seats_are_added_as_available_and_removed_down_to_those_taken(repo: EventRepository, dsn: str) -> None:
    event = await _event(repo, 10)
    await repo.reserve_batch([SeatRequest(uuid.uuid4(), event.id, 3) for _ in range(2)])
    grown = await _update(repo, event.id, EventValues(total_seats=20))
    assert grown is not None and (grown.total_seats, grown.available_seats) == (20, 14)
    with pytest.raises(SeatsInUse) as error:
        await _update(repo, event.id, EventValues(total_seats=5))
    assert error.value.metadata["taken_seats"] == "6"
    shrunk = await _update(repo, event.id, EventValues(total_seats=6))
    assert shrunk is not None and (shrunk.total_seats, shrunk.available_seats) == (6, 0)
    assert_seats_consistent(dsn)


async def test_seat_removals_racing_reservations_never_go_below_the_seats_taken(
    repo: EventRepository, dsn: str
) -> None:
    event = await _event(repo, 100)
    outcomes: list[str] = []

    async def remove(total: int) -> None:
        try:
            await _update(repo, event.id, EventValues(total_seats=total))
            outcomes.append("changed")
        except SeatsInUse as error:
            assert int(error.metadata["taken_seats"]) > total
            outcomes.append("refused")

    calls: list[Coroutine[Any, Any, object]] = [
        repo.reserve_batch([SeatRequest(uuid.uuid4(), event.id, 1)]) for _ in range(80)
    ]
    # A removal every 14 reservations, each asking for fewer seats than the one before.
    for n, total in enumerate((90, 70, 50, 40, 30, 20)):
        calls.insert(n * 15 + 7, remove(total))
    await asyncio.gather(*calls)
    assert len(outcomes) == 6 and "refused" in outcomes
    final = await _current(repo, event.id)
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(seats), 0) FROM reservations WHERE event_id = %s AND state = 'RESERVED'", (event.id,)
        ).fetchone()
    assert row is not None and final.total_seats == final.available_seats + row[0]
    assert 0 <= final.available_seats <= final.total_seats
    assert_seats_consistent(dsn)


async def test_a_cancelled_event_cannot_be_changed(repo: EventRepository) -> None:
    event = await _event(repo, 10)
    await repo.cancel_event(event.id)
    with pytest.raises(EventCancelled):
        await _update(repo, event.id, EventValues(name="Renamed"))


# --- Cancelling events ---------------------------------------------------------------------------


async def test_cancelling_releases_every_reserved_seat_once_and_refuses_later_reservations(
    repo: EventRepository, dsn: str
) -> None:
    event = await _event(repo, 200)
    reserved = [SeatRequest(uuid.uuid4(), event.id, 2) for _ in range(60)]
    await repo.reserve_batch(reserved)
    released_before = reserved[0].booking_id
    await repo.release(released_before)

    cancellation = await repo.cancel_event(event.id)
    assert cancellation is not None and cancellation.cancelled_now
    cancelled = cancellation.event
    assert cancelled.state is EventState.CANCELLED and cancelled.cancel_time is not None
    assert cancelled.available_seats == 200
    records = _records(dsn, event.id)
    assert {(state, reason) for state, _, _, _, reason in records} == {
        ("RELEASED", "EVENT_CANCELLED"),
        ("RELEASED", None),
    }
    assert sum(1 for *_, reason in records if reason == "EVENT_CANCELLED") == 59

    # Releasing a booking the cancellation released returns it as it is.
    again = await repo.release(reserved[1].booking_id)
    assert (again.state, again.release_reason) == (ReservationState.RELEASED, ReleaseReason.EVENT_CANCELLED)
    late = await repo.reserve_batch([SeatRequest(uuid.uuid4(), event.id, 1)])
    assert late[0] is not None and late[0][0].refusal_reason is RefusalReason.EVENT_CANCELLED
    assert (await _current(repo, event.id)).available_seats == 200
    assert_seats_consistent(dsn)


async def test_cancelling_twice_returns_the_cancelled_event_unchanged(repo: EventRepository) -> None:
    event = await _event(repo, 10)
    first = await repo.cancel_event(event.id)
    again = await repo.cancel_event(event.id)
    assert first is not None and again is not None
    assert (first.cancelled_now, again.cancelled_now) == (True, False)
    assert again.event == first.event
    assert await repo.cancel_event(uuid.uuid4()) is None


async def test_concurrent_cancellations_reservations_and_releases_give_every_seat_back_exactly_once(
    repo: EventRepository, dsn: str
) -> None:
    event = await _event(repo, 1000)
    held = [SeatRequest(uuid.uuid4(), event.id, 1) for _ in range(600)]
    await repo.reserve_batch(held)
    racing = [SeatRequest(uuid.uuid4(), event.id, 1) for _ in range(100)]
    results = await asyncio.gather(
        *(repo.reserve_batch([request]) for request in racing),
        *(repo.release(request.booking_id) for request in held[:100]),
        *(repo.cancel_event(event.id) for _ in range(5)),
    )
    cancels = [r for r in results[-5:] if isinstance(r, Cancellation)]
    assert len(cancels) == 5 and [c.cancelled_now for c in cancels].count(True) == 1
    assert len({(c.event.state, c.event.cancel_time) for c in cancels}) == 1
    final = await _current(repo, event.id)
    assert final.state is EventState.CANCELLED and final.available_seats == 1000
    records = _records(dsn, event.id)
    assert all(state in {"RELEASED", "REFUSED"} for state, *_ in records)
    assert all(reason == "EVENT_CANCELLED" for state, _, _, reason, _ in records if state == "REFUSED")
    assert_seats_consistent(dsn)


async def test_a_release_in_flight_during_the_cancellation_gives_its_seats_back_itself(
    repo: EventRepository, dsn: str
) -> None:
    """The booking service releasing a reservation while the event is cancelled: the
    cancellation skips the record the release has locked (waiting for it would deadlock: the
    release next waits for the event's row), and the release adds its seats back after."""
    event = await _event(repo, 10)
    inflight, other = SeatRequest(uuid.uuid4(), event.id, 3), SeatRequest(uuid.uuid4(), event.id, 2)
    await repo.reserve_batch([inflight, other])
    with psycopg.connect(dsn) as release:
        # RELEASE's first half: the record is released and locked, the seats not yet back.
        release.execute(
            "UPDATE reservations SET state = 'RELEASED', release_time = now() WHERE booking_id = %s",
            (inflight.booking_id,),
        )
        cancelled = await asyncio.wait_for(repo.cancel_event(event.id), timeout=5)
        assert cancelled is not None and cancelled.event.available_seats == 10 - 3
        release.execute("UPDATE events SET available_seats = available_seats + 3 WHERE id = %s", (event.id,))
        release.commit()
    assert (await _current(repo, event.id)).available_seats == 10
    by_booking = {}
    for booking in (inflight.booking_id, other.booking_id):
        recorded = await repo.get_reservation(booking)
        assert recorded is not None
        by_booking[booking] = recorded[0]
    assert by_booking[inflight.booking_id].release_reason is None
    assert by_booking[other.booking_id].release_reason is ReleaseReason.EVENT_CANCELLED
    assert_seats_consistent(dsn)


async def test_cancelled_events_page_by_cancel_time_then_id(repo: EventRepository, dsn: str) -> None:
    events = [await _event(repo, 5) for _ in range(5)]
    await _event(repo, 5)  # never cancelled
    cancelled = [await repo.cancel_event(e.id) for e in events]
    order = sorted((c.event for c in cancelled if c is not None), key=lambda e: (e.cancel_time, e.id))
    first = await repo.list_cancelled_events(None, 3, None)
    assert first == order[:3]
    last = first[-1]
    assert last.cancel_time is not None
    rest = await repo.list_cancelled_events(None, 10, (last.cancel_time, last.id))
    assert rest == order[3:]
    assert order[2].cancel_time is not None
    assert await repo.list_cancelled_events(order[2].cancel_time, 10, None) == order[2:]
