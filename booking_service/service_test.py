"""The booking saga, cancellation and the reconciler's decisions, on in-memory fakes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from booking_service.answers import (
    BookingAbandoned,
    BookingNotFound,
    EventCancelled,
    EventServiceUnavailable,
    HoldExpired,
    IdempotencyKeyReused,
    NotCancellable,
    NotConfirmable,
    SalesNotStarted,
    SoldOut,
    UserLimitReached,
)
from booking_service.domain import (
    Booking,
    BookingStatus,
    CancelReason,
    Limits,
    RejectReason,
    SeatAnswer,
    SeatOutcome,
)
from booking_service.event_cancellation import CancellationFollower
from booking_service.fakes import FakeSeats, FakeStore
from booking_service.holds import HoldSweeper
from booking_service.reconciler import Reconciler
from booking_service.service import BookingService
from service_runtime.auth.errors import PermissionDenied
from service_runtime.auth.principal import Principal
from service_runtime.errors import InvalidArgument
from service_runtime.tasks import DetachedTasks

EVENT = uuid.uuid4()
ALICE = Principal("alice")
BOB = Principal("bob")
ADMIN = Principal("root", is_admin=True)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def seats() -> FakeSeats:
    return FakeSeats({EVENT: 3})


@pytest.fixture
def service(store: FakeStore, seats: FakeSeats) -> BookingService:
    return BookingService(
        store,
        seats,
        Limits(max_seats_per_booking=5, max_seats_per_user_per_event=4),
        DetachedTasks(),
        hold_ttl=timedelta(seconds=60),
    )


def reconciler(store: FakeStore, seats: FakeSeats) -> Reconciler:
    return Reconciler(store, seats, min_age=timedelta(0), interval=timedelta(seconds=1))


async def test_a_booking_is_confirmed_when_its_seats_are_reserved(service: BookingService, seats: FakeSeats) -> None:
    booking = await service.create_booking(ALICE, str(EVENT), "", 2, "")
    assert booking.status is BookingStatus.CONFIRMED
    assert seats.available[EVENT] == 1


async def test_sold_out_rejects_the_booking(service: BookingService, store: FakeStore) -> None:
    with pytest.raises(SoldOut) as error:
        await service.create_booking(ALICE, str(EVENT), "", 4, "")
    booking = store.rows[uuid.UUID(error.value.metadata["booking_id"])]
    assert (booking.status, booking.reject_reason) == (BookingStatus.REJECTED, RejectReason.SOLD_OUT)


async def test_bad_input_never_reaches_storage_or_seats(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    with pytest.raises(InvalidArgument):
        await service.create_booking(ALICE, str(EVENT), "\t", 1, "")
    assert store.writes == 0 and seats.calls == []


async def test_event_service_down_leaves_the_booking_pending(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    seats.up = False
    with pytest.raises(EventServiceUnavailable) as error:
        await service.create_booking(ALICE, str(EVENT), "", 1, "key")
    assert error.value.retry_after_seconds >= 1
    assert [b.status for b in store.rows.values()] == [BookingStatus.PENDING]
    seats.up = True
    retried = await service.create_booking(ALICE, str(EVENT), "", 1, "key")
    assert retried.id == uuid.UUID(error.value.metadata["booking_id"])
    assert retried.status is BookingStatus.CONFIRMED and seats.available[EVENT] == 2


async def test_a_retry_returns_the_first_outcome_without_booking_again(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    first = await service.create_booking(ALICE, str(EVENT), "", 1, "key")
    again = await service.create_booking(ALICE, str(EVENT), "", 1, "key")
    assert again == first and len(store.rows) == 1 and seats.available[EVENT] == 2
    with pytest.raises(IdempotencyKeyReused):
        await service.create_booking(ALICE, str(EVENT), "", 2, "key")


async def test_cancel_gives_seats_back_once(service: BookingService, seats: FakeSeats) -> None:
    booking = await service.create_booking(ALICE, str(EVENT), "", 2, "")
    cancelled = await service.cancel_booking(ALICE, str(booking.id))
    assert cancelled.status is BookingStatus.CANCELLED and seats.available[EVENT] == 3
    again = await service.cancel_booking(ALICE, str(booking.id))
    assert again.status is BookingStatus.CANCELLED and seats.calls.count("release") == 1


async def test_a_rejected_booking_cannot_be_cancelled(service: BookingService) -> None:
    with pytest.raises(SoldOut) as error:
        await service.create_booking(ALICE, str(EVENT), "", 4, "")
    with pytest.raises(NotCancellable):
        await service.cancel_booking(ALICE, error.value.metadata["booking_id"])


async def test_reconciler_confirms_a_pending_booking_whose_seats_are_reserved(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    seats.up = False
    with pytest.raises(EventServiceUnavailable) as error:
        await service.create_booking(ALICE, str(EVENT), "", 1, "")
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
        await service.create_booking(ALICE, str(EVENT), "", 1, "key")
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
        await service.create_booking(ALICE, str(EVENT), "", 1, "key")
    assert seats.available[EVENT] == 3


async def test_reconciler_finishes_a_half_done_cancel(
    store: FakeStore, seats: FakeSeats, service: BookingService
) -> None:
    booking = await service.create_booking(ALICE, str(EVENT), "", 2, "")
    await store.transition(booking.id, [BookingStatus.CONFIRMED], BookingStatus.CANCELLING)
    assert await reconciler(store, seats).run_once() == 1
    assert store.rows[booking.id].status is BookingStatus.CANCELLED and seats.available[EVENT] == 3


async def test_reconciler_leaves_bookings_for_later_while_the_event_service_is_down(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    seats.up = False
    with pytest.raises(EventServiceUnavailable):
        await service.create_booking(ALICE, str(EVENT), "", 1, "")
    assert await reconciler(store, seats).run_once() == 0
    assert [b.status for b in store.rows.values()] == [BookingStatus.PENDING]


async def test_concurrent_requests_share_one_batch_and_the_earliest_get_the_last_seats(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    results = await asyncio.gather(
        *(service.create_booking(Principal(f"user-{n}"), str(EVENT), "", 1, "") for n in range(6)),
        return_exceptions=True,
    )
    assert [isinstance(r, Booking) for r in results] == [True] * 3 + [False] * 3
    assert all(isinstance(r, SoldOut) for r in results[3:])
    # All six are queued before the first batch starts: one INSERT, one reservation call, one UPDATE.
    assert seats.batches == [6] and store.statements == 2


async def test_duplicates_within_a_batch_reserve_once(service: BookingService, seats: FakeSeats) -> None:
    first, *again = await asyncio.gather(*(service.create_booking(ALICE, str(EVENT), "", 2, "key") for _ in range(4)))
    assert all(b == first for b in again)
    assert seats.available[EVENT] == 1 and sum(seats.batches) == 1


async def test_an_unreachable_event_service_fails_only_the_unsettled_requests(
    service: BookingService, seats: FakeSeats
) -> None:
    settled = await service.create_booking(ALICE, str(EVENT), "", 1, "settled")
    seats.up = False
    results = await asyncio.gather(
        service.create_booking(ALICE, str(EVENT), "", 1, "settled"),
        service.create_booking(BOB, str(EVENT), "", 1, "new"),
        return_exceptions=True,
    )
    assert results[0] == settled and isinstance(results[1], EventServiceUnavailable)


async def test_another_users_booking_does_not_exist_for_them(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    booking = await service.create_booking(ALICE, str(EVENT), "", 1, "")
    for call in (service.get_booking, service.cancel_booking):
        with pytest.raises(BookingNotFound) as error:
            await call(BOB, str(booking.id))
        assert error.value.message == f"booking {booking.id} not found"
    assert store.rows[booking.id].status is BookingStatus.CONFIRMED and seats.calls.count("release") == 0


async def test_an_admin_sees_and_cancels_anyones_booking(service: BookingService) -> None:
    booking = await service.create_booking(ALICE, str(EVENT), "", 1, "")
    assert await service.get_booking(ADMIN, str(booking.id)) == booking
    assert (await service.cancel_booking(ADMIN, str(booking.id))).status is BookingStatus.CANCELLED


async def test_an_admin_books_on_behalf_of_a_user_and_nobody_else_does(
    service: BookingService, store: FakeStore
) -> None:
    booking = await service.create_booking(ADMIN, str(EVENT), "alice", 1, "")
    assert booking.user_id == "alice"
    with pytest.raises(PermissionDenied):
        await service.create_booking(BOB, str(EVENT), "alice", 1, "")
    assert len(store.rows) == 1


async def test_users_list_their_own_bookings_and_admins_anyones(service: BookingService) -> None:
    mine = await service.create_booking(ALICE, str(EVENT), "", 1, "")
    assert [b.id for b in (await service.list_user_bookings(ALICE, "me", 0, "")).bookings] == [mine.id]
    assert [b.id for b in (await service.list_user_bookings(ADMIN, "alice", 0, "")).bookings] == [mine.id]
    with pytest.raises(PermissionDenied):
        await service.list_user_bookings(BOB, "alice", 0, "")


async def test_a_user_cannot_hold_more_than_the_cap_of_one_event(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    seats.available[EVENT] = 100
    first = await service.create_booking(ALICE, str(EVENT), "", 3, "")
    with pytest.raises(UserLimitReached) as error:
        await service.create_booking(ALICE, str(EVENT), "", 2, "over")
    assert error.value.metadata["limit"] == "4" and seats.available[EVENT] == 97
    # The refusal is the request's outcome: a retry gets it again, and takes nothing.
    with pytest.raises(UserLimitReached):
        await service.create_booking(ALICE, str(EVENT), "", 2, "over")
    assert (await service.create_booking(BOB, str(EVENT), "", 2, "")).status is BookingStatus.CONFIRMED
    # Cancelled seats no longer count.
    await service.cancel_booking(ALICE, str(first.id))
    assert (await service.create_booking(ALICE, str(EVENT), "", 4, "")).status is BookingStatus.CONFIRMED


async def test_concurrent_requests_of_one_user_never_pass_the_cap(service: BookingService, seats: FakeSeats) -> None:
    seats.available[EVENT] = 100
    results = await asyncio.gather(
        *(service.create_booking(ALICE, str(EVENT), "", 1, "") for _ in range(10)), return_exceptions=True
    )
    assert sum(isinstance(r, Booking) for r in results) == 4
    assert all(isinstance(r, UserLimitReached) for r in results if not isinstance(r, Booking))
    assert seats.available[EVENT] == 96


# Holds, confirmation, expiry and event cancellation.


def sweeper(store: FakeStore, seats: FakeSeats) -> HoldSweeper:
    return HoldSweeper(store, seats, batch=2)


def follower(store: FakeStore, seats: FakeSeats, chunk: int = 200) -> CancellationFollower:
    return CancellationFollower(store, seats, chunk=chunk)


async def test_a_hold_is_held_until_its_expire_time_and_takes_the_seats(
    service: BookingService, seats: FakeSeats
) -> None:
    held = await service.create_booking(ALICE, str(EVENT), "", 2, "", hold=True)
    assert held.status is BookingStatus.HELD and held.hold and held.expire_time is not None
    assert held.expire_time - held.create_time == timedelta(seconds=60)
    assert seats.available[EVENT] == 1


async def test_confirming_a_hold_confirms_it_once(service: BookingService, seats: FakeSeats) -> None:
    held = await service.create_booking(ALICE, str(EVENT), "", 2, "", hold=True)
    confirmed = await service.confirm_booking(ALICE, str(held.id))
    assert confirmed.status is BookingStatus.CONFIRMED
    assert await service.confirm_booking(ALICE, str(held.id)) == confirmed
    assert seats.available[EVENT] == 1 and seats.calls == ["reserve"]


async def test_a_hold_that_ran_out_cannot_be_confirmed(service: BookingService, store: FakeStore) -> None:
    held = await service.create_booking(ALICE, str(EVENT), "", 1, "", hold=True)
    store.run_out(held.id)
    with pytest.raises(HoldExpired):
        await service.confirm_booking(ALICE, str(held.id))
    assert store.rows[held.id].status is BookingStatus.HELD  # the sweeper expires it, not the confirm


async def test_only_a_hold_is_confirmable(service: BookingService) -> None:
    booking = await service.create_booking(ALICE, str(EVENT), "", 1, "")
    assert (await service.confirm_booking(ALICE, str(booking.id))).status is BookingStatus.CONFIRMED
    cancelled = await service.cancel_booking(ALICE, str(booking.id))
    with pytest.raises(NotConfirmable) as error:
        await service.confirm_booking(ALICE, str(cancelled.id))
    assert error.value.metadata["status"] == "CANCELLED"


async def test_another_users_hold_cannot_be_confirmed_and_nothing_is_written(
    service: BookingService, store: FakeStore
) -> None:
    held = await service.create_booking(ALICE, str(EVENT), "", 1, "", hold=True)
    writes = store.writes
    with pytest.raises(BookingNotFound):
        await service.confirm_booking(BOB, str(held.id))
    assert store.writes == writes and store.rows[held.id].status is BookingStatus.HELD
    assert (await service.confirm_booking(ADMIN, str(held.id))).status is BookingStatus.CONFIRMED


async def test_an_expired_hold_gives_its_seats_back_once(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    holds = [await service.create_booking(Principal(f"u{n}"), str(EVENT), "", 1, "", hold=True) for n in range(3)]
    for held in holds:
        store.run_out(held.id)
    assert seats.available[EVENT] == 0
    # Batches of two: one round takes them all.
    assert await sweeper(store, seats).run_once() == 3
    assert [store.rows[h.id].status for h in holds] == [BookingStatus.EXPIRED] * 3
    assert seats.available[EVENT] == 3 and seats.calls.count("release") == 3
    assert await sweeper(store, seats).run_once() == 0 and seats.calls.count("release") == 3
    with pytest.raises(HoldExpired):
        await service.confirm_booking(Principal("u0"), str(holds[0].id))


async def test_a_slow_release_never_keeps_the_next_due_holds_held(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    first = await service.create_booking(ALICE, str(EVENT), "", 1, "", hold=True)
    second = await service.create_booking(BOB, str(EVENT), "", 1, "", hold=True)
    # The event service answers releases only when let go (a slow or restarting one).
    answer = asyncio.Event()
    release = seats.release

    async def slow_release(booking_id: uuid.UUID) -> SeatAnswer:
        await answer.wait()
        return await release(booking_id)

    seats.release = slow_release  # type: ignore[method-assign]
    sweep = sweeper(store, seats)
    store.run_out(first.id)
    await sweep.tick()
    store.run_out(second.id)
    await asyncio.wait_for(sweep.tick(), timeout=1)  # not held up by the first round's release
    assert {store.rows[b.id].status for b in (first, second)} == {BookingStatus.EXPIRING}
    answer.set()
    for _ in range(100):
        await asyncio.sleep(0)
    assert {store.rows[b.id].status for b in (first, second)} == {BookingStatus.EXPIRED}
    assert seats.available[EVENT] == 3
    await sweep.close()


async def test_closing_the_sweeper_leaves_unreleased_holds_expiring_for_the_reconciler(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    held = await service.create_booking(ALICE, str(EVENT), "", 1, "", hold=True)
    never = asyncio.Event()

    async def stuck_release(booking_id: uuid.UUID) -> SeatAnswer:
        await never.wait()
        raise AssertionError("unreachable")

    release = seats.release
    seats.release = stuck_release  # type: ignore[method-assign]
    sweep = sweeper(store, seats)
    store.run_out(held.id)
    await sweep.tick()
    await asyncio.wait_for(sweep.close(), timeout=1)
    assert store.rows[held.id].status is BookingStatus.EXPIRING
    seats.release = release  # type: ignore[method-assign]
    assert await reconciler(store, seats).run_once() == 1
    assert store.rows[held.id].status is BookingStatus.EXPIRED and seats.available[EVENT] == 3


async def test_a_running_hold_is_not_swept(service: BookingService, store: FakeStore, seats: FakeSeats) -> None:
    held = await service.create_booking(ALICE, str(EVENT), "", 1, "", hold=True)
    assert await sweeper(store, seats).run_once() == 0
    assert store.rows[held.id].status is BookingStatus.HELD


async def test_expiry_with_the_event_service_down_is_finished_by_the_reconciler(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    held = await service.create_booking(ALICE, str(EVENT), "", 2, "", hold=True)
    store.run_out(held.id)
    seats.up = False
    assert await sweeper(store, seats).run_once() == 0
    assert store.rows[held.id].status is BookingStatus.EXPIRING
    with pytest.raises(HoldExpired):
        await service.confirm_booking(ALICE, str(held.id))
    seats.up = True
    assert await reconciler(store, seats).run_once() == 1
    assert store.rows[held.id].status is BookingStatus.EXPIRED and seats.available[EVENT] == 3


async def test_cancelling_a_hold_releases_it_and_an_expired_one_is_returned_as_it_is(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    held = await service.create_booking(ALICE, str(EVENT), "", 2, "", hold=True)
    cancelled = await service.cancel_booking(ALICE, str(held.id))
    assert cancelled.status is BookingStatus.CANCELLED and seats.available[EVENT] == 3
    other = await service.create_booking(ALICE, str(EVENT), "", 1, "", hold=True)
    store.run_out(other.id)
    await sweeper(store, seats).run_once()
    releases = seats.calls.count("release")
    assert (await service.cancel_booking(ALICE, str(other.id))).status is BookingStatus.EXPIRED
    assert seats.calls.count("release") == releases


async def test_a_hold_retried_with_its_key_is_the_same_hold(service: BookingService, seats: FakeSeats) -> None:
    first = await service.create_booking(ALICE, str(EVENT), "", 1, "key", hold=True)
    assert await service.create_booking(ALICE, str(EVENT), "", 1, "key", hold=True) == first
    with pytest.raises(IdempotencyKeyReused):
        await service.create_booking(ALICE, str(EVENT), "", 1, "key")
    assert seats.available[EVENT] == 2


async def test_held_seats_count_against_the_cap(service: BookingService, seats: FakeSeats) -> None:
    seats.available[EVENT] = 100
    await service.create_booking(ALICE, str(EVENT), "", 3, "", hold=True)
    with pytest.raises(UserLimitReached):
        await service.create_booking(ALICE, str(EVENT), "", 2, "")


async def test_before_the_sales_start_every_answer_names_it(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    seats.not_on_sale[EVENT] = "2027-01-01T10:00:00Z"
    for _ in range(2):  # the first answer, then a retry with the key
        with pytest.raises(SalesNotStarted) as error:
            await service.create_booking(ALICE, str(EVENT), "", 1, "early")
        assert error.value.metadata["sales_start_time"] == "2027-01-01T10:00:00Z"
    [booking] = store.rows.values()
    assert (booking.status, booking.reject_reason) == (BookingStatus.REJECTED, RejectReason.SALES_NOT_STARTED)
    assert seats.available[EVENT] == 3


async def test_a_cancelled_event_refuses_bookings(service: BookingService, seats: FakeSeats) -> None:
    seats.cancel_event(EVENT)
    with pytest.raises(EventCancelled):
        await service.create_booking(ALICE, str(EVENT), "", 1, "")


async def test_an_event_cancellation_cancels_its_confirmed_and_held_bookings(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    seats.available[EVENT] = 100
    confirmed = [await service.create_booking(Principal(f"u{n}"), str(EVENT), "", 1, "") for n in range(3)]
    held = [await service.create_booking(Principal(f"h{n}"), str(EVENT), "", 1, "", hold=True) for n in range(2)]
    seats.cancel_event(EVENT)
    cancelled: list[int] = []
    sweep = CancellationFollower(store, seats, chunk=2, on_cancelled=cancelled.append)
    assert await sweep.run_once() == 5
    assert cancelled == [2, 2, 1]  # chunks of two, until one changes nothing
    for booking in confirmed + held:
        row = store.rows[booking.id]
        assert (row.status, row.cancel_reason) == (BookingStatus.CANCELLED, CancelReason.EVENT_CANCELLED)
    assert store.cancelled[EVENT][1] is not None  # done
    assert seats.available[EVENT] == 100 and "release" not in seats.calls  # the event service gave them back
    with pytest.raises(EventCancelled):
        await service.confirm_booking(Principal("h0"), str(held[0].id))
    assert await sweep.run_once() == 0


async def test_a_booking_settled_after_its_event_is_listed_cancelled_is_never_confirmed(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    seats.up = False
    with pytest.raises(EventServiceUnavailable) as error:
        await service.create_booking(ALICE, str(EVENT), "", 1, "key")
    booking_id = uuid.UUID(error.value.metadata["booking_id"])
    seats.up = True
    assert seats.reserve_one(booking_id, EVENT, 1) is SeatOutcome.RESERVED  # it landed before the cancellation...
    await store.record_cancelled([(EVENT, datetime.now(UTC))])  # ...and the event is listed cancelled
    # The event is not done while the booking is PENDING.
    assert not await store.finish_cancelled(EVENT)
    assert await reconciler(store, seats).run_once() == 1
    row = store.rows[booking_id]
    assert (row.status, row.cancel_reason) == (BookingStatus.CANCELLED, CancelReason.EVENT_CANCELLED)
    assert await store.finish_cancelled(EVENT)


async def test_a_held_booking_of_a_listed_cancelled_event_cannot_be_confirmed(
    service: BookingService, store: FakeStore
) -> None:
    held = await service.create_booking(ALICE, str(EVENT), "", 1, "", hold=True)
    await store.record_cancelled([(EVENT, datetime.now(UTC))])
    with pytest.raises(EventCancelled):
        await service.confirm_booking(ALICE, str(held.id))
    assert store.rows[held.id].status is BookingStatus.HELD


async def test_the_follower_sweeps_listed_events_while_the_event_service_is_down(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    booking = await service.create_booking(ALICE, str(EVENT), "", 1, "")
    await store.record_cancelled([(EVENT, datetime.now(UTC))])
    seats.up = False
    assert await follower(store, seats).run_once() == 1
    assert store.rows[booking.id].status is BookingStatus.CANCELLED


async def test_the_follower_asks_from_ten_minutes_before_the_latest_cancel(store: FakeStore, seats: FakeSeats) -> None:
    asked: list[datetime | None] = []

    class Events:
        async def cancelled_events(self, after: datetime | None) -> list[tuple[uuid.UUID, datetime]]:
            asked.append(after)
            return []

    latest = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
    sweep = CancellationFollower(store, Events())
    await sweep.run_once()
    await store.record_cancelled([(uuid.uuid4(), latest - timedelta(hours=1)), (uuid.uuid4(), latest)])
    await sweep.run_once()
    assert asked == [None, latest - timedelta(minutes=10)]


async def test_the_reconciler_settles_a_pending_hold_held(
    service: BookingService, store: FakeStore, seats: FakeSeats
) -> None:
    seats.up = False
    with pytest.raises(EventServiceUnavailable) as error:
        await service.create_booking(ALICE, str(EVENT), "", 1, "", hold=True)
    booking_id = uuid.UUID(error.value.metadata["booking_id"])
    seats.up = True
    seats.reserve_one(booking_id, EVENT, 1)
    assert await reconciler(store, seats).run_once() == 1
    assert store.rows[booking_id].status is BookingStatus.HELD
    assert (await service.confirm_booking(ALICE, str(booking_id))).status is BookingStatus.CONFIRMED
