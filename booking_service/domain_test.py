"""The booking domain's rules, without I/O."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from booking_service.domain import (
    Booking,
    BookingAbandoned,
    BookingStatus,
    EventNotFound,
    IdempotencyKeyReused,
    Limits,
    NotCancellable,
    RejectReason,
    SeatOutcome,
    SoldOut,
    check_cancellable,
    check_same_request,
    new_booking,
    outcome,
    settled_status,
)
from service_runtime.errors import InvalidArgument

LIMITS = Limits(max_seats_per_booking=4)
EVENT = str(uuid.uuid4())
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _booking(status: BookingStatus, reason: RejectReason | None = None) -> Booking:
    return Booking(uuid.uuid4(), "alice", uuid.UUID(EVENT), 1, status, reason, None, None, NOW, NOW)


@pytest.mark.parametrize(
    ("event", "user", "seats", "key", "field"),
    [
        ("", "alice", 1, "", "event_id"),
        ("123", "alice", 1, "", "event_id"),
        (EVENT, "", 1, "", "user_id"),
        (EVENT, "a" * 65, 1, "", "user_id"),
        (EVENT, "tab\there", 1, "", "user_id"),
        (EVENT, "alice", -1, "", "seats"),
        (EVENT, "alice", 5, "", "seats"),
        (EVENT, "alice", 1, "k" * 129, "idempotency_key"),
        (EVENT, "alice", 1, "bad\nkey", "idempotency_key"),
    ],
)
def test_bad_requests_name_the_field(event: str, user: str, seats: int, key: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        new_booking(event, user, seats, key, LIMITS)
    assert error.value.field == field


def test_zero_seats_means_one() -> None:
    assert new_booking(EVENT, "alice", 0, "", LIMITS).seats == 1


def test_a_key_comes_with_a_hash_of_the_request() -> None:
    keyed = new_booking(EVENT, "alice", 2, "k", LIMITS)
    assert keyed.idempotency_key == "k" and keyed.request_hash is not None
    plain = new_booking(EVENT, "alice", 2, "", LIMITS)
    assert plain.idempotency_key is None and plain.request_hash is None


def test_a_retry_must_repeat_the_request() -> None:
    first = new_booking(EVENT, "alice", 2, "k", LIMITS)
    existing = replace(_booking(BookingStatus.CONFIRMED), request_hash=first.request_hash, idempotency_key="k")
    check_same_request(existing, new_booking(EVENT, "alice", 2, "k", LIMITS))
    for changed in (new_booking(EVENT, "bob", 2, "k", LIMITS), new_booking(EVENT, "alice", 3, "k", LIMITS)):
        with pytest.raises(IdempotencyKeyReused):
            check_same_request(existing, changed)


@pytest.mark.parametrize(
    ("held", "settled"),
    [
        (SeatOutcome.RESERVED, (BookingStatus.CONFIRMED, None)),
        (SeatOutcome.SOLD_OUT, (BookingStatus.REJECTED, RejectReason.SOLD_OUT)),
        (SeatOutcome.EVENT_NOT_FOUND, (BookingStatus.REJECTED, RejectReason.EVENT_NOT_FOUND)),
        (SeatOutcome.RELEASED, (BookingStatus.REJECTED, RejectReason.ABANDONED)),
        (SeatOutcome.NONE, None),
    ],
)
def test_what_the_event_service_holds_decides_the_status(
    held: SeatOutcome, settled: tuple[BookingStatus, RejectReason | None] | None
) -> None:
    assert settled_status(held) == settled


@pytest.mark.parametrize(
    ("reason", "error"),
    [
        (RejectReason.SOLD_OUT, SoldOut),
        (RejectReason.EVENT_NOT_FOUND, EventNotFound),
        (RejectReason.ABANDONED, BookingAbandoned),
    ],
)
def test_rejected_bookings_answer_with_their_reason(reason: RejectReason, error: type[Exception]) -> None:
    booking = _booking(BookingStatus.REJECTED, reason)
    with pytest.raises(error) as raised:
        outcome(booking)
    assert raised.value.metadata["booking_id"] == str(booking.id)  # type: ignore[attr-defined]


def test_confirmed_and_cancelled_bookings_answer_with_the_booking() -> None:
    for status in (BookingStatus.CONFIRMED, BookingStatus.CANCELLED):
        booking = _booking(status)
        assert outcome(booking) is booking


@pytest.mark.parametrize("status", [BookingStatus.PENDING, BookingStatus.REJECTED])
def test_only_booked_seats_can_be_cancelled(status: BookingStatus) -> None:
    with pytest.raises(NotCancellable):
        check_cancellable(_booking(status, RejectReason.SOLD_OUT if status is BookingStatus.REJECTED else None))
