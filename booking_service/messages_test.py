"""Bookings as messages: a hold's expire_time shows while the hold may still run out (or did),
and why a cancelled booking was cancelled."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from booking_service.domain import Booking, BookingStatus, CancelReason
from booking_service.messages import booking_message
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
