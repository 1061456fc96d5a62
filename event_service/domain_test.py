"""The event domain's rules, without I/O."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest

from event_service.domain import (
    BookingIdReused,
    Limits,
    Reservation,
    ReservationReleased,
    ReservationState,
    SeatRequest,
    SoldOut,
    allocate,
    new_event,
    replay_outcome,
    seat_request,
)
from service_runtime.errors import InvalidArgument

LIMITS = Limits(max_total_seats=1000, max_seats_per_booking=4)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
BOOKING = uuid.uuid4()
EVENT = uuid.uuid4()


def _recorded(state: ReservationState, event_id: uuid.UUID | None = EVENT, seats: int = 2) -> Reservation:
    return Reservation(BOOKING, event_id, seats, state, NOW, NOW if state is ReservationState.RELEASED else None)


@pytest.mark.parametrize(
    ("name", "start", "seats", "field"),
    [
        ("", NOW, 10, "name"),
        ("   ", NOW, 10, "name"),
        ("x" * 201, NOW, 10, "name"),
        ("bad\x00name", NOW, 10, "name"),
        ("Gig", None, 10, "start_time"),
        ("Gig", datetime(2026, 1, 1), 10, "start_time"),
        ("Gig", NOW, 0, "total_seats"),
        ("Gig", NOW, -5, "total_seats"),
        ("Gig", NOW, 1001, "total_seats"),
    ],
)
def test_bad_event_fields_are_named(name: str, start: datetime | None, seats: int, field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        new_event(name, start, seats, LIMITS)
    assert error.value.field == field


def test_a_valid_event_gets_a_fresh_id() -> None:
    first = new_event("Gig", NOW, 1000, LIMITS)
    second = new_event("Gig", NOW, 1000, LIMITS)
    assert first.id != second.id
    assert first.total_seats == 1000


@pytest.mark.parametrize(
    ("booking", "event", "seats", "field"),
    [
        ("", str(EVENT), 1, "booking_id"),
        ("not-a-uuid", str(EVENT), 1, "booking_id"),
        (str(BOOKING), "{" + str(EVENT) + "}", 1, "event_id"),
        (str(BOOKING), str(EVENT), 0, "seats"),
        (str(BOOKING), str(EVENT), 5, "seats"),
    ],
)
def test_bad_seat_requests_are_named(booking: str, event: str, seats: int, field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        seat_request(booking, event, seats, LIMITS)
    assert error.value.field == field


def test_replay_of_a_reservation_returns_it() -> None:
    recorded = _recorded(ReservationState.RESERVED)
    assert replay_outcome(recorded, SeatRequest(BOOKING, EVENT, 2), 0) is recorded


def test_replay_of_a_sold_out_refusal_is_refused_again() -> None:
    with pytest.raises(SoldOut) as error:
        replay_outcome(_recorded(ReservationState.SOLD_OUT), SeatRequest(BOOKING, EVENT, 2), 1)
    assert error.value.metadata["available_seats"] == "1"


def test_a_released_booking_id_can_never_reserve() -> None:
    with pytest.raises(ReservationReleased):
        replay_outcome(_recorded(ReservationState.RELEASED, None, 0), SeatRequest(BOOKING, EVENT, 2), 10)


@pytest.mark.parametrize("request_", [SeatRequest(BOOKING, uuid.uuid4(), 2), SeatRequest(BOOKING, EVENT, 3)])
def test_a_booking_id_reused_for_another_request_is_refused(request_: SeatRequest) -> None:
    with pytest.raises(BookingIdReused):
        replay_outcome(_recorded(ReservationState.RESERVED), request_, 10)


def _request(seats: int = 1, booking: uuid.UUID | None = None) -> SeatRequest:
    return SeatRequest(booking or uuid.uuid4(), EVENT, seats)


def test_a_batch_gives_the_last_seats_to_the_earliest_callers() -> None:
    requests = [_request() for _ in range(5)]
    allocation = allocate(3, requests, recorded=set())
    assert [state for _, state in allocation.new_records] == [ReservationState.RESERVED] * 3 + [
        ReservationState.SOLD_OUT
    ] * 2
    assert allocation.available == 0
    assert [allocation.available_after[r.booking_id] for r in requests] == [2, 1, 0, 0, 0]


def test_a_request_too_large_for_what_is_left_does_not_block_later_smaller_ones() -> None:
    big, small = _request(3), _request(1)
    allocation = allocate(2, [big, small], recorded=set())
    assert [state for _, state in allocation.new_records] == [ReservationState.SOLD_OUT, ReservationState.RESERVED]
    assert allocation.available == 1


def test_booking_ids_already_recorded_or_repeated_in_the_batch_take_nothing() -> None:
    first = _request(2)
    replayed = _request(1)
    allocation = allocate(
        10, [first, replayed, SeatRequest(first.booking_id, EVENT, 2)], recorded={replayed.booking_id}
    )
    assert [r for r, _ in allocation.new_records] == [first]
    assert allocation.available == 8


def test_a_batch_decides_as_one_by_one_calls_would() -> None:
    """Against a direct simulation of sequential calls, on many random batches."""
    rng = random.Random(1)
    for _ in range(300):
        ids = [uuid.uuid4() for _ in range(8)]
        requests = [SeatRequest(rng.choice(ids), EVENT, rng.randint(1, 4)) for _ in range(rng.randint(1, 20))]
        recorded = set(rng.sample(ids, rng.randint(0, 3)))
        available = rng.randint(0, 25)
        allocation = allocate(available, requests, recorded)

        left, seen, expected = available, set(recorded), []
        for request in requests:
            if request.booking_id in seen:
                continue
            seen.add(request.booking_id)
            ok = request.seats <= left
            left -= request.seats if ok else 0
            expected.append((request, ReservationState.RESERVED if ok else ReservationState.SOLD_OUT))
        assert allocation.new_records == expected
        assert allocation.available == left
