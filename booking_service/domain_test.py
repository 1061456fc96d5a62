"""The booking domain's rules, without I/O."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from booking_service.answers import (
    BookingAbandoned,
    EventCancelled,
    EventNotFound,
    HoldExpired,
    IdempotencyKeyReused,
    NotCancellable,
    NotConfirmable,
    SalesEnded,
    SalesNotStarted,
    SoldOut,
    UserLimitReached,
    check_cancellable,
    check_same_request,
    confirm_outcome,
    outcome,
)
from booking_service.domain import (
    DEFAULT_SEATS,
    HOLDING,
    Booking,
    BookingStatus,
    CancelReason,
    Limits,
    Refused,
    RejectReason,
    SeatOutcome,
    Settlement,
    bookings_owner,
    may_see,
    new_booking,
    request_hash,
    settlement,
    within_user_limit,
)
from booking_service.errors import ERRORS
from service_runtime.auth.errors import PermissionDenied
from service_runtime.auth.principal import Principal
from service_runtime.errors import DomainError, InvalidArgument

LIMITS = Limits(max_seats_per_booking=4, max_seats_per_user_per_event=6)
ALICE = Principal("alice")
BOB = Principal("bob")
ADMIN = Principal("root", is_admin=True)
EVENT = str(uuid.uuid4())
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _booking(status: BookingStatus, reason: RejectReason | None = None) -> Booking:
    return Booking(uuid.uuid4(), "alice", uuid.UUID(EVENT), 1, status, reason, None, None, NOW, NOW)


@pytest.mark.parametrize(
    ("event", "user", "seats", "key", "field"),
    [
        ("", "alice", 1, "", "event_id"),
        ("123", "alice", 1, "", "event_id"),
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
        new_booking(ADMIN, event, user, seats, key, LIMITS)
    assert error.value.field == field


def test_zero_seats_means_one() -> None:
    # proto3 cannot tell `seats` left out from `"seats": 0`; both are the documented default.
    assert new_booking(ADMIN, EVENT, "alice", 0, "", LIMITS).seats == DEFAULT_SEATS == 1


def test_a_key_comes_with_a_hash_of_the_request() -> None:
    keyed = new_booking(ADMIN, EVENT, "alice", 2, "k", LIMITS)
    assert keyed.idempotency_key == "k" and keyed.request_hash is not None
    plain = new_booking(ADMIN, EVENT, "alice", 2, "", LIMITS)
    assert plain.idempotency_key is None and plain.request_hash is None


def test_a_retry_must_repeat_the_request() -> None:
    first = new_booking(ADMIN, EVENT, "alice", 2, "k", LIMITS)
    existing = replace(_booking(BookingStatus.CONFIRMED), request_hash=first.request_hash, idempotency_key="k")
    check_same_request(existing, new_booking(ADMIN, EVENT, "alice", 2, "k", LIMITS))
    for changed in (
        new_booking(ADMIN, EVENT, "bob", 2, "k", LIMITS),
        new_booking(ADMIN, EVENT, "alice", 3, "k", LIMITS),
    ):
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
    booking = _booking(BookingStatus.PENDING)
    expected = None if settled is None else Settlement(booking.id, *settled)
    assert settlement(booking, held) == expected


@pytest.mark.parametrize(
    ("reason", "error"),
    [
        (RejectReason.SOLD_OUT, SoldOut),
        (RejectReason.EVENT_NOT_FOUND, EventNotFound),
        (RejectReason.ABANDONED, BookingAbandoned),
        (RejectReason.USER_LIMIT_REACHED, UserLimitReached),
    ],
)
def test_rejected_bookings_answer_with_their_reason(reason: RejectReason, error: type[Exception]) -> None:
    booking = _booking(BookingStatus.REJECTED, reason)
    with pytest.raises(error) as raised:
        outcome(booking, LIMITS)
    assert raised.value.metadata["booking_id"] == str(booking.id)  # type: ignore[attr-defined]


def test_confirmed_and_cancelled_bookings_answer_with_the_booking() -> None:
    for status in (BookingStatus.CONFIRMED, BookingStatus.CANCELLED):
        booking = _booking(status)
        assert outcome(booking, LIMITS) is booking


@pytest.mark.parametrize("status", [BookingStatus.PENDING, BookingStatus.REJECTED])
def test_only_booked_seats_can_be_cancelled(status: BookingStatus) -> None:
    with pytest.raises(NotCancellable):
        check_cancellable(_booking(status, RejectReason.SOLD_OUT if status is BookingStatus.REJECTED else None))


def test_a_user_books_for_themselves_by_default() -> None:
    assert new_booking(ALICE, EVENT, "", 1, "", LIMITS).user_id == "alice"
    assert new_booking(ALICE, EVENT, "alice", 1, "", LIMITS).user_id == "alice"


def test_only_an_admin_books_for_someone_else() -> None:
    with pytest.raises(PermissionDenied):
        new_booking(ALICE, EVENT, "bob", 1, "", LIMITS)
    assert new_booking(ADMIN, EVENT, "bob", 1, "", LIMITS).user_id == "bob"


def test_a_booking_is_seen_by_its_owner_and_admins_only() -> None:
    booking = _booking(BookingStatus.CONFIRMED)
    assert may_see(ALICE, booking) and may_see(ADMIN, booking)
    assert not may_see(BOB, booking)


def test_listings_are_the_callers_own_unless_an_admin_asks() -> None:
    assert bookings_owner(ALICE, "me") == "alice" and bookings_owner(ALICE, "alice") == "alice"
    assert bookings_owner(ADMIN, "bob") == "bob"
    with pytest.raises(PermissionDenied):
        bookings_owner(ALICE, "bob")


def test_the_user_limit_is_decided_in_arrival_order_per_user_and_event() -> None:
    other_event = uuid.uuid4()
    news = [
        new_booking(ALICE, EVENT, "", 4, "", LIMITS),  # 2 held + 4 = 6: fits
        new_booking(ALICE, EVENT, "", 1, "", LIMITS),  # 7: over
        new_booking(ALICE, str(other_event), "", 4, "", LIMITS),  # another event: its own count
        new_booking(BOB, EVENT, "", 4, "", LIMITS),  # another user: their own count
        new_booking(BOB, EVENT, "", 2, "", LIMITS),  # 6: fits
    ]
    held = {("alice", uuid.UUID(EVENT)): 2}
    assert within_user_limit(held, news, LIMITS.max_seats_per_user_per_event) == [True, False, True, True, True]


def test_a_hold_hash_differs_and_a_plain_hash_is_the_one_from_before_holds() -> None:
    event = uuid.UUID(EVENT)
    before_holds = hashlib.sha256(f"{event}\nalice\n2".encode()).digest()
    assert request_hash(event, "alice", 2) == before_holds
    assert request_hash(event, "alice", 2, hold=True) != before_holds
    held = new_booking(ALICE, EVENT, "", 2, "k", LIMITS, hold=True)
    assert held.hold and held.request_hash == request_hash(event, "alice", 2, hold=True)


def test_a_retry_must_repeat_the_hold_flag() -> None:
    held = new_booking(ALICE, EVENT, "", 2, "k", LIMITS, hold=True)
    existing = replace(_booking(BookingStatus.HELD), request_hash=held.request_hash, idempotency_key="k")
    check_same_request(existing, new_booking(ALICE, EVENT, "", 2, "k", LIMITS, hold=True))
    with pytest.raises(IdempotencyKeyReused):
        check_same_request(existing, new_booking(ALICE, EVENT, "", 2, "k", LIMITS))


def test_reserved_seats_make_a_hold_held_and_anything_else_confirmed() -> None:
    hold = replace(_booking(BookingStatus.PENDING), hold=True)
    assert settlement(hold, SeatOutcome.RESERVED) == Settlement(hold.id, BookingStatus.HELD)
    plain = _booking(BookingStatus.PENDING)
    assert settlement(plain, SeatOutcome.RESERVED) == Settlement(plain.id, BookingStatus.CONFIRMED)


@pytest.mark.parametrize(
    "reason", [RejectReason.SALES_NOT_STARTED, RejectReason.SALES_ENDED, RejectReason.EVENT_CANCELLED]
)
def test_a_refusal_rejects_with_its_reason_and_keeps_only_known_facts(reason: RejectReason) -> None:
    booking = _booking(BookingStatus.PENDING)
    refused = Refused(reason, {"sales_start_time": "2027-01-01T10:00:00Z", "event_id": EVENT})
    assert settlement(booking, refused) == Settlement(
        booking.id, BookingStatus.REJECTED, reason, {"sales_start_time": "2027-01-01T10:00:00Z"}
    )
    assert settlement(booking, Refused(reason)) == Settlement(booking.id, BookingStatus.REJECTED, reason, None)


@pytest.mark.parametrize(
    ("reason", "error", "reason_code"),
    [
        (RejectReason.SALES_NOT_STARTED, SalesNotStarted, "SALES_NOT_STARTED"),
        (RejectReason.SALES_ENDED, SalesEnded, "SALES_ENDED"),
        (RejectReason.EVENT_CANCELLED, EventCancelled, "EVENT_CANCELLED"),
    ],
)
def test_refusals_of_the_event_answer_409_with_their_reason(
    reason: RejectReason, error: type[Exception], reason_code: str
) -> None:
    booking = _booking(BookingStatus.REJECTED, reason)
    with pytest.raises(error) as raised:
        outcome(booking, LIMITS)
    assert isinstance(raised.value, DomainError)
    spec = ERRORS.spec(raised.value)
    assert (spec.http_status, spec.reason) == (409, reason_code)


def test_sales_not_started_repeats_the_start_time_on_every_answer() -> None:
    booking = replace(
        _booking(BookingStatus.REJECTED, RejectReason.SALES_NOT_STARTED),
        reject_metadata={"sales_start_time": "2027-01-01T10:00:00Z"},
    )
    for _ in range(2):
        with pytest.raises(SalesNotStarted) as raised:
            outcome(booking, LIMITS)
        assert raised.value.metadata["sales_start_time"] == "2027-01-01T10:00:00Z"


def test_held_and_expiring_seats_count_against_the_cap_and_expired_ones_do_not() -> None:
    assert BookingStatus.HELD in HOLDING and BookingStatus.EXPIRING in HOLDING
    assert BookingStatus.EXPIRED not in HOLDING and BookingStatus.CANCELLED not in HOLDING


def test_confirming_a_confirmed_booking_answers_it() -> None:
    booking = _booking(BookingStatus.CONFIRMED)
    assert confirm_outcome(booking, expired=True, event_cancelled=True) is booking


@pytest.mark.parametrize(
    ("status", "expired", "event_cancelled", "error"),
    [
        (BookingStatus.HELD, True, False, HoldExpired),
        (BookingStatus.EXPIRING, False, False, HoldExpired),
        (BookingStatus.EXPIRED, True, True, HoldExpired),
        (BookingStatus.HELD, False, True, EventCancelled),
        (BookingStatus.PENDING, False, False, NotConfirmable),
        (BookingStatus.CANCELLED, False, False, NotConfirmable),
        (BookingStatus.CANCELLING, False, False, NotConfirmable),
    ],
)
def test_a_confirm_that_moved_nothing_says_why(
    status: BookingStatus, expired: bool, event_cancelled: bool, error: type[Exception]
) -> None:
    with pytest.raises(error) as raised:
        confirm_outcome(_booking(status), expired, event_cancelled)
    if error is NotConfirmable:
        assert raised.value.metadata["status"] == status.value  # type: ignore[attr-defined]


def test_a_hold_cancelled_with_its_event_is_not_confirmable_for_that_reason() -> None:
    booking = replace(_booking(BookingStatus.CANCELLED), cancel_reason=CancelReason.EVENT_CANCELLED)
    with pytest.raises(EventCancelled):
        confirm_outcome(booking, expired=False, event_cancelled=True)


def test_a_held_booking_still_running_is_tried_again() -> None:
    assert confirm_outcome(_booking(BookingStatus.HELD), expired=False, event_cancelled=False) is None


@pytest.mark.parametrize("status", [BookingStatus.HELD, BookingStatus.CONFIRMED, BookingStatus.EXPIRED])
def test_held_and_expired_bookings_are_cancellable_or_returned(status: BookingStatus) -> None:
    check_cancellable(_booking(status))
