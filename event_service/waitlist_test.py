"""The waiting-list rules, without I/O: first fit in join order, who may join, when offers are
made, and that a waiting list keeps newcomers from the seats (no queue jumping)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from event_service.domain import (
    Event,
    EventCancelled,
    EventState,
    Limits,
    Reservation,
    ReservationState,
    Sales,
    SalesEnded,
    SalesNotStarted,
    SeatRequest,
    SoldOut,
    Turn,
    allocate,
    replay_outcome,
)
from event_service.waitlist import (
    CurrentEntry,
    JoinRequest,
    SeatsAvailable,
    WaitlistEntry,
    WaitlistState,
    choose_offers,
    decide_join,
    join_request,
    offers_open,
    offers_page_size,
)
from service_runtime.errors import InvalidArgument

NOW = datetime(2027, 1, 1, tzinfo=UTC)
EVENT = uuid.uuid4()
LIMITS = Limits(max_seats_per_booking=4)


@dataclass(frozen=True)
class Wanted:
    name: str
    seats: int


def _names(chosen: list[Wanted]) -> list[str]:
    return [w.name for w in chosen]


# --- The offer rule ----------------------------------------------------------------------------


def test_seats_go_to_the_earliest_entries_that_fit() -> None:
    waiting = [Wanted("a", 2), Wanted("b", 1), Wanted("c", 1)]
    assert _names(choose_offers(3, waiting)) == ["a", "b"]


def test_an_entry_too_big_is_skipped_and_a_later_one_that_fits_gets_the_seats() -> None:
    waiting = [Wanted("big", 4), Wanted("small", 2), Wanted("also big", 3), Wanted("one", 1)]
    assert _names(choose_offers(3, waiting)) == ["small", "one"]


def test_the_walk_stops_when_nothing_is_free() -> None:
    assert _names(choose_offers(2, [Wanted("a", 2), Wanted("b", 1)])) == ["a"]
    assert choose_offers(0, [Wanted("a", 1)]) == []


def test_nothing_fits_means_no_offer() -> None:
    assert choose_offers(1, [Wanted("a", 2), Wanted("b", 3)]) == []


def test_first_fit_never_skips_an_earlier_entry_that_fits() -> None:
    """The property the audit checks: for each chosen entry, every earlier entry no bigger than
    it was chosen too (it fitted when its turn came, since the later one still did)."""
    rng = random.Random(14)
    for _ in range(500):
        waiting = [Wanted(str(i), rng.randint(1, 4)) for i in range(rng.randint(0, 12))]
        available = rng.randint(0, 10)
        chosen = choose_offers(available, waiting)
        assert sum(w.seats for w in chosen) <= available
        picked = {w.name for w in chosen}
        for index, entry in enumerate(waiting):
            if entry.name in picked:
                assert all(e.name in picked for e in waiting[:index] if e.seats <= entry.seats)
        # Nothing left over fits: no seat stays unoffered while someone who fits waits.
        left = available - sum(w.seats for w in chosen)
        assert all(w.seats > left for w in waiting if w.name not in picked)


def test_offers_are_made_before_the_sales_start_but_not_after_the_end_or_a_cancellation() -> None:
    assert offers_open(Sales(start_time=NOW + timedelta(days=1)), NOW)
    assert offers_open(Sales(end_time=NOW + timedelta(microseconds=1)), NOW)
    assert not offers_open(Sales(end_time=NOW), NOW)
    assert not offers_open(Sales(state=EventState.CANCELLED), NOW)


# --- Joining -----------------------------------------------------------------------------------


def _event(available: int, waiting: int = 0, sales: Sales | None = None) -> Event:
    sales = sales or Sales()
    return Event(
        EVENT,
        "Gig",
        NOW + timedelta(days=30),
        10,
        available,
        NOW,
        NOW,
        sales.start_time,
        sales.end_time,
        sales.state,
        NOW if sales.state is EventState.CANCELLED else None,
        waiting,
    )


def _entry(state: WaitlistState) -> WaitlistEntry:
    return WaitlistEntry(uuid.uuid4(), EVENT, "alice", 2, state, 1, NOW, NOW)


def test_joining_a_sold_out_event_puts_the_user_on_the_list() -> None:
    assert decide_join(_event(1), JoinRequest(EVENT, "alice", 2), None, NOW) is None


def test_joining_while_the_seats_can_be_booked_says_so() -> None:
    with pytest.raises(SeatsAvailable) as error:
        decide_join(_event(2), JoinRequest(EVENT, "alice", 2), None, NOW)
    assert error.value.metadata["available_seats"] == "2"


def test_joining_behind_others_is_allowed_even_with_seats_free() -> None:
    # The free seats are kept for the list (they fit nobody waiting); a newcomer queues.
    assert decide_join(_event(2, waiting=1), JoinRequest(EVENT, "alice", 1), None, NOW) is None


@pytest.mark.parametrize("state", [WaitlistState.WAITING, WaitlistState.OFFERED])
def test_joining_again_returns_the_entry_the_user_has(state: WaitlistState) -> None:
    current = _entry(state)
    found = decide_join(_event(0, waiting=1), JoinRequest(EVENT, "alice", 3), CurrentEntry(current, True), NOW)
    assert found == current


@pytest.mark.parametrize("state", [WaitlistState.LEFT, WaitlistState.CLOSED, WaitlistState.OFFERED])
def test_after_leaving_or_letting_an_offer_go_the_user_joins_anew(state: WaitlistState) -> None:
    current = CurrentEntry(_entry(state), offer_reserved=False)
    assert decide_join(_event(0, waiting=1), JoinRequest(EVENT, "alice", 1), current, NOW) is None


@pytest.mark.parametrize(
    ("sales", "error"),
    [
        (Sales(state=EventState.CANCELLED), EventCancelled),
        (Sales(start_time=NOW + timedelta(seconds=1)), SalesNotStarted),
        (Sales(end_time=NOW), SalesEnded),
    ],
)
def test_joining_an_event_not_on_sale_is_refused(sales: Sales, error: type[Exception]) -> None:
    with pytest.raises(error):
        decide_join(_event(0, waiting=1, sales=sales), JoinRequest(EVENT, "alice", 1), None, NOW)


@pytest.mark.parametrize(
    ("event_id", "user_id", "seats", "field"),
    [
        ("nope", "alice", 1, "event_id"),
        (str(EVENT), "", 1, "user_id"),
        (str(EVENT), "x" * 65, 1, "user_id"),
        (str(EVENT), "alice", 0, "seats"),
        (str(EVENT), "alice", 5, "seats"),
    ],
)
def test_bad_joins_name_the_field(event_id: str, user_id: str, seats: int, field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        join_request(event_id, user_id, seats, LIMITS)
    assert error.value.metadata["field"] == field


def test_offer_pages_default_to_100_and_stop_at_1000() -> None:
    assert (offers_page_size(0), offers_page_size(5), offers_page_size(5000)) == (100, 5, 1000)


# --- No queue jumping --------------------------------------------------------------------------


def test_while_people_wait_new_requests_are_sold_out_and_the_real_count_is_kept() -> None:
    requests = [SeatRequest(uuid.uuid4(), EVENT, 1) for _ in range(3)]
    allocation = allocate(5, requests, (), Sales(), NOW, waiting=True)
    assert [state for _, state in allocation.new_records] == [ReservationState.SOLD_OUT] * 3
    assert allocation.available == 5
    assert allocation.free_to_newcomers == 0
    assert set(allocation.available_after.values()) == {0}


def test_while_people_wait_a_refusal_still_wins() -> None:
    allocation = allocate(5, [SeatRequest(uuid.uuid4(), EVENT, 1)], (), Sales(end_time=NOW), NOW, waiting=True)
    assert [state for _, state in allocation.new_records] == [ReservationState.REFUSED]


def test_a_sold_out_answer_reports_no_seats_and_the_list_while_people_wait() -> None:
    request = SeatRequest(uuid.uuid4(), EVENT, 1)
    [(_, state)] = allocate(5, [request], (), Sales(), NOW, waiting=True).new_records
    assert state is ReservationState.SOLD_OUT
    recorded = Reservation(request.booking_id, EVENT, 1, ReservationState.SOLD_OUT, NOW, None)
    with pytest.raises(SoldOut) as error:
        replay_outcome(recorded, request, Turn(0, waitlist_size=3))
    assert error.value.metadata["available_seats"] == "0"
    assert error.value.metadata["waitlist_size"] == "3"
