"""The offer follower against a real PostgreSQL (the event service's lists faked in memory):
every offer recorded exactly once, however many followers run and wherever one dies; the cap
checked again (REJECTED, released: the next entry gets the seats); offers of a cancelled event
recorded CANCELLED; HELD offers run out WAITLIST_OFFER_TTL after their recording, by the
database's clock; and from then on they are holds like any other."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from booking_service.domain import BookingStatus, NewBooking, SeatOutcome, Settlement
from booking_service.event_cancellation import CancellationFollower
from booking_service.fakes import FakeSeats
from booking_service.repository import BookingRepository
from booking_service.sweep_repository import SweepRepository
from booking_service.waitlist import WaitlistState
from booking_service.waitlist_offers import OfferFollower
from booking_service.waitlist_repository import LOCK_EVENTS_SHARED, WaitlistRepository

EVENT = uuid.uuid4()
LIMIT = 6
TTL = timedelta(minutes=30)


@pytest.fixture
def lists(pool: AsyncConnectionPool) -> WaitlistRepository:
    return WaitlistRepository(pool)


@pytest.fixture
def seats() -> FakeSeats:
    return FakeSeats({EVENT: 0})


def _follower(lists: WaitlistRepository, seats: Any, outcomes: list[str] | None = None) -> OfferFollower:
    record = outcomes.append if outcomes is not None else (lambda outcome: None)
    return OfferFollower(lists, seats, user_limit=LIMIT, ttl=TTL, page=50, on_recorded=record)


async def _waiting(seats: FakeSeats, users: Sequence[str], seat_count: int = 1, event: uuid.UUID = EVENT) -> None:
    for user in users:
        assert (await seats.join_waitlist(event, user, seat_count)).created


def _sql(dsn: str, statement: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def _offers(dsn: str) -> dict[str, tuple[Any, ...]]:
    """user -> (status, reject_reason, cancel_reason, seats, booking id, entry id) of each offer."""
    rows = _sql(
        dsn,
        "SELECT user_id, status, reject_reason, cancel_reason, seats, id, waitlist_entry_id FROM bookings"
        " WHERE waitlist_entry_id IS NOT NULL",
    )
    return {row[0]: tuple(row[1:]) for row in rows}


async def test_two_followers_record_every_offer_exactly_once(
    lists: WaitlistRepository, pool: AsyncConnectionPool, seats: FakeSeats, dsn: str
) -> None:
    users = [f"user-{n}" for n in range(180)]
    await _waiting(seats, users)
    seats.add_seats(EVENT, 180)
    assert {e.state for e in seats.entries} == {WaitlistState.OFFERED}
    outcomes: list[str] = []
    first, second = _follower(lists, seats, outcomes), _follower(WaitlistRepository(pool), seats, outcomes)
    counts = await asyncio.gather(first.run_once(), second.run_once())
    assert sum(counts) == 180 and outcomes == ["HELD"] * 180
    offers = _offers(dsn)
    assert set(offers) == set(users) and {o[0] for o in offers.values()} == {"HELD"}
    assert {(o[4], o[5]) for o in offers.values()} == {(e.booking_id, e.id) for e in seats.entries}
    assert seats.acknowledged == {e.booking_id for e in seats.entries}
    assert await first.run_once() == 0 and len(_offers(dsn)) == 180


class _DiesBeforeAck:
    """The event service as seen by a follower whose process dies before its acknowledgement."""

    def __init__(self, seats: FakeSeats) -> None:
        self.seats = seats

    async def waitlist_offers(self, limit: int) -> Any:
        return await self.seats.waitlist_offers(limit)

    async def release(self, booking_id: uuid.UUID) -> SeatOutcome | Any:
        return await self.seats.release(booking_id)

    async def acknowledge_offers(self, booking_ids: Sequence[uuid.UUID]) -> int:
        raise RuntimeError("killed")


async def test_a_follower_that_dies_before_the_ack_is_replayed_without_recording_twice(
    lists: WaitlistRepository, repo: BookingRepository, seats: FakeSeats, dsn: str
) -> None:
    # Alice is over the cap: her offer is REJECTED and released, and the release offers Bob.
    alice = [NewBooking(uuid.uuid4(), "alice", EVENT, LIMIT, None, None)]
    await repo.insert_pending(alice, LIMIT)
    await repo.settle([Settlement(alice[0].id, BookingStatus.CONFIRMED)])
    await _waiting(seats, ["alice", "carol", "bob"])
    seats.add_seats(EVENT, 2)
    with pytest.raises(RuntimeError, match="killed"):
        await _follower(lists, _DiesBeforeAck(seats)).run_once()
    before = "SELECT id, status, update_time FROM bookings WHERE waitlist_entry_id IS NOT NULL ORDER BY id"
    recorded = _sql(dsn, before)
    assert sorted(r[1] for r in recorded) == ["HELD", "REJECTED"] and not seats.acknowledged
    releases = seats.calls.count("release")
    outcomes: list[str] = []
    # Whichever replica looks next replays the page: nothing recorded again, then the ack.
    assert await _follower(lists, seats, outcomes).run_once() == 1  # bob's offer, made by the release
    assert outcomes == ["HELD"]
    offers = _offers(dsn)
    assert {u: o[:2] for u, o in offers.items()} == {
        "alice": ("REJECTED", "USER_LIMIT_REACHED"),
        "carol": ("HELD", None),
        "bob": ("HELD", None),
    }
    again = "SELECT id, status, update_time FROM bookings WHERE id = ANY(%s) ORDER BY id"
    assert _sql(dsn, again, [r[0] for r in recorded]) == recorded  # the replay changed nothing recorded
    # The rejected offer's release was repeated (idempotent): its seats were given back once.
    assert seats.calls.count("release") == releases + 1
    assert seats.records[offers["alice"][4]][0] is SeatOutcome.RELEASED and seats.available[EVENT] == 0
    assert seats.acknowledged == {e.booking_id for e in seats.entries}


async def test_a_held_offer_runs_out_ttl_after_its_recording_by_the_database_clock(
    lists: WaitlistRepository, repo: BookingRepository, seats: FakeSeats, dsn: str
) -> None:
    await _waiting(seats, ["alice"], 3)
    seats.add_seats(EVENT, 3)
    await _follower(lists, seats).run_once()
    [entry] = seats.entries
    assert entry.booking_id is not None
    offer = await repo.get(entry.booking_id)
    assert offer is not None
    assert (offer.user_id, offer.event_id, offer.seats, offer.status) == ("alice", EVENT, 3, BookingStatus.HELD)
    assert offer.hold and offer.waitlist_entry_id == entry.id and offer.idempotency_key is None
    assert offer.expire_time == offer.create_time + TTL
    assert await lists.held_seats("alice", EVENT) == 3


async def test_an_offer_of_an_event_known_cancelled_is_recorded_cancelled_and_not_released(
    lists: WaitlistRepository, seats: FakeSeats, pool: AsyncConnectionPool, dsn: str
) -> None:
    await _waiting(seats, ["alice"])
    seats.add_seats(EVENT, 1)
    await SweepRepository(pool).record_cancelled([(EVENT, datetime.now(UTC))])
    await _follower(lists, seats).run_once()
    assert _offers(dsn)["alice"][:3] == ("CANCELLED", None, "EVENT_CANCELLED")
    assert "release" not in seats.calls and seats.acknowledged


async def test_offers_are_holds_like_any_other(
    lists: WaitlistRepository, repo: BookingRepository, seats: FakeSeats, pool: AsyncConnectionPool, dsn: str
) -> None:
    other = uuid.uuid4()
    seats.available[other] = 0
    await _waiting(seats, ["alice", "bob"])
    await _waiting(seats, ["carol"], event=other)
    seats.add_seats(EVENT, 2)
    seats.add_seats(other, 1)
    await _follower(lists, seats).run_once()
    offers = _offers(dsn)
    sweeps = SweepRepository(pool)
    confirmed, _, _ = await repo.confirm(offers["alice"][4])
    assert confirmed is not None and confirmed.status is BookingStatus.CONFIRMED
    _sql(dsn, "UPDATE bookings SET expire_time = now() - interval '1 second' WHERE id = %s", offers["bob"][4])
    assert [b for b, _ in await sweeps.start_expiring(10)] == [offers["bob"][4]]
    await CancellationFollower(sweeps, _Cancelled(other)).run_once()
    assert {u: o[0] for u, o in _offers(dsn).items()} == {"alice": "CONFIRMED", "bob": "EXPIRING", "carol": "CANCELLED"}
    cancelled = await repo.get(offers["carol"][4])
    assert cancelled is not None and cancelled.cancel_reason is not None


class _Cancelled:
    def __init__(self, event: uuid.UUID) -> None:
        self.event = event

    async def cancelled_events(self, after: datetime | None) -> list[tuple[uuid.UUID, datetime]]:
        return [(self.event, datetime.now(UTC))]


async def test_an_event_is_not_done_while_an_offer_of_it_that_missed_the_cancellation_is_being_recorded(
    lists: WaitlistRepository, seats: FakeSeats, pool: AsyncConnectionPool, dsn: str
) -> None:
    await _waiting(seats, ["alice"])
    seats.add_seats(EVENT, 1)
    [offer] = await seats.waitlist_offers(10)
    sweeps = SweepRepository(pool)
    follower = CancellationFollower(sweeps, _Cancelled(EVENT))
    async with await psycopg.AsyncConnection.connect(dsn) as recording:
        # A recording that read the event as not cancelled, its HELD offer not committed yet.
        await recording.execute(LOCK_EVENTS_SHARED, {"event_ids": [EVENT]})
        await recording.execute(
            "INSERT INTO bookings (id, user_id, event_id, seats, status, hold, expire_time, waitlist_entry_id)"
            " VALUES (%s, 'alice', %s, 1, 'HELD', true, now() + interval '30 minutes', %s)",
            (offer.booking_id, EVENT, offer.id),
        )
        sweeping = asyncio.create_task(follower.run_once())
        await asyncio.sleep(0.3)
        assert not sweeping.done()  # marking the event done waits for the recording
        await recording.commit()
        assert await asyncio.wait_for(sweeping, timeout=5) == 0
    [[done]] = _sql(dsn, "SELECT done_time IS NOT NULL FROM cancelled_events WHERE event_id = %s", EVENT)
    assert not done
    assert await follower.run_once() == 1
    assert _offers(dsn)["alice"][:3] == ("CANCELLED", None, "EVENT_CANCELLED")
