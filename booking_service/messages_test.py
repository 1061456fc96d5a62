"""Bookings as messages: a hold's expire_time shows while the hold may still run out (or did),
and why a cancelled booking was cancelled."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from booking_service.domain import Booking, BookingStatus, CancelReason
from booking_service.messages import booking_message, waitlist_entry_message
from booking_service.waitlist import WaitlistEntry, WaitlistState
from ticketflow.booking.v1 import booking_service_pb2 as pb

NOW = datetime(2027, 1, 1, tzinfo=UTC)
HOLD = Booking(
    uuid.uuid4(),
    "alice",
    uuid.uuid4(),
    2,
    BookingStatus.HELD,
    None,
    None,
    None,
    NOW,
    NOW,
    True,
    NOW + timedelta(minutes=10),
)


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (BookingStatus.PENDING, True),
        (BookingStatus.HELD, True),
        (BookingStatus.EXPIRING, True),
        (BookingStatus.EXPIRED, True),
        (BookingStatus.CONFIRMED, False),
        (BookingStatus.CANCELLING, False),
        (BookingStatus.CANCELLED, False),
    ],
)
def test_a_holds_expire_time_shows_while_it_can_run_out(status: BookingStatus, shown: bool) -> None:
    message = booking_message(replace(HOLD, status=status))
    assert message.hold and message.HasField("expire_time") is shown
    if shown:
        assert message.expire_time.ToDatetime(tzinfo=UTC) == NOW + timedelta(minutes=10)


def test_a_booking_cancelled_with_its_event_says_so() -> None:
    message = booking_message(replace(HOLD, status=BookingStatus.CANCELLED, cancel_reason=CancelReason.EVENT_CANCELLED))
    assert message.status == pb.Booking.CANCELLED and message.cancel_reason == "EVENT_CANCELLED"
    assert booking_message(replace(HOLD, status=BookingStatus.CANCELLED)).cancel_reason == ""


def test_an_offer_names_its_waiting_list_entry_and_other_bookings_do_not() -> None:
    entry_id = uuid.uuid4()
    assert booking_message(replace(HOLD, waitlist_entry_id=entry_id)).waitlist_entry_id == str(entry_id)
    assert booking_message(HOLD).waitlist_entry_id == ""


def test_a_waiting_entry_shows_its_position_and_an_offered_one_its_offer() -> None:
    waiting = WaitlistEntry(uuid.uuid4(), uuid.uuid4(), "alice", 2, WaitlistState.WAITING, 3, NOW, NOW)
    message = waitlist_entry_message(waiting)
    assert (message.state, message.position, message.booking_id) == (pb.WaitlistEntry.WAITING, 3, "")
    assert not message.HasField("offer_time")
    booking_id = uuid.uuid4()
    offered = replace(waiting, state=WaitlistState.OFFERED, position=0, offer_time=NOW, booking_id=booking_id)
    message = waitlist_entry_message(offered)
    assert (message.state, message.booking_id) == (pb.WaitlistEntry.OFFERED, str(booking_id))
    assert message.offer_time.ToDatetime(tzinfo=UTC) == NOW
