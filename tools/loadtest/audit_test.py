"""The load tool's audit catches violations planted in real databases of both services."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from tools.audit.settled import settled_audit
from tools.loadtest.main import main
from tools.testing.postgres import PostgresServer, ServiceDatabases, service_databases, service_templates

EVENT = uuid.UUID("00000000-0000-4000-8000-000000000001")
BOOKED = uuid.UUID("00000000-0000-4000-8000-0000000000b1")


@pytest.fixture(scope="module")
def templates(postgresql_server: PostgresServer) -> Iterator[tuple[str, str]]:
    with service_templates(postgresql_server) as templates:
        yield templates


class Databases(ServiceDatabases):
    def add_booking(
        self, booking_id: uuid.UUID, seats: int, status: str, key: str | None = None, expires_in: float | None = None
    ) -> None:
        """A booking of EVENT; a hold (expire_time = now() + `expires_in` s) when `expires_in` is given."""
        self.bookings(
            "INSERT INTO bookings"
            " (id, user_id, event_id, seats, status, reject_reason, idempotency_key, request_hash, hold, expire_time)"
            " VALUES (%s, 'alice', %s, %s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s))",
            booking_id,
            EVENT,
            seats,
            status,
            "SOLD_OUT" if status == "REJECTED" else None,
            key,
            b"hash" if key else None,
            expires_in is not None,
            expires_in,
        )

    def reserve(self, booking_id: uuid.UUID, seats: int) -> None:
        """Takes `seats` seats of EVENT for `booking_id`, as the event service does."""
        self.events("UPDATE events SET available_seats = available_seats - %s WHERE id = %s", seats, EVENT)
        self.events(
            "INSERT INTO reservations (booking_id, event_id, seats, state) VALUES (%s, %s, %s, 'RESERVED')",
            booking_id,
            EVENT,
            seats,
        )


@pytest.fixture
def dbs(postgresql_server: PostgresServer, templates: tuple[str, str]) -> Iterator[Databases]:
    """One event of 10 seats, 3 of them held by a CONFIRMED booking: a consistent state."""
    with service_databases(postgresql_server, templates) as dsns:
        dbs = Databases(*dsns)
        dbs.events(
            "INSERT INTO events (id, name, start_time, total_seats, available_seats) VALUES (%s, 'Gig', now(), 10, 7)",
            EVENT,
        )
        dbs.events(
            "INSERT INTO reservations (booking_id, event_id, seats, state) VALUES (%s, %s, 3, 'RESERVED')",
            BOOKED,
            EVENT,
        )
        dbs.add_booking(BOOKED, 3, "CONFIRMED", key="k1")
        yield dbs


def audit_cli(dbs: Databases, capsys: pytest.CaptureFixture[str], settle: str = "0") -> tuple[int, str]:
    code = main(["audit", "--booking-dsn", dbs.booking_dsn, "--event-dsn", dbs.event_dsn, "--settle-timeout", settle])
    return code, capsys.readouterr().out


def test_a_consistent_state_passes(dbs: Databases, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = audit_cli(dbs, capsys)
    assert code == 0, out
    assert "audit PASSED: 1 events, 10 seats in all, 7 available; bookings: CONFIRMED 1" in out


def test_seats_held_without_a_confirmed_booking_fail_the_audit(
    dbs: Databases, capsys: pytest.CaptureFixture[str]
) -> None:
    orphan = uuid.uuid4()
    dbs.events("UPDATE events SET available_seats = available_seats - 2 WHERE id = %s", EVENT)
    dbs.events(
        "INSERT INTO reservations (booking_id, event_id, seats, state) VALUES (%s, %s, 2, 'RESERVED')",
        orphan,
        EVENT,
    )
    code, out = audit_cli(dbs, capsys)
    assert code == 1
    assert f"reservation {orphan} holds 2 seat(s) of event {EVENT} without a CONFIRMED or HELD booking" in out
    assert "total 10 != available 5 + CONFIRMED 3 + HELD 0 (off by +2)" in out


def test_seat_counts_that_do_not_add_up_fail_the_audit(dbs: Databases, capsys: pytest.CaptureFixture[str]) -> None:
    dbs.events("UPDATE events SET available_seats = 8 WHERE id = %s", EVENT)
    code, out = audit_cli(dbs, capsys)
    assert code == 1
    assert "total 10 != available 8 + RESERVED 3" in out


def test_a_confirmed_booking_without_seats_fails_the_audit(dbs: Databases, capsys: pytest.CaptureFixture[str]) -> None:
    ghost = uuid.uuid4()
    dbs.add_booking(ghost, 1, "CONFIRMED")
    code, out = audit_cli(dbs, capsys)
    assert code == 1
    assert f"CONFIRMED booking {ghost} holds no reservation" in out


def test_held_seats_count_and_an_expired_hold_holds_none(dbs: Databases, capsys: pytest.CaptureFixture[str]) -> None:
    held, expired = uuid.uuid4(), uuid.uuid4()
    dbs.reserve(held, 2)
    dbs.add_booking(held, 2, "HELD", expires_in=600)
    dbs.add_booking(expired, 1, "EXPIRED", expires_in=-60)
    code, out = audit_cli(dbs, capsys)
    assert code == 0, out
    assert "audit PASSED: 1 events, 10 seats in all, 5 available; bookings: CONFIRMED 1, EXPIRED 1, HELD 1" in out


def test_a_hold_left_held_past_its_expiry_fails_the_audit(dbs: Databases, capsys: pytest.CaptureFixture[str]) -> None:
    late, recent = uuid.uuid4(), uuid.uuid4()
    for hold, age in ((late, 30), (recent, 2)):
        dbs.reserve(hold, 1)
        dbs.add_booking(hold, 1, "HELD", expires_in=-age)
    code, out = audit_cli(dbs, capsys)
    assert code == 1
    assert "FAILED: no hold HELD past its expireTime" in out
    # 2 s late is within the sweep interval (1 s) and the slack (5 s); 30 s is not.
    assert f"booking {late} still HELD 30." in out and "(allowed: 6 s)" in out
    assert str(recent) not in out
    # The recent one is waited for (the sweeper is due to take it); the late one fails at once.
    report = settled_audit(dbs.booking_dsn, dbs.event_dsn, settle_timeout=0.3, poll=0.1)
    assert report.in_flight == 1 and len(report.violations) == 1


def test_bookings_of_a_cancelled_event_left_confirmed_fail_the_audit(
    dbs: Databases, capsys: pytest.CaptureFixture[str]
) -> None:
    # The event service cancelled the event (seats back, reservation RELEASED); the booking
    # service never cancelled the booking.
    dbs.events("UPDATE events SET state = 'CANCELLED', cancel_time = now(), available_seats = 10 WHERE id = %s", EVENT)
    dbs.events(
        "UPDATE reservations SET state = 'RELEASED', release_time = now(), release_reason = 'EVENT_CANCELLED'"
        " WHERE booking_id = %s",
        BOOKED,
    )
    report = settled_audit(dbs.booking_dsn, dbs.event_dsn, settle_timeout=0.3, poll=0.1)
    assert report.in_flight == 1  # waited for, up to the settle time
    assert report.findings["a cancelled event holds nothing"] == [
        f"cancelled event {EVENT} still has 1 CONFIRMED booking(s)"
    ]
    # Once the booking is cancelled, the cancelled event passes.
    dbs.bookings("UPDATE bookings SET status = 'CANCELLED', cancel_reason = 'EVENT_CANCELLED' WHERE id = %s", BOOKED)
    code, out = audit_cli(dbs, capsys)
    assert code == 0, out
    assert "audit PASSED: 1 events (1 cancelled), 10 seats in all, 10 available; bookings: CANCELLED 1" in out


def test_a_cancelled_event_still_holding_a_reservation_fails_the_audit(
    dbs: Databases, capsys: pytest.CaptureFixture[str]
) -> None:
    dbs.events("UPDATE events SET state = 'CANCELLED', cancel_time = now() WHERE id = %s", EVENT)
    dbs.bookings("UPDATE bookings SET status = 'CANCELLED', cancel_reason = 'EVENT_CANCELLED' WHERE id = %s", BOOKED)
    code, out = audit_cli(dbs, capsys)
    assert code == 1
    assert f"cancelled event {EVENT} still has 1 RESERVED reservation(s)" in out


def test_a_booking_left_pending_fails_the_audit_after_the_settle_time(dbs: Databases) -> None:
    dbs.add_booking(uuid.uuid4(), 1, "PENDING")
    started = time.monotonic()
    report = settled_audit(dbs.booking_dsn, dbs.event_dsn, settle_timeout=0.5, poll=0.1)
    assert time.monotonic() - started >= 0.5  # it waited for the booking to settle
    assert report.violations == ["1 booking(s) still PENDING"]


def test_a_hold_left_expiring_fails_the_audit_after_the_settle_time(dbs: Databases) -> None:
    dbs.add_booking(uuid.uuid4(), 1, "EXPIRING", expires_in=-1)
    report = settled_audit(dbs.booking_dsn, dbs.event_dsn, settle_timeout=0.3, poll=0.1)
    assert report.violations == ["1 booking(s) still EXPIRING"]


def test_the_audit_waits_for_a_pending_booking_to_settle(dbs: Databases) -> None:
    pending = uuid.uuid4()
    dbs.add_booking(pending, 1, "PENDING")
    settle = threading.Timer(
        0.3,
        dbs.bookings,
        ("UPDATE bookings SET status = 'REJECTED', reject_reason = 'SOLD_OUT' WHERE id = %s", pending),
    )
    settle.start()
    try:
        report = settled_audit(dbs.booking_dsn, dbs.event_dsn, settle_timeout=10, poll=0.05)
    finally:
        settle.join()
    assert report.ok, report.violations
    assert report.bookings_by_status == {"CONFIRMED": 1, "REJECTED": 1}


def test_two_bookings_with_one_idempotency_key_fail_the_audit(
    dbs: Databases, capsys: pytest.CaptureFixture[str]
) -> None:
    # The schema forbids it (a unique index on a user's keys; both bookings here are alice's);
    # the audit must catch it should that guard ever go.
    dbs.bookings("DROP INDEX bookings_user_key")
    dbs.add_booking(uuid.uuid4(), 1, "REJECTED", key="k1")
    code, out = audit_cli(dbs, capsys)
    assert code == 1
    assert "idempotency key 'k1' of user 'alice' has 2 bookings" in out
