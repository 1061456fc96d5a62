"""Changing an event (UpdateEvent), free of I/O: which fields an update mask may name, what an
absent mask means, and the rules the changed event must keep.

An update is checked in two steps, as AIP-134 / gRPC-Gateway partial updates are: `event_update`
validates the request alone (before anything is read, so a bad request touches nothing), and
`apply_update` decides it against the event as it stands under its row lock (cancelled? seats
in use? is the sales window still ordered?), so that no reservation can slip in between.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from event_service.domain import (
    Event,
    EventCancelled,
    EventState,
    Limits,
    check_name,
    check_sales_window,
    check_total_seats,
)
from service_runtime.errors import Conflict, InvalidArgument
from service_runtime.validation import check_timestamp

# The fields an update may change, by proto field name (the paths of an update mask).
UPDATABLE = ("name", "start_time", "sales_start_time", "sales_end_time", "total_seats")


class SeatsInUse(Conflict):
    def __init__(self, event_id: uuid.UUID, taken_seats: int, total_seats: int) -> None:
        super().__init__(
            f"event {event_id} has {taken_seats} seats sold or held; total_seats cannot go down to {total_seats}",
            event_id=str(event_id),
            taken_seats=taken_seats,
            total_seats=total_seats,
        )


@dataclass(frozen=True, slots=True)
class EventValues:
    """The values an update request carries, unset ones as their proto3 defaults."""

    name: str = ""
    start_time: datetime | None = None
    sales_start_time: datetime | None = None
    sales_end_time: datetime | None = None
    total_seats: int = 0

    def set_fields(self) -> frozenset[str]:
        """The fields this request sets: what an update without a mask changes (gRPC-Gateway's
        PATCH rule). A cleared value cannot be told from an absent one, so clearing a sales
        time needs a mask."""
        present = {
            "name": self.name != "",
            "start_time": self.start_time is not None,
            "sales_start_time": self.sales_start_time is not None,
            "sales_end_time": self.sales_end_time is not None,
            "total_seats": self.total_seats != 0,
        }
        return frozenset(name for name, is_set in present.items() if is_set)


@dataclass(frozen=True, slots=True)
class EventUpdate:
    """A validated update: the fields to change and their new values."""

    fields: frozenset[str]
    values: EventValues


def event_update(values: EventValues, mask: Sequence[str], limits: Limits) -> EventUpdate:
    """Validates an update: the mask's paths (an empty mask: the fields set in `values`) and
    the new value of each field it changes, as CreateEvent validates them. A sales time named
    in the mask but unset in `values` is cleared."""
    for path in mask:
        if path not in UPDATABLE:
            raise InvalidArgument("update_mask", f"{path!r} cannot be changed; the fields are {', '.join(UPDATABLE)}")
    fields = frozenset(mask) if mask else values.set_fields()
    if "name" in fields:
        check_name(values.name)
    if "start_time" in fields:
        check_timestamp("start_time", values.start_time)
    if "sales_start_time" in fields:
        check_timestamp("sales_start_time", values.sales_start_time, required=False)
    if "sales_end_time" in fields:
        check_timestamp("sales_end_time", values.sales_end_time, required=False)
    if "total_seats" in fields:
        check_total_seats(values.total_seats, limits)
    return EventUpdate(fields, values)


def apply_update(event: Event, update: EventUpdate) -> Event:
    """The event as the update leaves it (before its update_time is set), or EventCancelled,
    SeatsInUse (fewer seats than its reservations hold), or InvalidArgument on sales_end_time
    (the window, after the update, does not end after it starts)."""
    if event.state is EventState.CANCELLED:
        raise EventCancelled(event.id)

    fields, values = update.fields, update.values
    total = values.total_seats if "total_seats" in fields else event.total_seats
    if total < event.taken_seats:
        raise SeatsInUse(event.id, event.taken_seats, total)
    start_time = values.start_time if "start_time" in fields else event.start_time
    assert start_time is not None, "event_update requires a start_time it changes"
    changed = dataclasses.replace(
        event,
        name=values.name if "name" in fields else event.name,
        start_time=start_time,
        sales_start_time=values.sales_start_time if "sales_start_time" in fields else event.sales_start_time,
        sales_end_time=values.sales_end_time if "sales_end_time" in fields else event.sales_end_time,
        total_seats=total,
        # The seats added or removed are free ones: the reservations keep theirs.
        available_seats=event.available_seats + total - event.total_seats,
    )
    check_sales_window(changed.sales_start_time, changed.sales_end_time)
    return changed
