"""Waiting lists on in-memory fakes: who may join, leave and list (others are refused with
nothing read or written), the per-user cap before the event service is asked, the event
service's refusals passed on with their reason and facts, and offers as holds: recorded once,
confirmed, declined, expired (the seats go to the next entry) like any other hold."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from booking_service.answers import EventCancelled, SalesNotStarted, UserLimitReached
from booking_service.domain import Booking, BookingStatus, CancelReason, Limits, RejectReason, SeatOutcome
from booking_service.event_cancellation import CancellationFollower
from booking_service.fakes import FakeSeats, FakeStore
from booking_service.holds import HoldSweeper
from booking_service.service import BookingService
from booking_service.waitlist import WaitlistEntry, WaitlistState, decide_offers
from booking_service.waitlist_answers import SeatsAvailable, WaitlistEntryNotFound, WaitlistUnavailable
from booking_service.waitlist_offers import OfferFollower
from booking_service.waitlist_service import WaitlistService
from service_runtime.auth.errors import PermissionDenied
from service_runtime.auth.principal import Principal
from service_runtime.errors import InvalidArgument
from service_runtime.tasks import DetachedTasks

EVENT = uuid.uuid4()
ALICE = Principal("alice")
BOB = Principal("bob")
ADMIN = Principal("root", is_admin=True)
LIMITS = Limits(max_seats_per_booking=5, max_seats_per_user_per_event=6)
TTL = timedelta(minutes=30)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def seats() -> FakeSeats:
    return FakeSeats({EVENT: 4})


@pytest.fixture
def lists(store: FakeStore, seats: FakeSeats) -> WaitlistService:
    return WaitlistService(store, seats, LIMITS, retry_after=timedelta(seconds=7))


@pytest.fixture
def bookings(store: FakeStore, seats: FakeSeats) -> BookingService:
    return BookingService(store, seats, LIMITS, DetachedTasks(), hold_ttl=timedelta(seconds=60))


@pytest.fixture
def follower(store: FakeStore, seats: FakeSeats) -> OfferFollower:
    return OfferFollower(store, seats, user_limit=LIMITS.max_seats_per_user_per_event, ttl=TTL, page=2)


async def _sold_out(bookings: BookingService) -> Booking:
    return await bookings.create_booking(Principal("early"), str(EVENT), "", 4, "")


async def test_joining_a_sold_out_event_waits_and_joining_again_returns_the_same_entry(
    lists: WaitlistService, bookings: BookingService
) -> None:
    await _sold_out(bookings)
    joined = await lists.join(ALICE, str(EVENT), "", 2)
    assert joined.created and joined.entry.state is WaitlistState.WAITING and joined.entry.position == 1
    assert (joined.entry.user_id, joined.entry.seats) == ("alice", 2)
    again = await lists.join(ALICE, str(EVENT), "", 3)  # seats of a repeat are ignored
    assert not again.created and again.entry.id == joined.entry.id and again.entry.seats == 2
    second = await lists.join(BOB, str(EVENT), "", 0)  # 0 seats mean 1
    assert second.entry.seats == 1 and second.entry.position == 2


async def test_joining_while_seats_can_be_booked_answers_seats_available_with_the_count(
    lists: WaitlistService,
) -> None:
    with pytest.raises(SeatsAvailable) as error:
        await lists.join(ALICE, str(EVENT), "", 2)
    assert error.value.metadata == {"available_seats": "4"}


async def test_the_event_services_refusals_keep_their_reason_and_facts(
    lists: WaitlistService, seats: FakeSeats
) -> None:
    seats.not_on_sale[EVENT] = "2027-01-01T10:00:00Z"
    with pytest.raises(SalesNotStarted) as not_started:
        await lists.join(ALICE, str(EVENT), "", 1)
    assert not_started.value.metadata == {"sales_start_time": "2027-01-01T10:00:00Z"}
    seats.cancel_event(EVENT)
    with pytest.raises(EventCancelled):
        await lists.join(ALICE, str(EVENT), "", 1)
    with pytest.raises(WaitlistEntryNotFound):
        await lists.leave(ALICE, str(EVENT), "")


async def test_the_cap_counts_what_the_user_holds_and_refuses_before_asking_the_event_service(
    lists: WaitlistService, bookings: BookingService, seats: FakeSeats
) -> None:
    await bookings.create_booking(ALICE, str(EVENT), "", 4, "")
    calls = list(seats.calls)
    with pytest.raises(UserLimitReached) as error:
        await lists.join(ALICE, str(EVENT), "", 3)
    assert error.value.metadata == {"event_id": str(EVENT), "limit": "6", "held_seats": "4"}
    assert seats.calls == calls and seats.entries == []
    assert (await lists.join(ALICE, str(EVENT), "", 2)).created


async def test_only_an_admin_acts_for_another_user_and_nothing_is_asked_otherwise(
    lists: WaitlistService, bookings: BookingService, seats: FakeSeats, store: FakeStore
) -> None:
    await _sold_out(bookings)
    calls, writes = list(seats.calls), store.writes
    with pytest.raises(PermissionDenied):
        await lists.join(BOB, str(EVENT), "alice", 1)
    with pytest.raises(PermissionDenied):
        await lists.leave(BOB, str(EVENT), "alice")
    with pytest.raises(PermissionDenied):
        await lists.list_user(BOB, "alice", 0, "")
    with pytest.raises(InvalidArgument):
        await lists.join(ALICE, "not-a-uuid", "", 1)
    with pytest.raises(InvalidArgument):
        await lists.join(ALICE, str(EVENT), "", LIMITS.max_seats_per_booking + 1)
    assert seats.calls == calls and seats.entries == [] and store.writes == writes
    joined = await lists.join(ADMIN, str(EVENT), "alice", 1)
    assert joined.entry.user_id == "alice"
    assert (await lists.list_user(ADMIN, "alice", 0, "")).entries == [joined.entry]
    left = await lists.leave(ADMIN, str(EVENT), "alice")
    assert left.state is WaitlistState.LEFT and left.position == 0


async def test_leaving_twice_returns_the_left_entry_and_a_user_lists_their_entries_newest_first(
    lists: WaitlistService, bookings: BookingService, seats: FakeSeats
) -> None:
    other = uuid.uuid4()
    seats.available[other] = 0
    await _sold_out(bookings)
    first = await lists.join(ALICE, str(EVENT), "", 1)
    second = await lists.join(ALICE, str(other), "", 1)
    left = await lists.leave(ALICE, str(EVENT), "")
    assert left.id == first.entry.id and left.state is WaitlistState.LEFT
    assert await lists.leave(ALICE, str(EVENT), "") == left
    page = await lists.list_user(ALICE, "me", 1, "")
    assert [e.id for e in page.entries] == [second.entry.id] and page.next_page_token
    rest = await lists.list_user(ALICE, "alice", 1, page.next_page_token)
    assert [e.id for e in rest.entries] == [first.entry.id] and not rest.next_page_token


async def test_an_unreachable_event_service_answers_unavailable_with_retry_after(
    lists: WaitlistService, seats: FakeSeats
) -> None:
    seats.up = False
    for call in (
        lists.join(ALICE, str(EVENT), "", 1),
        lists.leave(ALICE, str(EVENT), ""),
        lists.list_user(ALICE, "me", 0, ""),
    ):
        with pytest.raises(WaitlistUnavailable) as error:
            await call
        assert error.value.retry_after_seconds == 7


def _offer(user: str, seats: int, event: uuid.UUID = EVENT) -> WaitlistEntry:
    now = datetime.now(UTC)
    return WaitlistEntry(uuid.uuid4(), event, user, seats, WaitlistState.OFFERED, 0, now, now, now, uuid.uuid4())


def test_offers_are_decided_in_order_against_the_cap_and_the_cancelled_events() -> None:
    cancelled = uuid.uuid4()
    offers = [_offer("alice", 2), _offer("alice", 3), _offer("bob", 1, cancelled), _offer("alice", 1)]
    outcomes = decide_offers(offers, {("alice", EVENT): 2}, {cancelled}, limit=6)
    assert outcomes == [BookingStatus.HELD, BookingStatus.REJECTED, BookingStatus.CANCELLED, BookingStatus.HELD]


async def test_a_returned_seat_is_offered_recorded_held_once_and_confirmed(
    lists: WaitlistService, bookings: BookingService, seats: FakeSeats, store: FakeStore, follower: OfferFollower
) -> None:
    early = await _sold_out(bookings)
    await lists.join(ALICE, str(EVENT), "", 2)
    await bookings.cancel_booking(Principal("early"), str(early.id))
    [entry] = [e for e in seats.entries if e.user_id == "alice"]
    assert entry.state is WaitlistState.OFFERED and seats.available[EVENT] == 2
    assert await follower.run_once() == 1
    assert await follower.run_once() == 0 and seats.acknowledged == {entry.booking_id}
    offer = await bookings.get_booking(ALICE, str(entry.booking_id))
    assert (offer.status, offer.hold, offer.waitlist_entry_id) == (BookingStatus.HELD, True, entry.id)
    assert offer.expire_time == offer.create_time + TTL
    confirmed = await bookings.confirm_booking(ALICE, str(offer.id))
    assert confirmed.status is BookingStatus.CONFIRMED


async def test_an_offer_that_runs_out_or_is_declined_goes_to_the_next_entry_that_fits(
    lists: WaitlistService, bookings: BookingService, seats: FakeSeats, store: FakeStore, follower: OfferFollower
) -> None:
    early = await _sold_out(bookings)
    await lists.join(ALICE, str(EVENT), "", 4)
    await lists.join(BOB, str(EVENT), "", 5)  # too big for the event's 4 seats: keeps its place
    await lists.join(Principal("carol"), str(EVENT), "", 3)
    await bookings.cancel_booking(Principal("early"), str(early.id))
    await follower.run_once()
    [alice_offer] = [b for b in store.rows.values() if b.user_id == "alice"]
    store.run_out(alice_offer.id)
    assert await HoldSweeper(store, seats).run_once() == 1
    await follower.run_once()
    [carol_offer] = [b for b in store.rows.values() if b.user_id == "carol"]
    assert carol_offer.status is BookingStatus.HELD and seats.available[EVENT] == 1
    declined = await bookings.cancel_booking(Principal("carol"), str(carol_offer.id))
    assert declined.status is BookingStatus.CANCELLED and seats.available[EVENT] == 4
    assert [e.state for e in seats.entries] == [WaitlistState.OFFERED, WaitlistState.WAITING, WaitlistState.OFFERED]


async def test_an_offer_past_the_cap_is_rejected_and_its_seats_go_to_the_next_entry(
    lists: WaitlistService, bookings: BookingService, seats: FakeSeats, store: FakeStore, follower: OfferFollower
) -> None:
    early = await _sold_out(bookings)
    await lists.join(ALICE, str(EVENT), "", 3)
    await lists.join(BOB, str(EVENT), "", 3)
    # Alice came to hold 4 seats of the event since she joined (say an admin booked them for
    # her): 4 + 3 is past the cap of 6.
    mine = uuid.uuid4()
    store.rows[mine] = Booking(
        mine, "alice", EVENT, 4, BookingStatus.CONFIRMED, None, None, None, early.create_time, early.create_time
    )
    await bookings.cancel_booking(Principal("early"), str(early.id))
    assert await follower.run_once() == 1  # alice's offer, rejected and released...
    assert await follower.run_once() == 1  # ...so bob's, made by that release
    by_user = {b.user_id: b for b in store.rows.values() if b.waitlist_entry_id is not None}
    assert by_user["alice"].status is BookingStatus.REJECTED
    assert by_user["alice"].reject_reason is RejectReason.USER_LIMIT_REACHED
    assert seats.records[by_user["alice"].id][0] is SeatOutcome.RELEASED
    assert by_user["bob"].status is BookingStatus.HELD


async def test_an_offer_of_a_cancelled_event_is_recorded_cancelled_and_held_ones_are_cancelled_with_it(
    lists: WaitlistService, bookings: BookingService, seats: FakeSeats, store: FakeStore, follower: OfferFollower
) -> None:
    early = await _sold_out(bookings)
    await lists.join(ALICE, str(EVENT), "", 1)
    await lists.join(BOB, str(EVENT), "", 1)
    await bookings.cancel_booking(Principal("early"), str(early.id))
    [alice_offer, bob_offer] = await seats.waitlist_offers(10)
    await follower.run_once()  # both recorded HELD... then the event is cancelled
    seats.cancel_event(EVENT)
    await CancellationFollower(store, seats).run_once()
    for offer in (alice_offer, bob_offer):
        assert offer.booking_id is not None
        booking = store.rows[offer.booking_id]
        assert (booking.status, booking.cancel_reason) == (BookingStatus.CANCELLED, CancelReason.EVENT_CANCELLED)
    # An offer the follower first sees once the event is known cancelled is recorded CANCELLED.
    late = _offer("carol", 1)
    outcome = await store.record_offers([late], 6, TTL)
    assert late.booking_id is not None
    assert outcome.bookings[late.booking_id].cancel_reason is CancelReason.EVENT_CANCELLED


async def test_offers_wait_while_the_event_service_is_down(
    lists: WaitlistService, bookings: BookingService, seats: FakeSeats, store: FakeStore, follower: OfferFollower
) -> None:
    early = await _sold_out(bookings)
    await lists.join(ALICE, str(EVENT), "", 1)
    await bookings.cancel_booking(Principal("early"), str(early.id))
    seats.up = False
    assert await follower.run_once() == 0
    seats.up = True
    assert await follower.run_once() == 1
