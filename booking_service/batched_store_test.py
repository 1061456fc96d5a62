"""BatchedStore on a real PostgreSQL: batched writes keep the single-row semantics, and a bad
row fails only its own request."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from booking_service.batched_store import BatchedStore
from booking_service.domain import BookingStatus, NewBooking, RejectReason, request_hash
from booking_service.repository import BookingRepository

EVENT = uuid.uuid4()


def _new(user: str = "alice", key: str | None = None) -> NewBooking:
    return NewBooking(uuid.uuid4(), user, EVENT, 1, key, request_hash(EVENT, user, 1) if key else None)


@pytest.fixture
def sizes() -> list[int]:
    return []


@pytest.fixture
def store(repo: BookingRepository, sizes: list[int]) -> BatchedStore:
    return BatchedStore(repo, on_batch=sizes.append)


async def test_concurrent_inserts_share_statements(store: BatchedStore, sizes: list[int], dsn: str) -> None:
    news = [_new(f"user-{n}") for n in range(100)]
    results = await asyncio.gather(*(store.insert_pending(new) for new in news))
    assert [r.id for r in results if r is not None] == [n.id for n in news]
    assert sum(sizes) == 100 and len(sizes) < 100
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM bookings WHERE status = 'PENDING'").fetchone() == (100,)


async def test_one_insert_per_idempotency_key_within_a_batch(store: BatchedStore) -> None:
    results = await asyncio.gather(*(store.insert_pending(_new(key="same")) for _ in range(10)))
    assert sum(r is not None for r in results) == 1


async def test_a_bad_row_fails_only_its_own_request(store: BatchedStore) -> None:
    good = [_new() for _ in range(5)]
    bad = _new(user="x" * 100)  # over the column's CHECK: the batch is redone row by row
    results = await asyncio.gather(*(store.insert_pending(n) for n in [*good, bad]), return_exceptions=True)
    assert all(not isinstance(r, BaseException) and r is not None for r in results[:5])
    assert isinstance(results[5], psycopg.errors.CheckViolation)


async def test_settlements_apply_only_to_pending_bookings(store: BatchedStore, repo: BookingRepository) -> None:
    news = [_new() for _ in range(6)]
    for new in news:
        await repo.insert_pending(new)
    # One was settled by someone else first (say, the reconciler).
    await repo.transition(news[0].id, [BookingStatus.PENDING], BookingStatus.REJECTED, RejectReason.ABANDONED)
    results = await asyncio.gather(
        *(store.transition(n.id, [BookingStatus.PENDING], BookingStatus.CONFIRMED) for n in news),
        store.transition(news[1].id, [BookingStatus.PENDING], BookingStatus.CONFIRMED),  # a duplicate
    )
    assert results[0] is None
    assert all(r is not None and r.status is BookingStatus.CONFIRMED for r in results[1:])
    stored = await repo.get(news[0].id)
    assert stored is not None and stored.status is BookingStatus.REJECTED


async def test_other_transitions_go_straight_to_the_repository(store: BatchedStore, repo: BookingRepository) -> None:
    new = _new()
    await repo.insert_pending(new)
    await store.transition(new.id, [BookingStatus.PENDING], BookingStatus.CONFIRMED)
    cancelling = await store.transition(new.id, [BookingStatus.CONFIRMED], BookingStatus.CANCELLING)
    assert cancelling is not None and cancelling.status is BookingStatus.CANCELLING
