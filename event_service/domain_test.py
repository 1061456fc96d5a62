"""The event domain's rules, without I/O."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from event_service.domain import (
    BookingIdReused,
    EventCancelled,
    EventState,
    Limits,
    RefusalReason,
    Reservation,
    ReservationReleased,
    ReservationState,
    Sales,
    SalesEnded,
    SalesNotStarted,
    SeatRequest,
    SoldOut,
    Turn,
    allocate,
    new_event,
    replay_outcome,
    rfc3339,
    seat_request,
)
from service_runtime.errors import InvalidArgument

LIMITS = Limits(max_total_seats=1000, max_seats_per_booking=4)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
BOOKING = uuid.uuid4()
EVENT = uuid.uuid4()
OPEN = Sales()
TICK = timedelta(microseconds=1)


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
    assert replay_outcome(recorded, SeatRequest(BOOKING, EVENT, 2), Turn(0)) is recorded


def test_replay_of_a_sold_out_refusal_is_refused_again() -> None:
    with pytest.raises(SoldOut) as error:
        replay_outcome(_recorded(ReservationState.SOLD_OUT), SeatRequest(BOOKING, EVENT, 2), Turn(1))
    assert error.value.metadata["available_seats"] == "1"


def test_a_released_booking_id_can_never_reserve() -> None:
    with pytest.raises(ReservationReleased):
        replay_outcome(_recorded(ReservationState.RELEASED, None, 0), SeatRequest(BOOKING, EVENT, 2), Turn(10))


@pytest.mark.parametrize("request_", [SeatRequest(BOOKING, uuid.uuid4(), 2), SeatRequest(BOOKING, EVENT, 3)])
def test_a_booking_id_reused_for_another_request_is_refused(request_: SeatRequest) -> None:
    with pytest.raises(BookingIdReused):
        replay_outcome(_recorded(ReservationState.RESERVED), request_, Turn(10))


def _request(seats: int = 1, booking: uuid.UUID | None = None) -> SeatRequest:
    return SeatRequest(booking or uuid.uuid4(), EVENT, seats)


def test_a_batch_gives_the_last_seats_to_the_earliest_callers() -> None:
    requests = [_request() for _ in range(5)]
    allocation = allocate(3, requests, set(), OPEN, NOW)
    assert [state for _, state in allocation.new_records] == [ReservationState.RESERVED] * 3 + [
        ReservationState.SOLD_OUT
    ] * 2
    assert allocation.available == 0
    assert [allocation.available_after[r.booking_id] for r in requests] == [2, 1, 0, 0, 0]


def test_a_request_too_large_for_what_is_left_does_not_block_later_smaller_ones() -> None:
    big, small = _request(3), _request(1)
    allocation = allocate(2, [big, small], set(), OPEN, NOW)
    assert [state for _, state in allocation.new_records] == [ReservationState.SOLD_OUT, ReservationState.RESERVED]
    assert allocation.available == 1


def test_booking_ids_already_recorded_or_repeated_in_the_batch_take_nothing() -> None:
    first = _request(2)
    replayed = _request(1)
    allocation = allocate(
        10, [first, replayed, SeatRequest(first.booking_id, EVENT, 2)], {replayed.booking_id}, OPEN, NOW
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
        allocation = allocate(available, requests, recorded, OPEN, NOW)

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


# --- Sales windows and cancellation ----------------------------------------------------------


@pytest.mark.parametrize(
    ("sales", "now", "refusal"),
    [
        (Sales(), NOW, None),
        (Sales(start_time=NOW), NOW - TICK, RefusalReason.SALES_NOT_STARTED),
        (Sales(start_time=NOW), NOW, None),  # the opening instant sells
        (Sales(end_time=NOW), NOW - TICK, None),
        (Sales(end_time=NOW), NOW, RefusalReason.SALES_ENDED),  # the closing instant does not
        (Sales(start_time=NOW, end_time=NOW + TICK), NOW, None),
        (Sales(EventState.CANCELLED), NOW, RefusalReason.EVENT_CANCELLED),
        # Cancellation wins over the window, whatever the instant.
        (Sales(EventState.CANCELLED, start_time=NOW), NOW - TICK, RefusalReason.EVENT_CANCELLED),
        (Sales(EventState.CANCELLED, end_time=NOW), NOW, RefusalReason.EVENT_CANCELLED),
    ],
)
def test_whether_seats_are_on_sale_is_decided_by_state_then_window(
    sales: Sales, now: datetime, refusal: RefusalReason | None
) -> None:
    assert sales.refusal(now) is refusal


def test_a_batch_before_the_sales_start_is_refused_whole_and_takes_nothing() -> None:
    requests = [_request() for _ in range(3)]
    allocation = allocate(5, requests, set(), Sales(start_time=NOW), NOW - TICK)
    assert [state for _, state in allocation.new_records] == [ReservationState.REFUSED] * 3
    assert allocation.refusal is RefusalReason.SALES_NOT_STARTED
    assert allocation.available == 5


def test_a_refused_batch_still_answers_replays_with_their_record() -> None:
    replayed = _request()
    fresh = _request()
    allocation = allocate(5, [replayed, fresh], {replayed.booking_id}, Sales(EventState.CANCELLED), NOW)
    assert allocation.new_records == [(fresh, ReservationState.REFUSED)]
    assert allocation.refusal is RefusalReason.EVENT_CANCELLED


def test_a_batch_at_the_opening_instant_sells() -> None:
    allocation = allocate(1, [_request(), _request()], set(), Sales(start_time=NOW), NOW)
    assert [state for _, state in allocation.new_records] == [ReservationState.RESERVED, ReservationState.SOLD_OUT]
    assert allocation.refusal is None


def _refused(reason: RefusalReason) -> Reservation:
    return Reservation(BOOKING, EVENT, 2, ReservationState.REFUSED, NOW, None, reason)


def test_a_replay_of_a_refusal_before_the_sales_start_is_refused_the_same_way() -> None:
    start = datetime(2027, 3, 1, 10, 0, 0, 250_000, tzinfo=UTC)
    with pytest.raises(SalesNotStarted) as error:
        replay_outcome(_refused(RefusalReason.SALES_NOT_STARTED), SeatRequest(BOOKING, EVENT, 2), Turn(5, start))
    assert error.value.metadata == {"event_id": str(EVENT), "sales_start_time": "2027-03-01T10:00:00.250Z"}


def test_a_replay_of_a_refusal_after_the_sales_end_is_refused_the_same_way() -> None:
    end = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    with pytest.raises(SalesEnded) as error:
        replay_outcome(_refused(RefusalReason.SALES_ENDED), SeatRequest(BOOKING, EVENT, 2), Turn(5, None, end))
    assert error.value.metadata["sales_end_time"] == "2027-03-01T12:00:00Z"


def test_a_replay_of_a_refusal_of_a_cancelled_event_is_refused_the_same_way() -> None:
    with pytest.raises(EventCancelled) as error:
        replay_outcome(_refused(RefusalReason.EVENT_CANCELLED), SeatRequest(BOOKING, EVENT, 2), Turn(5))
    assert error.value.metadata == {"event_id": str(EVENT)}


def test_a_refused_booking_id_reused_for_other_seats_is_still_booking_id_reused() -> None:
    with pytest.raises(BookingIdReused):
        replay_outcome(_refused(RefusalReason.SALES_ENDED), SeatRequest(BOOKING, EVENT, 3), Turn(5))


@pytest.mark.parametrize(
    ("instant", "text"),
    [
        (datetime(2027, 3, 1, 10, 0, tzinfo=UTC), "2027-03-01T10:00:00Z"),
        (datetime(2027, 3, 1, 11, 0, 0, 123_000, tzinfo=timezone(timedelta(hours=1))), "2027-03-01T10:00:00.123Z"),
        (datetime(2027, 3, 1, 10, 0, 0, 123_456, tzinfo=UTC), "2027-03-01T10:00:00.123456Z"),
    ],
)
def test_instants_in_error_metadata_are_rfc3339_utc(instant: datetime, text: str) -> None:
    assert rfc3339(instant) == text


@pytest.mark.parametrize(("start", "end"), [(NOW, NOW), (NOW + TICK, NOW)], ids=["empty_window", "end_before_start"])
def test_a_sales_window_that_does_not_end_after_it_starts_is_refused(start: datetime, end: datetime) -> None:
    with pytest.raises(InvalidArgument) as error:
        new_event("Gig", NOW, 10, LIMITS, start, end)
    assert error.value.field == "sales_end_time"


def test_an_event_may_have_half_a_sales_window() -> None:
    assert new_event("Gig", NOW, 10, LIMITS, sales_start_time=NOW).sales_end_time is None
    assert new_event("Gig", NOW, 10, LIMITS, sales_end_time=NOW).sales_start_time is None


def test_a_naive_sales_time_is_refused() -> None:
    with pytest.raises(InvalidArgument) as error:
        new_event("Gig", NOW, 10, LIMITS, sales_start_time=datetime(2026, 1, 1))
    assert error.value.field == "sales_start_time"
