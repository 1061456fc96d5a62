"""The audit's checks on snapshots made by hand (no database): what each one finds, and how the
report reads. tools/loadtest/audit_test.py plants the same violations in real databases."""

from __future__ import annotations

from datetime import UTC, datetime

from tools.audit.invariants import CANCELLED, HOLDS, KEYS, RESERVATIONS, SEATS, UNSETTLED_CHECK, check
from tools.audit.snapshot import EventSeats, OverdueHold, SeatMismatch, Seats, Snapshot

GIG, SHOW = "e-gig", "e-show"


def consistent() -> Snapshot:
    """Gig: 10 seats, 3 CONFIRMED (b1), 2 HELD (b2); Show: cancelled, everything given back."""
    return Snapshot(
        events={GIG: EventSeats(10, 5), SHOW: EventSeats(4, 4, cancelled=True)},
        reserved={"b1": Seats(GIG, 3), "b2": Seats(GIG, 2)},
        confirmed={"b1": Seats(GIG, 3)},
        held={"b2": Seats(GIG, 2)},
        statuses={"CONFIRMED": (1, 3), "HELD": (1, 2), "CANCELLED": (2, 4), "EXPIRED": (1, 1)},
        hold_grace=6.0,
    )


def test_a_consistent_snapshot_passes_and_says_what_it_saw() -> None:
    report = check(consistent())
    assert report.ok and report.violations == [] and report.in_flight == 0
    assert report.summary() == (
        "audit PASSED: 2 events (1 cancelled), 14 seats in all, 9 available; "
        "bookings: CANCELLED 2, CONFIRMED 1, EXPIRED 1, HELD 1"
    )
    assert report.lines() == [report.summary()]
    assert report.seats_by_status["HELD"] == 2


def test_held_seats_count_like_confirmed_ones() -> None:
    snapshot = consistent()
    del snapshot.held["b2"]  # the hold's seats are still taken, but no booking holds them
    report = check(snapshot)
    assert report.findings == {
        SEATS: [f"event {GIG}: total 10 != available 5 + CONFIRMED 3 + HELD 0 (off by +2)"],
        RESERVATIONS: [f"reservation b2 holds 2 seat(s) of event {GIG} without a CONFIRMED or HELD booking"],
    }


def test_a_booking_without_its_reservation_and_a_different_one_are_found() -> None:
    snapshot = consistent()
    snapshot.events[GIG] = EventSeats(10, 4)
    snapshot.held["b3"] = Seats(GIG, 1)
    snapshot.reserved["b1"] = Seats(GIG, 2)
    snapshot.seat_mismatches = [SeatMismatch(GIG, 10, 4, 4)]
    report = check(snapshot)
    assert report.findings[RESERVATIONS] == [
        "HELD booking b3 holds no reservation",
        f"booking b1: reservation has 2 seat(s) of event {GIG}, booking 3 of event {GIG}",
    ]
    assert report.findings[SEATS] == [f"event {GIG}: total 10 != available 4 + RESERVED 4"]


def test_bookings_of_an_unknown_event_are_found() -> None:
    snapshot = consistent()
    snapshot.confirmed["b9"] = Seats("e-ghost", 1)
    snapshot.reserved["b9"] = Seats("e-ghost", 1)
    assert check(snapshot).findings[SEATS] == [
        "bookings hold seats of event e-ghost, which the event service does not know"
    ]


def test_expiring_bookings_are_unsettled_and_in_flight() -> None:
    snapshot = consistent()
    snapshot.statuses.update({"EXPIRING": (2, 2), "PENDING": (1, 1)})
    report = check(snapshot)
    assert report.in_flight == 3
    assert report.findings == {UNSETTLED_CHECK: ["1 booking(s) still PENDING", "2 booking(s) still EXPIRING"]}


def test_a_hold_past_its_expiry_fails_and_names_how_late_it_is() -> None:
    snapshot = consistent()
    expired = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    snapshot.overdue_holds = [OverdueHold("b2", expired, 12.34)]
    snapshot.overdue_count = 3
    report = check(snapshot)
    assert report.findings == {
        HOLDS: [
            "booking b2 still HELD 12.3 s after its expireTime 2026-12-01T03:00:00+00:00 (allowed: 6 s)",
            "... and 2 more",
        ]
    }
    assert report.in_flight == 0  # not waited for: the sweeper is late


def test_a_hold_just_past_its_expiry_is_in_flight_not_a_violation() -> None:
    snapshot = consistent()
    snapshot.due_holds = 1  # b2's expireTime passed a moment ago: the sweeper is due to take it
    report = check(snapshot)
    assert report.ok and report.in_flight == 1


def test_a_cancelled_event_with_bookings_or_reservations_left_fails() -> None:
    snapshot = consistent()
    # Show's cancellation gave the seats back, but its bookings are still CONFIRMED and HELD.
    snapshot.confirmed.update({"s1": Seats(SHOW, 1), "s2": Seats(SHOW, 1)})
    snapshot.held["s3"] = Seats(SHOW, 1)
    report = check(snapshot)
    assert report.in_flight == 3
    assert report.findings[CANCELLED] == [
        f"cancelled event {SHOW} still has 2 CONFIRMED booking(s)",
        f"cancelled event {SHOW} still has 1 HELD booking(s)",
    ]
    snapshot = consistent()
    snapshot.events[SHOW] = EventSeats(4, 3, cancelled=True)
    snapshot.reserved["s4"] = Seats(SHOW, 1)
    snapshot.held["s4"] = Seats(SHOW, 1)
    assert check(snapshot).findings == {
        CANCELLED: [
            f"cancelled event {SHOW} still has 1 RESERVED reservation(s)",
            f"cancelled event {SHOW} still has 1 HELD booking(s)",
        ]
    }


def test_a_report_lists_at_most_the_limit_then_how_many_more() -> None:
    snapshot = consistent()
    for n in range(5):
        snapshot.reserved[f"o{n}"] = Seats(GIG, 1)
    snapshot.duplicate_keys = [("alice", "k1", 2)]
    report = check(snapshot, limit=2)
    assert report.findings[RESERVATIONS] == [
        f"reservation o0 holds 1 seat(s) of event {GIG} without a CONFIRMED or HELD booking",
        f"reservation o1 holds 1 seat(s) of event {GIG} without a CONFIRMED or HELD booking",
        "... and 3 more",
    ]
    assert report.findings[KEYS] == ["idempotency key 'k1' of user 'alice' has 2 bookings"]
    assert report.counts == {RESERVATIONS: 5, KEYS: 1}
    assert report.lines() == [
        "audit FAILED (6 violations): 2 events (1 cancelled), 14 seats in all, 9 available; "
        "bookings: CANCELLED 2, CONFIRMED 1, EXPIRED 1, HELD 1",
        "  FAILED: RESERVED reservations are exactly the CONFIRMED and HELD bookings",
        f"    reservation o0 holds 1 seat(s) of event {GIG} without a CONFIRMED or HELD booking",
        f"    reservation o1 holds 1 seat(s) of event {GIG} without a CONFIRMED or HELD booking",
        "    ... and 3 more",
        "  FAILED: one booking per idempotency key",
        "    idempotency key 'k1' of user 'alice' has 2 bookings",
    ]
