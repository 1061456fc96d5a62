"""EventRepository against a real PostgreSQL: the SQL keeps seats exact under races and replays."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from event_service.domain import NewEvent, ReservationState, SeatRequest
from event_service.repository import EventRepository
from tools.audit.invariants import assert_seats_consistent

START = datetime(2027, 3, 1, 19, 30, tzinfo=UTC)


@pytest.fixture
def repo(pool: AsyncConnectionPool) -> EventRepository:
    return EventRepository(pool)


async def _event(repo: EventRepository, seats: int, start: datetime = START) -> uuid.UUID:
    event = await repo.create_event(NewEvent(uuid.uuid4(), "Concert", start, seats))
    return event.id


async def _available(repo: EventRepository, event_id: uuid.UUID) -> int:
    event = await repo.get_event(event_id)
    assert event is not None
    return event.available_seats


async def test_created_event_reads_back_with_all_seats_available(repo: EventRepository) -> None:
    start = datetime(2027, 3, 1, 21, 0, tzinfo=timezone(timedelta(hours=2)))
    event_id = await _event(repo, 120, start)
    event = await repo.get_event(event_id)
    assert event is not None
    assert (event.total_seats, event.available_seats) == (120, 120)
    # timestamptz keeps the instant, whatever the offset it was given with.
    assert event.start_time == start
    assert event.start_time.utcoffset() is not None


async def test_unknown_event_reads_as_none(repo: EventRepository) -> None:
    assert await repo.get_event(uuid.uuid4()) is None


async def test_events_page_by_start_time_then_id(repo: EventRepository) -> None:
    ids = [await _event(repo, 10, START + timedelta(days=d)) for d in (2, 0, 1, 0)]
    first, total = await repo.list_events(2, None)
    assert total == 4
    tied = sorted([ids[1], ids[3]])
    assert [e.id for e in first] == tied
    rest, _ = await repo.list_events(10, (first[-1].start_time, first[-1].id))
    assert [e.id for e in rest] == [ids[2], ids[0]]


async def test_the_last_seat_can_be_reserved(repo: EventRepository, dsn: str) -> None:
    event_id = await _event(repo, 1)
    result = await repo.reserve(SeatRequest(uuid.uuid4(), event_id, 1))
    assert result is not None
    reservation, turn = result
    assert reservation.state is ReservationState.RESERVED
    assert turn.available_seats == 0
    assert await _available(repo, event_id) == 0
    assert_seats_consistent(dsn)


async def test_a_multi_seat_request_larger_than_what_is_left_takes_nothing(repo: EventRepository, dsn: str) -> None:
    event_id = await _event(repo, 3)
    result = await repo.reserve(SeatRequest(uuid.uuid4(), event_id, 4))
    assert result is not None
    assert result[0].state is ReservationState.SOLD_OUT
    assert result[1].available_seats == 3
    assert await _available(repo, event_id) == 3
    assert_seats_consistent(dsn)


async def test_reserving_for_an_unknown_event_records_nothing(repo: EventRepository) -> None:
    booking = uuid.uuid4()
    assert await repo.reserve(SeatRequest(booking, uuid.uuid4(), 1)) is None
    assert await repo.get_reservation(booking) is None


async def test_200_racing_reservations_take_exactly_the_50_seats(repo: EventRepository, dsn: str) -> None:
    event_id = await _event(repo, 50)
    results = await asyncio.gather(*(repo.reserve(SeatRequest(uuid.uuid4(), event_id, 1)) for _ in range(200)))
    states = [r[0].state for r in results if r is not None]
    assert states.count(ReservationState.RESERVED) == 50
    assert states.count(ReservationState.SOLD_OUT) == 150
    assert await _available(repo, event_id) == 0
    assert_seats_consistent(dsn)


async def test_a_replayed_reservation_returns_the_record_and_takes_nothing(repo: EventRepository) -> None:
    event_id = await _event(repo, 10)
    request = SeatRequest(uuid.uuid4(), event_id, 3)
    first = await repo.reserve(request)
    again = await repo.reserve(request)
    assert first is not None and again is not None
    assert again[0] == first[0]
    assert await _available(repo, event_id) == 7


async def test_racing_replays_of_one_booking_take_its_seats_once(repo: EventRepository, dsn: str) -> None:
    event_id = await _event(repo, 10)
    request = SeatRequest(uuid.uuid4(), event_id, 2)
    results = await asyncio.gather(*(repo.reserve(request) for _ in range(20)))
    assert {r[0] for r in results if r is not None} == {results[0][0]}  # type: ignore[index]
    assert await _available(repo, event_id) == 8
    assert_seats_consistent(dsn)


async def test_release_gives_the_seats_back_exactly_once(repo: EventRepository, dsn: str) -> None:
    event_id = await _event(repo, 10)
    booking = uuid.uuid4()
    await repo.reserve(SeatRequest(booking, event_id, 4))
    released = [await repo.release(booking) for _ in range(3)]
    assert {r.state for r in released} == {ReservationState.RELEASED}
    assert released[0].seats == 4 and released[0].release_time is not None
    assert await _available(repo, event_id) == 10
    assert_seats_consistent(dsn)


async def test_racing_releases_give_the_seats_back_once(repo: EventRepository, dsn: str) -> None:
    event_id = await _event(repo, 10)
    booking = uuid.uuid4()
    await repo.reserve(SeatRequest(booking, event_id, 4))
    await asyncio.gather(*(repo.release(booking) for _ in range(20)))
    assert await _available(repo, event_id) == 10
    assert_seats_consistent(dsn)


async def test_release_before_reserve_blocks_the_late_reservation(repo: EventRepository) -> None:
    event_id = await _event(repo, 10)
    booking = uuid.uuid4()
    marker = await repo.release(booking)
    assert (marker.state, marker.event_id, marker.seats) == (ReservationState.RELEASED, None, 0)
    late = await repo.reserve(SeatRequest(booking, event_id, 2))
    assert late is not None
    assert late[0].state is ReservationState.RELEASED
    assert await _available(repo, event_id) == 10


async def test_racing_reserve_and_release_of_one_booking_leave_seats_consistent(
    repo: EventRepository, dsn: str
) -> None:
    event_id = await _event(repo, 100)
    bookings = [uuid.uuid4() for _ in range(40)]
    await asyncio.gather(
        *(repo.reserve(SeatRequest(b, event_id, 1)) for b in bookings),
        *(repo.release(b) for b in bookings),
    )
    # Whatever the interleaving, every booking id ends released, so every seat is back.
    for booking in bookings:
        recorded = await repo.get_reservation(booking)
        assert recorded is not None
        assert recorded[0].state is ReservationState.RELEASED
    assert await _available(repo, event_id) == 100
    assert_seats_consistent(dsn)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET available_seats = total_seats + 1",
        "UPDATE events SET available_seats = -1",
        "UPDATE events SET total_seats = 0, available_seats = 0",
        "INSERT INTO reservations (booking_id, event_id, seats, state)"
        " SELECT gen_random_uuid(), id, 0, 'RESERVED' FROM events",
        "INSERT INTO reservations (booking_id, event_id, seats, state) VALUES (gen_random_uuid(), NULL, 1, 'RESERVED')",
        "INSERT INTO reservations (booking_id, event_id, seats, state)"
        " SELECT gen_random_uuid(), id, 1, 'REFUSED' FROM events",
        "UPDATE events SET state = 'CANCELLED'",
        "UPDATE events SET sales_start_time = start_time, sales_end_time = start_time",
    ],
)
async def test_the_schema_refuses_impossible_seat_counts(repo: EventRepository, dsn: str, statement: str) -> None:
    await _event(repo, 5)
    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(statement)
