"""BookingRepository against a real PostgreSQL: conditional transitions, idempotency keys,
paging, and the reconciler's leases and row locks."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import psycopg
import pytest

from booking_service.domain import Booking, BookingStatus, NewBooking, RejectReason, Settlement, request_hash
from booking_service.repository import BookingRepository
from service_runtime.batching import Failed

EVENT = uuid.uuid4()
# High enough not to matter, except where a test is about it.
LIMIT = 1000


def _new(user: str = "alice", key: str | None = None, seats: int = 1) -> NewBooking:
    return NewBooking(uuid.uuid4(), user, EVENT, seats, key, request_hash(EVENT, user, seats) if key else None)


async def _insert(repo: BookingRepository, new: NewBooking) -> Booking | Failed | None:
    [result] = await repo.insert_pending([new], LIMIT)
    return result


async def test_a_pending_booking_is_stored_and_read_back(repo: BookingRepository) -> None:
    new = _new(key="k1")
    stored = await _insert(repo, new)
    assert isinstance(stored, Booking) and stored.status is BookingStatus.PENDING
    assert await repo.get(new.id) == stored
    assert await repo.get_by_keys([("alice", "k1"), ("bob", "k1")]) == {("alice", "k1"): stored}


async def test_one_booking_per_idempotency_key_even_when_racing(repo: BookingRepository) -> None:
    results = await asyncio.gather(*(_insert(repo, _new(key="same")) for _ in range(20)))
    assert sum(r is not None for r in results) == 1


async def test_idempotency_keys_are_per_user(repo: BookingRepository) -> None:
    results = await repo.insert_pending([_new("alice", key="order-1"), _new("bob", key="order-1")], LIMIT)
    assert all(isinstance(r, Booking) for r in results)


async def test_one_booking_per_idempotency_key_within_a_statement(repo: BookingRepository) -> None:
    news = [_new(key="same") for _ in range(5)] + [_new(key="other")]
    results = await repo.insert_pending(news, LIMIT)
    assert [r is not None for r in results] == [True, False, False, False, False, True]


async def test_a_batch_keeps_its_order_and_writes_one_row_each(repo: BookingRepository, dsn: str) -> None:
    news = [_new(f"user-{n}") for n in range(100)]
    results = await repo.insert_pending(news, LIMIT)
    assert [r.id for r in results if isinstance(r, Booking)] == [n.id for n in news]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM bookings WHERE status = 'PENDING'").fetchone() == (100,)


async def test_a_bad_row_fails_only_its_own_request(repo: BookingRepository) -> None:
    good = [_new() for _ in range(5)]
    bad = _new(user="x" * 100)  # over the column's CHECK: the batch is redone row by row
    results = await repo.insert_pending([*good, bad], LIMIT)
    assert all(isinstance(r, Booking) for r in results[:5])
    assert isinstance(results[5], Failed) and isinstance(results[5].error, psycopg.errors.CheckViolation)


async def test_settlements_apply_only_to_pending_bookings(repo: BookingRepository) -> None:
    news = [_new() for _ in range(6)]
    await repo.insert_pending(news, LIMIT)
    # One was settled by someone else first (say, the reconciler).
    await repo.transition(news[0].id, [BookingStatus.PENDING], BookingStatus.REJECTED, RejectReason.ABANDONED)
    settlements = [Settlement(n.id, BookingStatus.CONFIRMED) for n in news]
    settled = await repo.settle([*settlements, settlements[1]])  # and a duplicate
    assert set(settled) == {n.id for n in news[1:]}
    assert all(b.status is BookingStatus.CONFIRMED for b in settled.values())
    stored = await repo.get(news[0].id)
    assert stored is not None and stored.status is BookingStatus.REJECTED


async def test_bookings_without_a_key_never_conflict(repo: BookingRepository) -> None:
    assert all([await _insert(repo, _new()) for _ in range(3)])


async def test_only_one_of_racing_transitions_wins(repo: BookingRepository) -> None:
    new = _new()
    await _insert(repo, new)
    results = await asyncio.gather(
        *(repo.transition(new.id, [BookingStatus.PENDING], BookingStatus.CONFIRMED) for _ in range(10)),
        *(
            repo.transition(new.id, [BookingStatus.PENDING], BookingStatus.REJECTED, RejectReason.ABANDONED)
            for _ in range(10)
        ),
    )
    assert sum(r is not None for r in results) == 1


async def test_the_schema_refuses_inconsistent_rows(repo: BookingRepository, dsn: str) -> None:
    new = _new()
    await _insert(repo, new)
    with psycopg.connect(dsn) as conn:
        for statement in (
            "UPDATE bookings SET status = 'REJECTED'",  # no reason
            "UPDATE bookings SET status = 'LOST'",
            "UPDATE bookings SET seats = 0",
            "UPDATE bookings SET idempotency_key = 'k'",  # key without request hash
        ):
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(statement)
            conn.rollback()


async def test_a_users_bookings_page_newest_first(repo: BookingRepository) -> None:
    ids = []
    for _ in range(5):
        new = _new("bob")
        await _insert(repo, new)
        ids.append(new.id)
    await _insert(repo, _new("someone-else"))
    first = await repo.list_for_user("bob", 3, None)
    rest = await repo.list_for_user("bob", 3, (first[-1].create_time, first[-1].id))
    assert [b.id for b in first + rest] == ids[::-1]


async def test_leases_skip_young_and_leased_bookings(repo: BookingRepository, dsn: str) -> None:
    old, young = _new(), _new()
    await _insert(repo, old)
    await _insert(repo, young)
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE bookings SET update_time = now() - interval '1 minute' WHERE id = %s", (old.id,))
    leased = await repo.lease_unsettled(timedelta(seconds=30), timedelta(seconds=30), 10)
    assert leased == [old.id]
    # Another replica asking now gets nothing: the old one is leased, the young one too young.
    assert await repo.lease_unsettled(timedelta(seconds=30), timedelta(seconds=30), 10) == []


async def test_a_locked_booking_is_skipped_and_settled_ones_are_not_offered(repo: BookingRepository) -> None:
    new = _new()
    await _insert(repo, new)
    async with repo.locked_unsettled(new.id) as first:
        assert first is not None
        async with repo.locked_unsettled(new.id) as second:
            assert second is None  # held by the first: SKIP LOCKED
        await first.transition(BookingStatus.CONFIRMED)
    async with repo.locked_unsettled(new.id) as settled:
        assert settled is None


async def test_a_request_cannot_confirm_while_the_reconciler_holds_the_booking(repo: BookingRepository) -> None:
    new = _new()
    await _insert(repo, new)
    async with repo.locked_unsettled(new.id) as locked:
        assert locked is not None
        confirm = asyncio.create_task(repo.transition(new.id, [BookingStatus.PENDING], BookingStatus.CONFIRMED))
        await asyncio.sleep(0.2)
        assert not confirm.done()  # waits for the row lock
        await locked.transition(BookingStatus.REJECTED, RejectReason.ABANDONED)
    assert await confirm is None  # re-checked after the lock: no longer PENDING
    stored = await repo.get(new.id)
    assert stored is not None and stored.status is BookingStatus.REJECTED


async def test_racing_batches_never_take_a_user_past_the_cap(repo: BookingRepository, dsn: str) -> None:
    # 20 concurrent statements (each its own connection, as from several replicas) of
    # 2 single-seat requests each, all by alice for one event, against a cap of 5.
    results = await asyncio.gather(*(repo.insert_pending([_new(), _new()], 5) for _ in range(20)))
    statuses = [r.status for batch in results for r in batch if isinstance(r, Booking)]
    assert statuses.count(BookingStatus.PENDING) == 5 and statuses.count(BookingStatus.REJECTED) == 35
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM bookings WHERE status = 'REJECTED' AND reject_reason = 'USER_LIMIT_REACHED'"
        ).fetchone()
    assert row == (35,)


async def test_only_seats_still_held_count_against_the_cap(repo: BookingRepository) -> None:
    first, second = await repo.insert_pending([_new(seats=2), _new(seats=2)], 4)
    assert isinstance(first, Booking) and isinstance(second, Booking)
    await repo.settle([Settlement(first.id, BookingStatus.REJECTED, RejectReason.SOLD_OUT)])
    [third] = await repo.insert_pending([_new(seats=2)], 4)
    [fourth] = await repo.insert_pending([_new(seats=1)], 4)
    assert isinstance(third, Booking) and third.status is BookingStatus.PENDING
    assert isinstance(fourth, Booking) and fourth.reject_reason is RejectReason.USER_LIMIT_REACHED
