"""Waiting lists against a real PostgreSQL: joining and leaving, offers made in the very
transaction that gives seats back (a release, an update, a join), cancellation closing the
list, no queue jumping on either reservation path, and races that end exact."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from event_service.changes import EventValues, event_update
from event_service.conftest import assert_waitlists_consistent
from event_service.domain import (
    Event,
    EventCancelled,
    EventNotFound,
    Limits,
    NewEvent,
    ReservationState,
    SalesEnded,
    SalesNotStarted,
    SeatRequest,
)
from event_service.repository import EventRepository
from event_service.waitlist import JoinRequest, SeatsAvailable, WaitlistEntry, WaitlistEntryNotFound, WaitlistState
from event_service.waitlist_repository import WaitlistRepository
from tools.audit.invariants import assert_seats_consistent

START = datetime(2027, 3, 1, 19, 30, tzinfo=UTC)
LIMITS = Limits(max_total_seats=100_000, max_seats_per_booking=10)


class Offers:
    """What the repositories report as offered (the metrics hook)."""

    def __init__(self) -> None:
        self.made: list[WaitlistEntry] = []

    def __call__(self, offers: list[WaitlistEntry]) -> None:
        self.made += offers


@pytest.fixture
def offers() -> Offers:
    return Offers()


@pytest.fixture
def repo(pool: AsyncConnectionPool, offers: Offers) -> EventRepository:
    return EventRepository(pool, offers)


@pytest.fixture
def lists(pool: AsyncConnectionPool, offers: Offers) -> WaitlistRepository:
    return WaitlistRepository(pool, offers)


async def _event(
    repo: EventRepository, seats: int, sales_start: datetime | None = None, sales_end: datetime | None = None
) -> Event:
    return await repo.create_event(NewEvent(uuid.uuid4(), "Concert", START, seats, sales_start, sales_end))


async def _sold_out(repo: EventRepository, seats: int, per_booking: int = 1) -> tuple[Event, list[uuid.UUID]]:
    """An event whose `seats` seats are all reserved, `per_booking` to a booking."""
    event = await _event(repo, seats)
    bookings = [uuid.uuid4() for _ in range(seats // per_booking)]
    await repo.reserve_batch([SeatRequest(b, event.id, per_booking) for b in bookings])
    assert (await _current(repo, event.id)).available_seats == 0
    return event, bookings


async def _current(repo: EventRepository, event_id: uuid.UUID) -> Event:
    event = await repo.get_event(event_id)
    assert event is not None
    return event


async def _join(lists: WaitlistRepository, event_id: uuid.UUID, user: str, seats: int) -> WaitlistEntry:
    joined = await lists.join(JoinRequest(event_id, user, seats))
    assert joined.created
    return joined.entry


async def _by_user(lists: WaitlistRepository, event_id: uuid.UUID) -> dict[str, WaitlistEntry]:
    entries = await lists.list_for_event(event_id, 1000, None)
    assert entries is not None
    return {e.user_id: e for e in entries}


def _count(dsn: str, query: str, *params: object) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def _consistent(dsn: str) -> None:
    assert_seats_consistent(dsn)
    assert_waitlists_consistent(dsn)


# --- Joining and leaving -----------------------------------------------------------------------


async def test_joining_a_sold_out_event_waits_in_join_order(
    repo: EventRepository, lists: WaitlistRepository, dsn: str
) -> None:
    event, _ = await _sold_out(repo, 4)
    first = await _join(lists, event.id, "alice", 2)
    second = await _join(lists, event.id, "bob", 1)
    assert (first.state, first.position, first.booking_id) == (WaitlistState.WAITING, 1, None)
    assert (second.state, second.position) == (WaitlistState.WAITING, 2)
    assert first.create_time < second.create_time and first.seq < second.seq
    assert (await _current(repo, event.id)).waitlist_size == 2
    _consistent(dsn)


async def test_joining_twice_returns_the_entry_and_adds_nothing(
    repo: EventRepository, lists: WaitlistRepository, dsn: str
) -> None:
    event, _ = await _sold_out(repo, 2)
    first = await _join(lists, event.id, "alice", 2)
    again = await lists.join(JoinRequest(event.id, "alice", 5))
    assert not again.created
    assert again.entry == first  # the seats of the repeat are ignored
    assert (await _current(repo, event.id)).waitlist_size == 1
    _consistent(dsn)


async def test_racing_joins_of_one_user_put_them_on_the_list_once(
    repo: EventRepository, lists: WaitlistRepository, dsn: str
) -> None:
    event, _ = await _sold_out(repo, 2)
    results = await asyncio.gather(*(lists.join(JoinRequest(event.id, "alice", 1)) for _ in range(10)))
    assert sum(r.created for r in results) == 1
    assert len({r.entry.id for r in results}) == 1
    assert (await _current(repo, event.id)).waitlist_size == 1
    _consistent(dsn)


async def test_joining_while_seats_can_be_booked_is_refused_and_writes_nothing(
    repo: EventRepository, lists: WaitlistRepository, dsn: str
) -> None:
    event = await _event(repo, 3)
    with pytest.raises(SeatsAvailable) as error:
        await lists.join(JoinRequest(event.id, "alice", 3))
    assert error.value.metadata["available_seats"] == "3"
    # Asking for more than is left is waiting for seats.
    assert (await lists.join(JoinRequest(event.id, "alice", 4))).entry.state is WaitlistState.WAITING
    assert _count(dsn, "SELECT count(*) FROM waitlist_entries") == 1
    _consistent(dsn)


async def test_joining_an_event_not_on_sale_or_unknown_is_refused_and_writes_nothing(
    repo: EventRepository, lists: WaitlistRepository, dsn: str
) -> None:
    now = datetime.now(UTC)
    not_started = await _event(repo, 1, sales_start=now + timedelta(hours=1))
    ended = await _event(repo, 1, sales_start=now - timedelta(hours=2), sales_end=now - timedelta(hours=1))
    cancelled, _ = await _sold_out(repo, 1)
    await repo.cancel_event(cancelled.id)
    with pytest.raises(SalesNotStarted):
        await lists.join(JoinRequest(not_started.id, "alice", 2))
    with pytest.raises(SalesEnded):
        await lists.join(JoinRequest(ended.id, "alice", 2))
    with pytest.raises(EventCancelled):
        await lists.join(JoinRequest(cancelled.id, "alice", 2))
    with pytest.raises(EventNotFound):
        await lists.join(JoinRequest(uuid.uuid4(), "alice", 2))
    assert _count(dsn, "SELECT count(*) FROM waitlist_entries") == 0
    _consistent(dsn)


async def test_leaving_takes_the_user_off_the_list_once(
    repo: EventRepository, lists: WaitlistRepository, dsn: str
) -> None:
    event, _ = await _sold_out(repo, 2)
    alice = await _join(lists, event.id, "alice", 1)
    await _join(lists, event.id, "bob", 1)
    left = await lists.leave(event.id, "alice")
    assert left.left_now and left.entry.state is WaitlistState.LEFT and left.entry.position == 0
    assert left.entry.id == alice.id and left.entry.update_time > alice.update_time
    again = await lists.leave(event.id, "alice")
    assert not again.left_now and again.entry == left.entry
    assert (await _by_user(lists, event.id))["bob"].position == 1
    assert (await _current(repo, event.id)).waitlist_size == 1
    # Joining after leaving is a new entry, at the back.
    back = await _join(lists, event.id, "alice", 1)
    assert back.id != alice.id and back.position == 2
    _consistent(dsn)


async def test_leaving_a_list_one_never_joined_is_not_found(repo: EventRepository, lists: WaitlistRepository) -> None:
    event, _ = await _sold_out(repo, 1)
    with pytest.raises(WaitlistEntryNotFound):
        await lists.leave(event.id, "alice")
    with pytest.raises(EventNotFound):
        await lists.leave(uuid.uuid4(), "alice")


# --- Offers ------------------------------------------------------------------------------------


async def test_a_release_offers_the_seats_first_fit_in_join_order_in_its_own_transaction(
    repo: EventRepository, lists: WaitlistRepository, offers: Offers, dsn: str
) -> None:
    event, bookings = await _sold_out(repo, 4, per_booking=2)
    for user, seats in (("big", 3), ("one", 1), ("two", 2), ("one more", 1)):
        await _join(lists, event.id, user, seats)
    released = await repo.release(bookings[0])  # 2 seats come back
    assert released.state is ReservationState.RELEASED
    entries = await _by_user(lists, event.id)
    # "big" does not fit in 2 and keeps its place; "one" fits; "two" no longer does; "one more" does.
    assert {u: e.state for u, e in entries.items()} == {
        "big": WaitlistState.WAITING,
        "one": WaitlistState.OFFERED,
        "two": WaitlistState.WAITING,
        "one more": WaitlistState.OFFERED,
    }
    assert (entries["big"].position, entries["two"].position) == (1, 2)
    offered = [entries["one"], entries["one more"]]
    assert [e.id for e in offers.made] == [e.id for e in offered]
    for entry in offered:
        assert entry.booking_id is not None and entry.offer_time is not None
        reservation = await repo.get_reservation(entry.booking_id)
        assert reservation is not None
        assert (reservation[0].state, reservation[0].event_id, reservation[0].seats) == (
            ReservationState.RESERVED,
            event.id,
            1,
        )
        assert reservation[0].create_time == entry.offer_time
    current = await _current(repo, event.id)
    assert (current.available_seats, current.waitlist_size) == (0, 2)
    _consistent(dsn)


async def test_a_released_offer_goes_to_the_next_entry_that_fits(
    repo: EventRepository, lists: WaitlistRepository, dsn: str
) -> None:
    event, bookings = await _sold_out(repo, 2)
    await _join(lists, event.id, "alice", 1)
    await _join(lists, event.id, "bob", 1)
    await repo.release(bookings[0])
    alice = (await _by_user(lists, event.id))["alice"]
    assert alice.state is WaitlistState.OFFERED and alice.booking_id is not None
    # Alice's hold runs out (or she declines): the booking service releases it.
    await repo.release(alice.booking_id)
    entries = await _by_user(lists, event.id)
    assert entries["alice"].state is WaitlistState.OFFERED  # her entry records what happened
    assert entries["bob"].state is WaitlistState.OFFERED
    assert (await _current(repo, event.id)).available_seats == 0
    # A release replayed gives nothing back twice, and offers nothing again.
    await repo.release(alice.booking_id)
    assert (await _current(repo, event.id)).available_seats == 0
    _consistent(dsn)


async def test_joining_behind_a_big_entry_with_seats_free_gets_them_at_once(
    repo: EventRepository, lists: WaitlistRepository, dsn: str
) -> None:
    event, bookings = await _sold_out(repo, 3)
    await _join(lists, event.id, "big", 3)
    await repo.release(bookings[0])  # 1 seat free, kept for the list: "big" does not fit
    assert (await _current(repo, event.id)).available_seats == 1
    joined = await lists.join(JoinRequest(event.id, "small", 1))
    assert joined.created and joined.entry.state is WaitlistState.OFFERED and joined.entry.position == 0
    current = await _current(repo, event.id)
    assert (current.available_seats, current.waitlist_size) == (0, 1)
    _consistent(dsn)


async def test_an_offered_user_joining_again_gets_the_offer_until_it_is_released(
    repo: EventRepository, lists: WaitlistRepository, dsn: str
) -> None:
    event, bookings = await _sold_out(repo, 1)
    await _join(lists, event.id, "alice", 1)
    await repo.release(bookings[0])
    offered = (await _by_user(lists, event.id))["alice"]
    again = await lists.join(JoinRequest(event.id, "alice", 1))
    assert not again.created and again.entry == offered
    assert offered.booking_id is not None
    await repo.release(offered.booking_id)
    # The offer let go, the seat is free to book (nobody waits): joining is refused.
    with pytest.raises(SeatsAvailable):
        await lists.join(JoinRequest(event.id, "alice", 1))
    _consistent(dsn)


async def test_adding_seats_offers_them_in_the_update(
    repo: EventRepository, lists: WaitlistRepository, dsn: str
) -> None:
    event, _ = await _sold_out(repo, 2)
    await _join(lists, event.id, "alice", 2)
    await _join(lists, event.id, "bob", 3)
    await _join(lists, event.id, "carol", 1)
    updated = await repo.update_event(event.id, event_update(EventValues(total_seats=5), ["total_seats"], LIMITS))
    assert updated is not None
    entries = await _by_user(lists, event.id)
    assert [entries[u].state for u in ("alice", "bob", "carol")] == [
        WaitlistState.OFFERED,
        WaitlistState.WAITING,
        WaitlistState.OFFERED,
    ]
    assert (updated.total_seats, updated.available_seats, updated.waitlist_size) == (5, 0, 1)
    _consistent(dsn)


async def test_no_offers_after_the_sales_end_until_the_window_reopens(
    repo: EventRepository, lists: WaitlistRepository, dsn: str
) -> None:
    event, bookings = await _sold_out(repo, 1)
    await _join(lists, event.id, "alice", 1)
    past = datetime.now(UTC) - timedelta(seconds=1)
    ended = event_update(EventValues(sales_end_time=past), ["sales_end_time"], LIMITS)
    await repo.update_event(event.id, ended)
    await repo.release(bookings[0])
    assert (await _by_user(lists, event.id))["alice"].state is WaitlistState.WAITING
    assert (await _current(repo, event.id)).available_seats == 1
    reopened = await repo.update_event(event.id, event_update(EventValues(), ["sales_end_time"], LIMITS))
    assert reopened is not None and (reopened.available_seats, reopened.waitlist_size) == (0, 0)
    assert (await _by_user(lists, event.id))["alice"].state is WaitlistState.OFFERED
    _consistent(dsn)


async def test_cancelling_closes_the_waiting_entries_and_releases_the_offers(
    repo: EventRepository, lists: WaitlistRepository, dsn: str
) -> None:
    event, bookings = await _sold_out(repo, 2)
    await _join(lists, event.id, "alice", 1)
    await _join(lists, event.id, "bob", 2)
    await repo.release(bookings[0])
    cancellation = await repo.cancel_event(event.id)
    assert cancellation is not None and cancellation.event.waitlist_size == 0
    assert cancellation.event.available_seats == 2
    entries = await _by_user(lists, event.id)
    assert (entries["alice"].state, entries["bob"].state) == (WaitlistState.OFFERED, WaitlistState.CLOSED)
    assert entries["bob"].update_time >= cancellation.event.update_time
    alice_booking = entries["alice"].booking_id
    assert alice_booking is not None
    reservation = await repo.get_reservation(alice_booking)
    assert reservation is not None and reservation[0].state is ReservationState.RELEASED
    # Leaving a closed list returns the entry as it is.
    left = await lists.leave(event.id, "bob")
    assert not left.left_now and left.entry.state is WaitlistState.CLOSED
    _consistent(dsn)


# --- No queue jumping --------------------------------------------------------------------------


async def _single(repo: EventRepository, request: SeatRequest) -> ReservationState:
    result = await repo.reserve(request)
    assert result is not None
    assert (result[1].available_seats, result[1].waitlist_size) == (0, 1)
    return result[0].state


async def _batch(repo: EventRepository, request: SeatRequest) -> ReservationState:
    [result] = await repo.reserve_batch([request])
    assert result is not None
    assert (result[1].available_seats, result[1].waitlist_size) == (0, 1)
    return result[0].state


Reserve = Callable[[EventRepository, SeatRequest], Awaitable[ReservationState]]


@pytest.mark.parametrize("reserve", [_single, _batch], ids=["single_statement", "batch"])
async def test_while_someone_waits_free_seats_are_sold_out_to_newcomers(
    repo: EventRepository, lists: WaitlistRepository, dsn: str, reserve: Reserve
) -> None:
    event, bookings = await _sold_out(repo, 3)
    await _join(lists, event.id, "big", 3)
    await repo.release(bookings[0])
    await repo.release(bookings[1])  # 2 seats free, kept for "big"
    assert await reserve(repo, SeatRequest(uuid.uuid4(), event.id, 1)) is ReservationState.SOLD_OUT
    current = await _current(repo, event.id)
    assert (current.available_seats, current.waitlist_size) == (2, 1)
    # Once "big" leaves, nobody waits: the seats are for sale again.
    await lists.leave(event.id, "big")
    result = await repo.reserve(SeatRequest(uuid.uuid4(), event.id, 2))
    assert result is not None and result[0].state is ReservationState.RESERVED
    _consistent(dsn)


# --- Races -------------------------------------------------------------------------------------


async def test_racing_releases_joins_and_leaves_offer_every_seat_once_in_order(
    repo: EventRepository, lists: WaitlistRepository, dsn: str
) -> None:
    rng = random.Random(14)
    event, bookings = await _sold_out(repo, 30)
    users = [f"user-{i}" for i in range(40)]

    async def join(user: str) -> None:
        # SeatsAvailable: nobody waiting and seats free at that instant; the user would book.
        with contextlib.suppress(SeatsAvailable):
            await lists.join(JoinRequest(event.id, user, rng.randint(1, 3)))

    async def leave(user: str) -> None:
        await asyncio.sleep(0.01)
        with contextlib.suppress(WaitlistEntryNotFound):
            await lists.leave(event.id, user)

    await asyncio.gather(
        *(join(u) for u in users),
        *(repo.release(b) for b in bookings[:20]),
        *(leave(u) for u in users[::7]),
        *(repo.reserve(SeatRequest(uuid.uuid4(), event.id, 1)) for _ in range(10)),
    )
    # Then the offers' holds expire or are declined, racing more releases.
    offered = [e for e in (await _by_user(lists, event.id)).values() if e.booking_id is not None]
    await asyncio.gather(
        *(repo.release(e.booking_id) for e in offered[::2] if e.booking_id is not None),
        *(repo.release(b) for b in bookings[20:]),
    )
    current = await _current(repo, event.id)
    reserved = _count(dsn, "SELECT coalesce(sum(seats), 0) FROM reservations WHERE state = 'RESERVED'")
    assert current.total_seats == current.available_seats + reserved
    assert _count(dsn, "SELECT count(DISTINCT booking_id) FROM waitlist_entries WHERE booking_id IS NOT NULL") == (
        _count(dsn, "SELECT count(*) FROM waitlist_entries WHERE state = 'OFFERED'")
    )
    assert _count(dsn, "SELECT count(*) FROM waitlist_entries WHERE state = 'OFFERED'") > 0
    _consistent(dsn)


# --- Lists -------------------------------------------------------------------------------------


async def test_a_users_entries_list_newest_first_with_positions(
    repo: EventRepository, lists: WaitlistRepository
) -> None:
    events = [(await _sold_out(repo, 1))[0] for _ in range(3)]
    await _join(lists, events[0].id, "bob", 1)
    for event in events:
        await _join(lists, event.id, "alice", 1)
    page = await lists.list_for_user("alice", 2, None)
    assert [e.event_id for e in page] == [events[2].id, events[1].id]
    assert [e.position for e in page] == [1, 1]
    rest = await lists.list_for_user("alice", 2, page[-1].seq)
    assert [(e.event_id, e.position) for e in rest] == [(events[0].id, 2)]


async def test_an_events_list_pages_in_join_order(repo: EventRepository, lists: WaitlistRepository) -> None:
    event, _ = await _sold_out(repo, 1)
    for i in range(5):
        await _join(lists, event.id, f"user-{i}", 1)
    await lists.leave(event.id, "user-1")
    first = await lists.list_for_event(event.id, 3, None)
    assert first is not None
    rest = await lists.list_for_event(event.id, 3, first[-1].seq)
    assert rest is not None
    assert [e.user_id for e in first + rest] == [f"user-{i}" for i in range(5)]
    assert [e.position for e in first + rest] == [1, 0, 2, 3, 4]
    assert await lists.list_for_event(uuid.uuid4(), 3, None) is None


async def test_offers_are_listed_until_acknowledged(repo: EventRepository, lists: WaitlistRepository) -> None:
    event, bookings = await _sold_out(repo, 3)
    for user in ("alice", "bob", "carol"):
        await _join(lists, event.id, user, 1)
    for booking in bookings:
        await repo.release(booking)
    listed = await lists.list_offers(10)
    assert [e.user_id for e in listed] == ["alice", "bob", "carol"]
    assert [e.user_id for e in await lists.list_offers(2)] == ["alice", "bob"]
    ids = [e.booking_id for e in listed[:2] if e.booking_id is not None]
    assert await lists.acknowledge(ids) == 2
    assert await lists.acknowledge([*ids, uuid.uuid4()]) == 0
    assert [e.user_id for e in await lists.list_offers(10)] == ["carol"]


# --- Atomicity and random sequences ------------------------------------------------------------


async def test_a_release_whose_offer_fails_gives_nothing_back(
    repo: EventRepository, lists: WaitlistRepository, dsn: str
) -> None:
    """The offer is part of the release's transaction: if writing it fails (a crash, say), the
    seats are not given back either, and the booking service's retry does it all."""
    event, bookings = await _sold_out(repo, 1)
    await _join(lists, event.id, "alice", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE 'crash'; END $$;"
            " CREATE TRIGGER crash BEFORE UPDATE ON waitlist_entries FOR EACH ROW EXECUTE FUNCTION fail()"
        )
    with pytest.raises(psycopg.errors.RaiseException):
        await repo.release(bookings[0])
    reservation = await repo.get_reservation(bookings[0])
    assert reservation is not None and reservation[0].state is ReservationState.RESERVED
    current = await _current(repo, event.id)
    assert (current.available_seats, current.waitlist_size) == (0, 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TRIGGER crash ON waitlist_entries")
    await repo.release(bookings[0])
    assert (await _by_user(lists, event.id))["alice"].state is WaitlistState.OFFERED
    _consistent(dsn)


async def test_random_sequences_keep_every_waiting_list_rule(
    repo: EventRepository, lists: WaitlistRepository, dsn: str
) -> None:
    """Joins, leaves, releases (holds running out), new bookings, seat increases and a
    cancellation in random order, some at once; after each step the seats add up and the
    waiting-list invariants hold (first fit in join order, nobody who fits left waiting, no
    reservation but an offer while someone waits)."""
    rng = random.Random(1414)
    events = [(await _sold_out(repo, 6))[0] for _ in range(2)]
    users = [f"u{i}" for i in range(12)]

    async def step() -> None:
        event = rng.choice(events)
        kind = rng.choice(["join", "join", "leave", "release", "release", "reserve", "grow"])
        if kind == "join":
            with contextlib.suppress(SeatsAvailable, EventCancelled):
                await lists.join(JoinRequest(event.id, rng.choice(users), rng.randint(1, 4)))
        elif kind == "leave":
            with contextlib.suppress(WaitlistEntryNotFound):
                await lists.leave(event.id, rng.choice(users))
        elif kind == "release":
            with psycopg.connect(dsn) as conn:
                held = conn.execute(
                    "SELECT booking_id FROM reservations WHERE event_id = %s AND state = 'RESERVED'", (event.id,)
                ).fetchall()
            if held:
                await repo.release(rng.choice(held)[0])
        elif kind == "reserve":
            await repo.reserve_batch([SeatRequest(uuid.uuid4(), event.id, rng.randint(1, 2))])
        else:
            current = await _current(repo, event.id)
            grow = EventValues(total_seats=current.total_seats + rng.randint(1, 3))
            with contextlib.suppress(EventCancelled):
                await repo.update_event(event.id, event_update(grow, ["total_seats"], LIMITS))

    for round_ in range(25):
        await asyncio.gather(*(step() for _ in range(rng.randint(1, 4))))
        if round_ == 20:
            await repo.cancel_event(events[1].id)
        _consistent(dsn)
    assert WaitlistState.OFFERED in {e.state for e in (await _by_user(lists, events[0].id)).values()}
    assert WaitlistState.WAITING not in {e.state for e in (await _by_user(lists, events[1].id)).values()}
