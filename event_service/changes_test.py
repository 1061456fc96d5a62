"""Changing an event, without I/O: update masks, what an absent mask means, and the rules the
changed event must keep."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from event_service.changes import UPDATABLE, EventValues, SeatsInUse, apply_update, event_update
from event_service.domain import Event, EventCancelled, EventState, Limits
from service_runtime.errors import InvalidArgument

LIMITS = Limits(max_total_seats=1000, max_seats_per_booking=4)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
# 100 seats of which 30 are sold or held, on sale from NOW to NOW + 2 hours.
EVENT = Event(
    id=uuid.uuid4(),
    name="Gig",
    start_time=NOW + 24 * HOUR,
    total_seats=100,
    available_seats=70,
    create_time=NOW - HOUR,
    update_time=NOW - HOUR,
    sales_start_time=NOW,
    sales_end_time=NOW + 2 * HOUR,
)


def _apply(values: EventValues, mask: list[str], event: Event = EVENT) -> Event:
    return apply_update(event, event_update(values, mask, LIMITS))


def test_the_mask_names_the_fields_that_change_and_only_those() -> None:
    values = EventValues(name="Renamed", total_seats=200, start_time=NOW)
    changed = _apply(values, ["name"])
    assert changed == dataclasses.replace(EVENT, name="Renamed")


def test_without_a_mask_the_fields_set_in_the_request_change() -> None:
    changed = _apply(EventValues(name="Renamed", total_seats=120), [])
    assert (changed.name, changed.total_seats, changed.start_time) == ("Renamed", 120, EVENT.start_time)
    assert (changed.sales_start_time, changed.sales_end_time) == (EVENT.sales_start_time, EVENT.sales_end_time)


def test_without_a_mask_or_any_field_set_nothing_changes() -> None:
    update = event_update(EventValues(), [], LIMITS)
    assert update.fields == frozenset()
    assert apply_update(EVENT, update) == EVENT


def test_a_sales_time_named_in_the_mask_but_unset_is_cleared() -> None:
    changed = _apply(EventValues(), ["sales_start_time", "sales_end_time"])
    assert (changed.sales_start_time, changed.sales_end_time) == (None, None)


@pytest.mark.parametrize(
    "path", ["id", "available_seats", "state", "cancel_time", "update_time", "*", "event.name", "salesStartTime", ""]
)
def test_a_mask_naming_anything_else_is_refused_as_update_mask(path: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        event_update(EventValues(name="Renamed"), ["name", path], LIMITS)
    assert error.value.field == "update_mask"


def test_every_updatable_field_may_be_named() -> None:
    values = EventValues("Renamed", NOW, NOW - HOUR, NOW + HOUR, 50)
    assert event_update(values, list(UPDATABLE), LIMITS).fields == frozenset(UPDATABLE)


@pytest.mark.parametrize(
    ("values", "mask", "field"),
    [
        (EventValues(), ["name"], "name"),
        (EventValues(name="   "), [], "name"),
        (EventValues(name="x" * 201), [], "name"),
        (EventValues(), ["start_time"], "start_time"),
        (EventValues(start_time=datetime(2026, 1, 1)), [], "start_time"),
        (EventValues(), ["total_seats"], "total_seats"),
        (EventValues(total_seats=-1), [], "total_seats"),
        (EventValues(total_seats=1001), [], "total_seats"),
        (EventValues(sales_end_time=datetime(2026, 1, 1)), [], "sales_end_time"),
    ],
)
def test_new_values_are_validated_as_at_creation(values: EventValues, mask: list[str], field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        event_update(values, mask, LIMITS)
    assert error.value.field == field


def test_seats_added_become_available() -> None:
    changed = _apply(EventValues(total_seats=150), [])
    assert (changed.total_seats, changed.available_seats) == (150, 120)


def test_seats_can_be_removed_down_to_those_taken() -> None:
    changed = _apply(EventValues(total_seats=30), [])
    assert (changed.total_seats, changed.available_seats) == (30, 0)


def test_seats_cannot_be_removed_below_those_taken() -> None:
    with pytest.raises(SeatsInUse) as error:
        _apply(EventValues(total_seats=29), [])
    assert error.value.metadata == {"event_id": str(EVENT.id), "taken_seats": "30", "total_seats": "29"}


def test_the_sales_window_must_stay_ordered_after_the_update() -> None:
    # Only the start moves, past the event's current end.
    with pytest.raises(InvalidArgument) as error:
        _apply(EventValues(sales_start_time=NOW + 3 * HOUR), [])
    assert error.value.field == "sales_end_time"
    # Moving both together is fine; clearing the end lifts the constraint.
    moved = _apply(EventValues(sales_start_time=NOW + 3 * HOUR, sales_end_time=NOW + 4 * HOUR), [])
    assert moved.sales_start_time == NOW + 3 * HOUR
    cleared = _apply(EventValues(sales_start_time=NOW + 3 * HOUR), ["sales_start_time", "sales_end_time"])
    assert (cleared.sales_start_time, cleared.sales_end_time) == (NOW + 3 * HOUR, None)


def test_a_cancelled_event_cannot_be_changed() -> None:
    cancelled = dataclasses.replace(EVENT, state=EventState.CANCELLED, cancel_time=NOW, available_seats=100)
    with pytest.raises(EventCancelled):
        _apply(EventValues(name="Renamed"), [], cancelled)
