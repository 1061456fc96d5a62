"""The booking saga, cancellation and the reconciler's decisions, on in-memory fakes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from booking_service.domain import (
    Booking,
    BookingAbandoned,
    BookingStatus,
    EventServiceUnavailable,
    IdempotencyKeyReused,
    Limits,
    NotCancellable,
    RejectReason,
    SoldOut,
)
from booking_service.fakes import FakeSeats, FakeStore
from booking_service.reconciler import Reconciler
from booking_service.service import BookingService
from service_runtime.errors import InvalidArgument
from service_runtime.tasks import DetachedTasks

EVENT = uuid.uuid4()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def seats() -> FakeSeats:
    return FakeSeats({EVENT: 3})


@pytest.fixture
def service(store: FakeStore, seats: FakeSeats) -> BookingService:
    return BookingService(store, seats, Limits(max_seats_per_booking=5), DetachedTasks())


def reconciler(store: FakeStore, seats: FakeSeats) -> Reconciler:
    return Reconciler(store, seats, min_age=timedelta(0), interval=timedelta(seconds=1))


async def test_a_booking_is_confirmed_when_its_seats_are_reserved(service: BookingService, seats: FakeSeats) -> None:
    booking = await service.create_booking(str(EVENT), "alice", 2, "")
    assert booking.status is BookingStatus.CONFIRMED
    assert seats.available[EVENT] == 1


async def test_sold_out_rejects_the_booking(service: BookingService, store: FakeStore) -> None:
    with pytest.raises(SoldOut) as error:
        await service.create_booking(str(EVENT), "alice", 4, "")
    booking = store.rows[uuid.UUID(error.value.metadata["booking_id"])]
    assert (booking.status, booking.reject_reason) == (BookingStatus.REJECTED, RejectReason.SOLD_OUT)


async def test_bad_input_never_reaches_storage_or_seats(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    with pytest.raises(InvalidArgument):
        await service.create_booking(str(EVENT), "", 1, "")
    assert store.writes == 0 and seats.calls == []


async def test_event_service_down_leaves_the_booking_pending(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    seats.up = False
    with pytest.raises(EventServiceUnavailable) as error:
        await service.create_booking(str(EVENT), "alice", 1, "key")
    assert error.value.retry_after_seconds >= 1
    assert [b.status for b in store.rows.values()] == [BookingStatus.PENDING]
    seats.up = True
    retried = await service.create_booking(str(EVENT), "alice", 1, "key")
    assert retried.id == uuid.UUID(error.value.metadata["booking_id"])
    assert retried.status is BookingStatus.CONFIRMED and seats.available[EVENT] == 2


async def test_a_retry_returns_the_first_outcome_without_booking_again(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    first = await service.create_booking(str(EVENT), "alice", 1, "key")
    again = await service.create_booking(str(EVENT), "alice", 1, "key")
    assert again == first and len(store.rows) == 1 and seats.available[EVENT] == 2
    with pytest.raises(IdempotencyKeyReused):
        await service.create_booking(str(EVENT), "alice", 2, "key")


async def test_cancel_gives_seats_back_once(service: BookingService, seats: FakeSeats) -> None:
    booking = await service.create_booking(str(EVENT), "alice", 2, "")
    cancelled = await service.cancel_booking(str(booking.id))
    assert cancelled.status is BookingStatus.CANCELLED and seats.available[EVENT] == 3
    again = await service.cancel_booking(str(booking.id))
    assert again.status is BookingStatus.CANCELLED and seats.calls.count("release") == 1


async def test_a_rejected_booking_cannot_be_cancelled(service: BookingService) -> None:
    with pytest.raises(SoldOut) as error:
        await service.create_booking(str(EVENT), "alice", 4, "")
    with pytest.raises(NotCancellable):
        await service.cancel_booking(error.value.metadata["booking_id"])


async def test_reconciler_confirms_a_pending_booking_whose_seats_are_reserved(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    seats.up = False
    with pytest.raises(EventServiceUnavailable) as error:
        await service.create_booking(str(EVENT), "alice", 1, "")
    booking_id = uuid.UUID(error.value.metadata["booking_id"])
    seats.up = True
    # The reservation landed after all (say, the reply was lost).
    seats.reserve_one(booking_id, EVENT, 1)
    assert await reconciler(store, seats).run_once() == 1
    assert store.rows[booking_id].status is BookingStatus.CONFIRMED


async def test_reconciler_releases_then_rejects_a_booking_with_nothing_reserved(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    seats.up = False
    with pytest.raises(EventServiceUnavailable) as error:
        await service.create_booking(str(EVENT), "alice", 1, "key")
    booking_id = uuid.UUID(error.value.metadata["booking_id"])
    seats.up = True
    seats.calls.clear()
    assert await reconciler(store, seats).run_once() == 1
    assert seats.calls == ["lookup", "release"]
    assert (store.rows[booking_id].status, store.rows[booking_id].reject_reason) == (
        BookingStatus.REJECTED,
        RejectReason.ABANDONED,
    )
    # The released id blocks the late reservation, and a retry with the key says so.
    with pytest.raises(BookingAbandoned):
        await service.create_booking(str(EVENT), "alice", 1, "key")
    assert seats.available[EVENT] == 3


async def test_reconciler_finishes_a_half_done_cancel(
    store: FakeStore, seats: FakeSeats, service: BookingService
) -> None:
    booking = await service.create_booking(str(EVENT), "alice", 2, "")
    await store.transition(booking.id, [BookingStatus.CONFIRMED], BookingStatus.CANCELLING)
    assert await reconciler(store, seats).run_once() == 1
    assert store.rows[booking.id].status is BookingStatus.CANCELLED and seats.available[EVENT] == 3


async def test_reconciler_leaves_bookings_for_later_while_the_event_service_is_down(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    seats.up = False
    with pytest.raises(EventServiceUnavailable):
        await service.create_booking(str(EVENT), "alice", 1, "")
    assert await reconciler(store, seats).run_once() == 0
    assert [b.status for b in store.rows.values()] == [BookingStatus.PENDING]


async def test_concurrent_requests_share_one_batch_and_the_earliest_get_the_last_seats(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    results = await asyncio.gather(
        *(service.create_booking(str(EVENT), f"user-{n}", 1, "") for n in range(6)), return_exceptions=True
    )
    assert [isinstance(r, Booking) for r in results] == [True] * 3 + [False] * 3
    assert all(isinstance(r, SoldOut) for r in results[3:])
    # All six are queued before the first batch starts: one INSERT, one reservation call, one UPDATE.
    assert seats.batches == [6] and store.statements == 2


async def test_duplicates_within_a_batch_reserve_once(service: BookingService, seats: FakeSeats) -> None:
    first, *again = await asyncio.gather(*(service.create_booking(str(EVENT), "alice", 2, "key") for _ in range(4)))
    assert all(b == first for b in again)
    assert seats.available[EVENT] == 1 and sum(seats.batches) == 1


async def test_an_unreachable_event_service_fails_only_the_unsettled_requests(
    service: BookingService, seats: FakeSeats
) -> None:
    settled = await service.create_booking(str(EVENT), "alice", 1, "settled")
    seats.up = False
    results = await asyncio.gather(
        service.create_booking(str(EVENT), "alice", 1, "settled"),
        service.create_booking(str(EVENT), "bob", 1, "new"),
        return_exceptions=True,
    )
    assert results[0] == settled and isinstance(results[1], EventServiceUnavailable)
