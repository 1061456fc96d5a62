"""Holds, confirmation, the hold sweeper and the event-cancellation follower against a real
PostgreSQL: every race decided by the rows, and the database's clock."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from booking_service.domain import Booking, BookingStatus, CancelReason, NewBooking, RejectReason, Settlement
from booking_service.event_cancellation import CancellationFollower
from booking_service.repository import BookingRepository
from booking_service.sweep_repository import SweepRepository

EVENT = uuid.uuid4()
LIMIT = 1000
TTL = timedelta(minutes=10)


@pytest.fixture
def sweeps(pool: AsyncConnectionPool) -> SweepRepository:
    return SweepRepository(pool)


async def _booked(
    repo: BookingRepository, count: int, *, hold: bool, event: uuid.UUID = EVENT, seats: int = 1
) -> list[Booking]:
    """`count` bookings settled HELD (holds) or CONFIRMED, each of its own user."""
    news = [NewBooking(uuid.uuid4(), f"user-{n}", event, seats, None, None, hold) for n in range(count)]
    await repo.insert_pending(news, LIMIT, TTL)
    status = BookingStatus.HELD if hold else BookingStatus.CONFIRMED
    settled = await repo.settle([Settlement(n.id, status) for n in news])
    return [settled[n.id] for n in news]


def _sql(dsn: str, statement: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def _statuses(dsn: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    return {row[0]: row[1] for row in _sql(dsn, "SELECT id, status FROM bookings WHERE id = ANY(%s)", ids)}


async def test_a_hold_runs_out_ttl_after_its_insert_by_the_database_clock(repo: BookingRepository, dsn: str) -> None:
    [held] = await _booked(repo, 1, hold=True)
    [[expected]] = _sql(dsn, "SELECT create_time + interval '10 minutes' FROM bookings WHERE id = %s", held.id)
    assert held.status is BookingStatus.HELD and held.hold and held.expire_time == expected
    [plain] = await _booked(repo, 1, hold=False)
    assert not plain.hold and plain.expire_time is None


async def test_a_refusal_keeps_its_facts(repo: BookingRepository) -> None:
    [new] = [NewBooking(uuid.uuid4(), "alice", EVENT, 1, None, None)]
    await repo.insert_pending([new], LIMIT)
    facts = {"sales_start_time": "2027-01-01T10:00:00Z"}
    await repo.settle([Settlement(new.id, BookingStatus.REJECTED, RejectReason.SALES_NOT_STARTED, facts)])
    stored = await repo.get(new.id)
    assert stored is not None and stored.reject_metadata == facts


async def test_confirm_racing_expiry_ends_with_exactly_one_outcome_each(
    repo: BookingRepository, sweeps: SweepRepository, dsn: str
) -> None:
    holds = await _booked(repo, 200, hold=True)
    ids = [h.id for h in holds]
    # All run out half a second from now (the database's now), while confirms arrive around it.
    _sql(dsn, "UPDATE bookings SET expire_time = now() + interval '500 milliseconds' WHERE id = ANY(%s)", ids)
    expired: list[uuid.UUID] = []
    stop = asyncio.Event()

    async def sweeper() -> None:
        while not stop.is_set():
            expired.extend(b for b, _ in await sweeps.start_expiring(7))
            await asyncio.sleep(0.005)

    async def confirm(booking_id: uuid.UUID) -> tuple[uuid.UUID, bool]:
        await asyncio.sleep(random.uniform(0.3, 0.7))
        booking, was_expired, _ = await repo.confirm(booking_id)
        assert booking is not None
        return booking_id, booking.status is BookingStatus.CONFIRMED and not was_expired

    sweepers = [asyncio.create_task(sweeper()) for _ in range(2)]
    results = await asyncio.gather(*(confirm(b) for b in ids))
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*sweepers)
    confirmed = {b for b, won in results if won}
    assert len(expired) == len(set(expired))  # no hold taken for expiry twice
    assert confirmed.isdisjoint(expired) and confirmed | set(expired) == set(ids)
    statuses = _statuses(dsn, ids)
    assert {b for b, s in statuses.items() if s == "CONFIRMED"} == confirmed
    assert {b for b, s in statuses.items() if s == "EXPIRING"} == set(expired)
    # Both outcomes happened: the race was real.
    assert confirmed and expired


async def test_a_confirmed_hold_is_never_swept(repo: BookingRepository, sweeps: SweepRepository, dsn: str) -> None:
    [held] = await _booked(repo, 1, hold=True)
    confirmed, _, _ = await repo.confirm(held.id)
    assert confirmed is not None and confirmed.status is BookingStatus.CONFIRMED
    _sql(dsn, "UPDATE bookings SET expire_time = now() - interval '1 second'")
    assert await sweeps.start_expiring(10) == []
    again, expired, _ = await repo.confirm(held.id)  # idempotent: answered as it is
    assert again is not None and again.status is BookingStatus.CONFIRMED and expired


async def test_sweepers_share_due_holds_and_skip_locked_ones_without_waiting(
    repo: BookingRepository, sweeps: SweepRepository, dsn: str
) -> None:
    holds = await _booked(repo, 60, hold=True)
    ids = [h.id for h in holds]
    _sql(dsn, "UPDATE bookings SET expire_time = now() - interval '1 second' WHERE id = ANY(%s)", ids)
    async with await psycopg.AsyncConnection.connect(dsn) as other:
        # Another transaction (a confirm, say) holds one row's lock.
        await other.execute("SELECT 1 FROM bookings WHERE id = %s FOR UPDATE", (ids[0],))
        first, second = await asyncio.wait_for(
            asyncio.gather(sweeps.start_expiring(40), sweeps.start_expiring(40)), timeout=5
        )
        taken = [b for b, _ in first] + [b for b, _ in second]
        assert len(taken) == len(set(taken)) == 59 and ids[0] not in taken
        assert all(lag >= 1.0 for _, lag in first + second)
        await other.rollback()
    assert [b for b, _ in await sweeps.start_expiring(40)] == [ids[0]]
    assert sorted(await sweeps.finish_expiring(ids)) == sorted(ids)
    assert set(_statuses(dsn, ids).values()) == {"EXPIRED"}
    assert await sweeps.finish_expiring(ids) == []


async def test_holds_count_against_the_cap_until_they_expire(
    repo: BookingRepository, sweeps: SweepRepository, dsn: str
) -> None:
    def new(seats: int) -> NewBooking:
        return NewBooking(uuid.uuid4(), "alice", EVENT, seats, None, None, True)

    [held] = await repo.insert_pending([new(3)], 4, TTL)
    assert isinstance(held, Booking)
    await repo.settle([Settlement(held.id, BookingStatus.HELD)])
    [over] = await repo.insert_pending([new(2)], 4, TTL)
    assert isinstance(over, Booking) and over.reject_reason is RejectReason.USER_LIMIT_REACHED
    _sql(dsn, "UPDATE bookings SET expire_time = now() - interval '1 second' WHERE id = %s", held.id)
    await sweeps.start_expiring(10)
    [still_over] = await repo.insert_pending([new(2)], 4, TTL)  # EXPIRING still counts
    assert isinstance(still_over, Booking) and still_over.status is BookingStatus.REJECTED
    await sweeps.finish_expiring([held.id])
    [fits] = await repo.insert_pending([new(4)], 4, TTL)
    assert isinstance(fits, Booking) and fits.status is BookingStatus.PENDING


async def test_a_booking_of_a_listed_cancelled_event_settles_cancelled_and_is_not_confirmable(
    repo: BookingRepository, sweeps: SweepRepository
) -> None:
    [held] = await _booked(repo, 1, hold=True)
    news = [NewBooking(uuid.uuid4(), "bob", EVENT, 1, None, None, hold) for hold in (False, True)]
    await repo.insert_pending(news, LIMIT, TTL)
    await sweeps.record_cancelled([(EVENT, datetime.now(UTC))])
    settled = await repo.settle(
        [Settlement(news[0].id, BookingStatus.CONFIRMED), Settlement(news[1].id, BookingStatus.HELD)]
    )
    for booking in settled.values():
        assert (booking.status, booking.cancel_reason) == (BookingStatus.CANCELLED, CancelReason.EVENT_CANCELLED)
    current, expired, event_cancelled = await repo.confirm(held.id)
    assert current is not None and current.status is BookingStatus.HELD and event_cancelled and not expired


async def test_a_hold_of_a_listed_cancelled_event_is_left_to_the_follower(
    repo: BookingRepository, sweeps: SweepRepository, dsn: str
) -> None:
    other_event = uuid.uuid4()
    [cancelled] = await _booked(repo, 1, hold=True)
    [running] = await _booked(repo, 1, hold=True, event=other_event)
    _sql(dsn, "UPDATE bookings SET expire_time = now() - interval '1 second'")
    await sweeps.record_cancelled([(EVENT, datetime.now(UTC))])
    # Only the other event's hold expires; the cancelled event's ends CANCELLED by the follower.
    assert [b for b, _ in await sweeps.start_expiring(10)] == [running.id]
    assert _statuses(dsn, [cancelled.id]) == {cancelled.id: "HELD"}


class _Listed:
    def __init__(self, events: list[tuple[uuid.UUID, datetime]]) -> None:
        self.events = events

    async def cancelled_events(self, after: datetime | None) -> list[tuple[uuid.UUID, datetime]]:
        return [e for e in self.events if after is None or e[1] >= after]


async def _cancel_reasons(dsn: str, event: uuid.UUID) -> dict[str, int]:
    rows = _sql(
        dsn,
        "SELECT status || '/' || coalesce(cancel_reason, '-'), count(*) FROM bookings WHERE event_id = %s GROUP BY 1",
        event,
    )
    return {str(k): int(v) for k, v in rows}


def _done(dsn: str, event: uuid.UUID) -> bool:
    [[done]] = _sql(dsn, "SELECT done_time IS NOT NULL FROM cancelled_events WHERE event_id = %s", event)
    return bool(done)


async def test_an_event_cancellation_is_swept_in_chunks_and_resumes_where_it_stopped(
    repo: BookingRepository, sweeps: SweepRepository, dsn: str, pool: AsyncConnectionPool
) -> None:
    await _booked(repo, 300, hold=False)
    await _booked(repo, 150, hold=True)
    other = uuid.uuid4()
    await _booked(repo, 5, hold=False, event=other)
    listed = _Listed([(EVENT, datetime.now(UTC))])
    chunks: list[int] = []
    # The first process dies after its first chunk: here, it does just that one.
    await CancellationFollower(sweeps, listed).poll()
    assert await sweeps.cancel_chunk(EVENT, 200) == 200
    assert not _done(dsn, EVENT)
    # Whichever replica looks next (a new one, on its own repository) finishes it.
    restarted = CancellationFollower(SweepRepository(pool), listed, chunk=200, on_cancelled=chunks.append)
    assert await restarted.run_once() == 250
    assert chunks == [200, 50]
    assert await _cancel_reasons(dsn, EVENT) == {"CANCELLED/EVENT_CANCELLED": 450}
    assert await _cancel_reasons(dsn, other) == {"CONFIRMED/-": 5}
    assert _done(dsn, EVENT)
    assert await restarted.run_once() == 0 and chunks == [200, 50]


async def test_an_event_is_not_done_while_a_booking_of_it_may_still_be_confirmed(
    repo: BookingRepository, sweeps: SweepRepository, dsn: str, pool: AsyncConnectionPool
) -> None:
    [confirmed] = await _booked(repo, 1, hold=False)
    pending = NewBooking(uuid.uuid4(), "late", EVENT, 1, None, None)
    await repo.insert_pending([pending], LIMIT, TTL)
    follower = CancellationFollower(sweeps, _Listed([(EVENT, datetime.now(UTC))]))
    async with await psycopg.AsyncConnection.connect(dsn) as settling:
        # A settle that started before the event was listed: it holds the PENDING row and
        # commits CONFIRMED after the follower's first round.
        await settling.execute(
            "UPDATE bookings SET status = 'CONFIRMED', update_time = now() WHERE id = %s", (pending.id,)
        )
        # Another request holds the confirmed one (a DELETE in flight, say): skipped, not waited for.
        async with await psycopg.AsyncConnection.connect(dsn) as holder:
            await holder.execute("SELECT 1 FROM bookings WHERE id = %s FOR UPDATE", (confirmed.id,))
            assert await asyncio.wait_for(follower.run_once(), timeout=5) == 0
            await holder.rollback()
        assert not _done(dsn, EVENT)
        await settling.commit()
    assert await follower.run_once() == 2
    assert await _cancel_reasons(dsn, EVENT) == {"CANCELLED/EVENT_CANCELLED": 2}
    assert _done(dsn, EVENT)
