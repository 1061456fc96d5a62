"""Coalesced reservations: batches decided in arrival order, failures confined to their batch,
and on a real PostgreSQL the batch transaction never leaves a seat taken without its record."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from event_service.coalescer import ReservationCoalescer
from event_service.domain import NewEvent, Reservation, ReservationState, SeatRequest, Turn
from event_service.repository import EventRepository
from event_service.service import Decided
from tools.audit.invariants import assert_seats_consistent


async def reserve(coalescer: ReservationCoalescer, request: SeatRequest) -> Decided:
    [result] = await coalescer.reserve_many([request])
    return result


class _FlakyStore:
    """Fails the first batch; records the batches it is given."""

    def __init__(self) -> None:
        self.batches: list[list[SeatRequest]] = []

    async def reserve_batch(self, requests: list[SeatRequest]) -> list[tuple[Reservation, Turn] | None]:
        self.batches.append(requests)
        await asyncio.sleep(0.01)
        if len(self.batches) == 1:
            raise ConnectionError("database went away")
        now = datetime.now(UTC)
        return [
            (Reservation(r.booking_id, r.event_id, r.seats, ReservationState.RESERVED, now, None), Turn(0))
            for r in requests
        ]


async def test_a_failed_batch_fails_only_its_own_callers() -> None:
    store = _FlakyStore()
    coalescer = ReservationCoalescer(store.reserve_batch)
    event = uuid.uuid4()
    first = asyncio.create_task(reserve(coalescer, SeatRequest(uuid.uuid4(), event, 1)))
    await asyncio.sleep(0)  # the first call starts a batch of its own
    later = [asyncio.create_task(reserve(coalescer, SeatRequest(uuid.uuid4(), event, 1))) for _ in range(5)]
    with pytest.raises(ConnectionError):
        await first
    results = await asyncio.gather(*later)
    assert all(result is not None and result[0].state is ReservationState.RESERVED for result in results)
    assert [len(batch) for batch in store.batches] == [1, 5]


async def test_a_group_of_requests_joins_one_batch_in_order(pool: AsyncConnectionPool) -> None:
    repo = EventRepository(pool)
    event = await repo.create_event(NewEvent(uuid.uuid4(), "Gig", datetime(2027, 1, 1, tzinfo=UTC), 2))
    sizes: list[int] = []
    coalescer = ReservationCoalescer(repo.reserve_batch, on_batch=sizes.append)
    results = await coalescer.reserve_many([SeatRequest(uuid.uuid4(), event.id, 1) for _ in range(4)])
    assert [r[0].state for r in results if r is not None] == [ReservationState.RESERVED] * 2 + [
        ReservationState.SOLD_OUT
    ] * 2
    assert sizes == [4]


async def test_concurrent_calls_are_decided_in_arrival_order(pool: AsyncConnectionPool, dsn: str) -> None:
    repo = EventRepository(pool)
    event = await repo.create_event(NewEvent(uuid.uuid4(), "Gig", datetime(2027, 1, 1, tzinfo=UTC), 3))
    sizes: list[int] = []
    coalescer = ReservationCoalescer(repo.reserve_batch, on_batch=sizes.append)
    requests = [SeatRequest(uuid.uuid4(), event.id, 1) for _ in range(10)]
    results = await asyncio.gather(*(reserve(coalescer, r) for r in requests))
    states = [result[0].state for result in results if result is not None]
    assert states == [ReservationState.RESERVED] * 3 + [ReservationState.SOLD_OUT] * 7
    assert sizes == [10]
    assert_seats_consistent(dsn)


async def test_many_racing_callers_take_exactly_the_seats_in_few_transactions(
    pool: AsyncConnectionPool, dsn: str
) -> None:
    repo = EventRepository(pool)
    event = await repo.create_event(NewEvent(uuid.uuid4(), "Gig", datetime(2027, 1, 1, tzinfo=UTC), 50))
    sizes: list[int] = []
    coalescer = ReservationCoalescer(repo.reserve_batch, max_batch=64, on_batch=sizes.append)
    results = await asyncio.gather(*(reserve(coalescer, SeatRequest(uuid.uuid4(), event.id, 1)) for _ in range(200)))
    assert sum(1 for r in results if r is not None and r[0].state is ReservationState.RESERVED) == 50
    assert sum(sizes) == 200 and len(sizes) < 200 and max(sizes) <= 64
    assert_seats_consistent(dsn)


async def test_replays_within_and_across_batches_take_nothing(pool: AsyncConnectionPool, dsn: str) -> None:
    repo = EventRepository(pool)
    event = await repo.create_event(NewEvent(uuid.uuid4(), "Gig", datetime(2027, 1, 1, tzinfo=UTC), 10))
    coalescer = ReservationCoalescer(repo.reserve_batch)
    request = SeatRequest(uuid.uuid4(), event.id, 4)
    results = await asyncio.gather(*(reserve(coalescer, request) for _ in range(5)))
    assert len({result[0] for result in results if result is not None}) == 1
    again = await reserve(coalescer, request)
    assert again is not None and again[0] == results[0][0]  # type: ignore[index]
    stored = await repo.get_event(event.id)
    assert stored is not None and stored.available_seats == 6
    assert_seats_consistent(dsn)


async def test_unknown_event_answers_none_for_the_whole_batch(pool: AsyncConnectionPool) -> None:
    coalescer = ReservationCoalescer(EventRepository(pool).reserve_batch)
    missing = uuid.uuid4()
    results = await asyncio.gather(*(reserve(coalescer, SeatRequest(uuid.uuid4(), missing, 1)) for _ in range(3)))
    assert results == [None, None, None]


async def test_a_booking_id_recorded_concurrently_elsewhere_redoes_the_batch_one_by_one(
    pool: AsyncConnectionPool, dsn: str
) -> None:
    repo = EventRepository(pool)
    start = datetime(2027, 1, 1, tzinfo=UTC)
    event = await repo.create_event(NewEvent(uuid.uuid4(), "A", start, 5))
    other = await repo.create_event(NewEvent(uuid.uuid4(), "B", start, 5))
    contested = uuid.uuid4()
    with psycopg.connect(dsn) as conn:
        # Another transaction records the contested booking id for the other event, uncommitted.
        conn.execute(
            "INSERT INTO reservations (booking_id, event_id, seats, state) VALUES (%s, %s, 1, 'RESERVED')",
            (contested, other.id),
        )
        conn.execute("UPDATE events SET available_seats = 4 WHERE id = %s", (other.id,))
        batch = [SeatRequest(uuid.uuid4(), event.id, 1), SeatRequest(contested, event.id, 1)]
        pending = asyncio.create_task(repo.reserve_batch(batch))
        await asyncio.sleep(0.3)  # the batch's INSERT now waits on the uncommitted record
        conn.commit()
    first, contested_result = await pending
    assert first is not None and contested_result is not None
    assert first[0].state is ReservationState.RESERVED
    assert contested_result[0].event_id == other.id  # the contested id kept its other record: BOOKING_ID_REUSED
    stored = await repo.get_event(event.id)
    assert stored is not None and stored.available_seats == 4
    assert_seats_consistent(dsn)


async def test_a_batch_cut_off_mid_way_takes_no_seat(pool: AsyncConnectionPool, dsn: str) -> None:
    repo = EventRepository(pool)
    event = await repo.create_event(NewEvent(uuid.uuid4(), "Gig", datetime(2027, 1, 1, tzinfo=UTC), 5))
    batch = [SeatRequest(uuid.uuid4(), event.id, 1) for _ in range(3)]
    with psycopg.connect(dsn) as blocker:
        blocker.execute("SELECT 1 FROM events WHERE id = %s FOR UPDATE", (event.id,))
        pending = asyncio.create_task(repo.reserve_batch(batch))
        await asyncio.sleep(0.3)
        # Kill the batch's connection while it waits for the event's lock.
        with psycopg.connect(dsn, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchall()
        assert killed == [(True,)]
        blocker.rollback()
    with pytest.raises(psycopg.OperationalError):
        await pending
    stored = await repo.get_event(event.id)
    assert stored is not None and stored.available_seats == 5
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM reservations").fetchone() == (0,)
    # Retrying the same calls (as the booking service does) then books them.
    results = await repo.reserve_batch(batch)
    assert all(r is not None and r[0].state is ReservationState.RESERVED for r in results)
    assert_seats_consistent(dsn)


async def test_one_batch_serves_many_events_each_in_arrival_order(pool: AsyncConnectionPool, dsn: str) -> None:
    repo = EventRepository(pool)
    start = datetime(2027, 1, 1, tzinfo=UTC)
    events = [await repo.create_event(NewEvent(uuid.uuid4(), f"Gig {n}", start, 2)) for n in range(3)]
    missing = uuid.uuid4()
    reused = uuid.uuid4()
    requests = [SeatRequest(uuid.uuid4(), events[n % 3].id, 1) for n in range(9)]
    requests.insert(4, SeatRequest(uuid.uuid4(), missing, 1))
    requests.append(SeatRequest(reused, events[0].id, 1))  # sold out there: events[0] has 2 seats
    requests.append(SeatRequest(reused, events[1].id, 1))  # the same booking id, another event
    results = await repo.reserve_batch(requests)
    assert results[4] is None
    for n in range(3):
        mine = [
            r for q, r in zip(requests, results, strict=True) if q.event_id == events[n].id and q.booking_id != reused
        ]
        assert [r[0].state for r in mine if r is not None] == [ReservationState.RESERVED] * 2 + [
            ReservationState.SOLD_OUT
        ]
    # The reused id is recorded once, for its first event; under the other it is a replay.
    assert results[-2] is not None and results[-1] is not None
    assert results[-2][0] == results[-1][0] and results[-1][0].event_id == events[0].id
    for event in events:
        stored = await repo.get_event(event.id)
        assert stored is not None and stored.available_seats == 0
    assert_seats_consistent(dsn)
