"""The waiting-list checks of the audit on real databases of both services: a clean history
passes, and each violation planted in it is found by its check (and only the checks it breaks).

The history, written as the services would write it, at instants T(n) seconds apart:
  T0  an event of 4 seats sells out: b1 (2 seats) and b2 (2) CONFIRMED.
  T1..T5  u1 (2 seats), u2 (3), u3 (1), u4 (1), u5 (1) join its waiting list.
  T6  b2 is cancelled: its 2 seats go to u1 (first fit), offer o1, recorded as a HELD booking.
  T7  u4 leaves.
Left: u2, u3, u5 WAITING (waitlist_size 3), no seat available.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tools.audit.invariants import (
    OFFER_ORDER,
    OFFER_SEATS,
    OFFERS_RECORDED,
    QUEUE_JUMPS,
    RESERVATIONS,
    SEATS,
    UNOFFERED,
    WAITLIST_SIZES,
    Report,
    audit_dsns,
)
from tools.audit.settled import settled_audit
from tools.testing.postgres import PostgresServer, ServiceDatabases, service_databases, service_templates

EVENT = uuid.UUID("00000000-0000-4000-8000-00000000000e")
START = datetime.now(UTC) - timedelta(hours=1)


def T(n: float) -> datetime:
    return START + timedelta(seconds=n)


B1, B2, N1, N2 = (uuid.uuid5(uuid.NAMESPACE_URL, name) for name in ("b1", "b2", "n1", "n2"))
E = {n: uuid.uuid5(uuid.NAMESPACE_URL, f"entry-u{n}") for n in range(1, 7)}
O1, O2, O3, O4 = (uuid.uuid5(uuid.NAMESPACE_URL, name) for name in ("o1", "o2", "o3", "o4"))


@pytest.fixture(scope="module")
def templates(postgresql_server: PostgresServer) -> Iterator[tuple[str, str]]:
    with service_templates(postgresql_server) as templates:
        yield templates


class History(ServiceDatabases):
    """Both databases, written to as the services write them."""

    def audit(self) -> Report:
        return audit_dsns(self.booking_dsn, self.event_dsn)

    def reserve(self, booking_id: uuid.UUID, seats: int, at: datetime, user: str = "buyer") -> None:
        """A booking (not an offer) takes seats: the reservation, and its CONFIRMED booking."""
        self.events("UPDATE events SET available_seats = available_seats - %s WHERE id = %s", seats, EVENT)
        self.events(
            "INSERT INTO reservations (booking_id, event_id, seats, state, create_time)"
            " VALUES (%s, %s, %s, 'RESERVED', %s)",
            booking_id,
            EVENT,
            seats,
            at,
        )
        self.bookings(
            "INSERT INTO bookings (id, user_id, event_id, seats, status) VALUES (%s, %s, %s, %s, 'CONFIRMED')",
            booking_id,
            user,
            EVENT,
            seats,
        )

    def release(self, booking_id: uuid.UUID, at: datetime, status: str = "CANCELLED") -> None:
        """A booking gives its seats back (nothing offered: `offer` does that)."""
        self.events(
            "WITH r AS (UPDATE reservations SET state = 'RELEASED', release_time = %s"
            "           WHERE booking_id = %s AND state = 'RESERVED' RETURNING event_id, seats)"
            " UPDATE events e SET available_seats = available_seats + r.seats FROM r WHERE e.id = r.event_id",
            at,
            booking_id,
        )
        self.bookings("UPDATE bookings SET status = %s WHERE id = %s", status, booking_id)

    def join(self, n: int, seats: int, at: datetime) -> None:
        self.events(
            "INSERT INTO waitlist_entries (id, event_id, user_id, seats, state, create_time, update_time)"
            " VALUES (%s, %s, %s, %s, 'WAITING', %s, %s)",
            E[n],
            EVENT,
            f"u{n}",
            seats,
            at,
            at,
        )
        self.events("UPDATE events SET waitlist_size = waitlist_size + 1 WHERE id = %s", EVENT)

    def leave(self, n: int, at: datetime) -> None:
        self.events("UPDATE waitlist_entries SET state = 'LEFT', update_time = %s WHERE id = %s", at, E[n])
        self.events("UPDATE events SET waitlist_size = waitlist_size - 1 WHERE id = %s", EVENT)

    def offer(self, n: int, booking_id: uuid.UUID, at: datetime, record: bool = True) -> None:
        """Entry n's seats reserved for `booking_id`, the entry OFFERED (event service); with
        `record`, acknowledged and recorded as a HELD booking (booking service)."""
        with psycopg.connect(self.event_dsn, autocommit=True) as conn:
            row = conn.execute("SELECT seats FROM waitlist_entries WHERE id = %s", (E[n],)).fetchone()
            assert row is not None
            seats = row[0]
            conn.execute(
                "INSERT INTO reservations (booking_id, event_id, seats, state, create_time)"
                " VALUES (%s, %s, %s, 'RESERVED', %s)",
                (booking_id, EVENT, seats, at),
            )
            conn.execute(
                "UPDATE waitlist_entries SET state = 'OFFERED', booking_id = %s, offer_time = %s, update_time = %s,"
                " acknowledge_time = CASE WHEN %s THEN %s END WHERE id = %s",
                (booking_id, at, at, record, at, E[n]),
            )
            conn.execute(
                "UPDATE events SET available_seats = available_seats - %s, waitlist_size = waitlist_size - 1"
                " WHERE id = %s",
                (seats, EVENT),
            )
        if record:
            self.record(n, booking_id, seats)

    def record(self, n: int, booking_id: uuid.UUID, seats: int, user: str | None = None) -> None:
        self.bookings(
            "INSERT INTO bookings (id, user_id, event_id, seats, status, hold, expire_time, waitlist_entry_id)"
            " VALUES (%s, %s, %s, %s, 'HELD', true, now() + interval '10 minutes', %s)",
            booking_id,
            user or f"u{n}",
            EVENT,
            seats,
            E[n],
        )


@pytest.fixture
def history(postgresql_server: PostgresServer, templates: tuple[str, str]) -> Iterator[History]:
    with service_databases(postgresql_server, templates) as dsns:
        h = History(*dsns)
        h.events(
            "INSERT INTO events (id, name, start_time, total_seats, available_seats) VALUES (%s, 'Gig', now(), 4, 4)",
            EVENT,
        )
        h.reserve(B1, 2, T(0))
        h.reserve(B2, 2, T(0))
        for n, seats in ((1, 2), (2, 3), (3, 1), (4, 1), (5, 1)):
            h.join(n, seats, T(n))
        h.release(B2, T(6))
        h.offer(1, O1, T(6))
        h.leave(4, T(7))
        yield h


def test_a_clean_history_passes_and_the_summary_counts_entries(history: History) -> None:
    report = history.audit()
    assert report.ok, report.lines()
    assert report.in_flight == 0
    assert report.waitlist_by_state == {"WAITING": 3, "OFFERED": 1, "LEFT": 1}
    assert report.summary().endswith("; waiting lists: LEFT 1, OFFERED 1, WAITING 3")


def test_first_fit_may_pass_over_an_entry_too_big_and_offer_the_rest_of_the_seats(history: History) -> None:
    # b1's 2 seats come back: u2 (3 seats) does not fit and keeps its place; u3 and u5 get one each.
    history.release(B1, T(8))
    history.offer(3, O2, T(8))
    history.offer(5, O3, T(8))
    report = history.audit()
    assert report.ok, report.lines()
    assert report.waitlist_by_state == {"WAITING": 1, "OFFERED": 3, "LEFT": 1}


def test_a_wrong_waitlist_size_is_found(history: History) -> None:
    history.events("UPDATE events SET waitlist_size = 2 WHERE id = %s", EVENT)
    assert history.audit().findings == {WAITLIST_SIZES: [f"event {EVENT}: waitlist_size 2 != 3 WAITING entries"]}


def test_entries_still_waiting_on_a_cancelled_event_are_found(history: History) -> None:
    # The cancellation gave every seat back and closed nothing.
    history.events(
        "UPDATE events SET state = 'CANCELLED', cancel_time = now(), available_seats = 4 WHERE id = %s", EVENT
    )
    history.events("UPDATE reservations SET state = 'RELEASED', release_time = now() WHERE state = 'RESERVED'")
    history.bookings("UPDATE bookings SET status = 'CANCELLED', cancel_reason = 'EVENT_CANCELLED'")
    findings = history.audit().findings
    assert findings == {WAITLIST_SIZES: [f"cancelled event {EVENT} still has 3 WAITING entries"]}
    # Closed as the cancellation should have: clean, though seats are free (no offers then).
    history.events("UPDATE waitlist_entries SET state = 'CLOSED', update_time = now() WHERE state = 'WAITING'")
    history.events("UPDATE events SET waitlist_size = 0 WHERE id = %s", EVENT)
    assert history.audit().ok


def test_an_offer_whose_reservation_has_other_seats_is_found(history: History) -> None:
    history.events("UPDATE waitlist_entries SET seats = 1 WHERE id = %s", E[1])
    findings = history.audit().findings
    assert findings[OFFER_SEATS] == [
        f"entry {E[1]} was offered 1 seat(s) of event {EVENT}, its reservation {O1} has 2 seat(s) of event {EVENT}"
    ]
    # The booking recorded for it has 2 seats too.
    assert findings[OFFERS_RECORDED] == [
        f"booking {O1}: (entry, user, event, seats) = ('{E[1]}', 'u1', '{EVENT}', 2), "
        f"its offer ('{E[1]}', 'u1', '{EVENT}', 1)"
    ]
    assert set(findings) == {OFFER_SEATS, OFFERS_RECORDED}


def test_an_offer_not_acknowledged_is_waited_for_then_found(history: History) -> None:
    history.release(B1, T(8))
    history.offer(3, O2, T(8), record=False)
    history.offer(5, O3, T(8), record=False)
    report = settled_audit(history.booking_dsn, history.event_dsn, settle_timeout=0.3, poll=0.1)
    assert report.in_flight == 2
    assert report.findings[OFFERS_RECORDED] == [
        f"offer of entry {E[3]} (booking {O2}) not acknowledged by the booking service",
        f"offer of entry {E[5]} (booking {O3}) not acknowledged by the booking service",
    ]
    # Seats reserved without a booking, meanwhile, as for any reservation in flight.
    assert set(report.findings) == {OFFERS_RECORDED, RESERVATIONS, SEATS}

    def follower() -> None:  # records both, then acknowledges them, as the booking service does
        history.record(3, O2, 1)
        history.record(5, O3, 1)
        history.events("UPDATE waitlist_entries SET acknowledge_time = now() WHERE state = 'OFFERED'")

    timer = threading.Timer(0.3, follower)
    timer.start()
    try:
        report = settled_audit(history.booking_dsn, history.event_dsn, settle_timeout=10, poll=0.05)
    finally:
        timer.join()
    assert report.ok, report.lines()


def test_an_acknowledged_offer_without_its_booking_is_found(history: History) -> None:
    history.bookings("DELETE FROM bookings WHERE id = %s", O1)
    findings = history.audit().findings
    assert findings[OFFERS_RECORDED] == [
        f"offer of entry {E[1]} acknowledged, but booking {O1} is not recorded as an offer"
    ]
    assert set(findings) == {OFFERS_RECORDED, RESERVATIONS, SEATS}


def test_an_offer_recorded_for_another_user_is_found(history: History) -> None:
    history.bookings("UPDATE bookings SET user_id = 'mallory' WHERE id = %s", O1)
    assert history.audit().findings == {
        OFFERS_RECORDED: [
            f"booking {O1}: (entry, user, event, seats) = ('{E[1]}', 'mallory', '{EVENT}', 2), "
            f"its offer ('{E[1]}', 'u1', '{EVENT}', 2)"
        ]
    }


def test_a_booking_claiming_an_entry_that_offered_nothing_is_found(history: History) -> None:
    history.bookings(
        "UPDATE bookings SET waitlist_entry_id = %s, hold = true, expire_time = now() WHERE id = %s", E[2], B1
    )
    findings = history.audit().findings
    assert findings == {OFFERS_RECORDED: [f"booking {B1} names entry {E[2]}, which offered no seats under it"]}


def test_seats_left_unoffered_while_an_entry_that_fits_waits_are_found(history: History) -> None:
    history.release(B1, T(8))  # 2 seats back, offered to nobody: u3 (1 seat) fits
    assert history.audit().findings == {
        UNOFFERED: [
            f"event {EVENT} has 2 seat(s) available, "
            f"and entry {E[3]} (user u3, 1 seat(s), #{_seq(history, 3)}) still WAITING"
        ]
    }
    # Once sales have ended no offers are made: the free seats are no violation.
    history.events("UPDATE events SET sales_end_time = now() - interval '1 second' WHERE id = %s", EVENT)
    assert history.audit().ok


def test_an_offer_that_skipped_an_earlier_entry_that_fits_is_found(history: History) -> None:
    # b1's 2 seats: u5 gets one while u3 (1 seat, joined before u5) waits; u3 leaves later.
    history.release(B1, T(8))
    history.offer(5, O2, T(8))
    history.leave(3, T(9))
    assert history.audit().findings == {
        OFFER_ORDER: [
            f"entries {E[5]} (#{_seq(history, 5)}, 1 seat(s)) were offered at {T(8).isoformat()}, but entry "
            f"{E[3]} (#{_seq(history, 3)}, 1 seat(s)), which joined before them and fits in their seats, "
            f"waited until {T(9).isoformat()}"
        ]
    }


def test_an_offer_passing_over_an_entry_still_waiting_is_found(history: History) -> None:
    history.release(B1, T(8))
    history.offer(5, O2, T(8))
    findings = history.audit().findings
    assert findings[OFFER_ORDER] == [
        f"entries {E[5]} (#{_seq(history, 5)}, 1 seat(s)) were offered at {T(8).isoformat()}, but entry "
        f"{E[3]} (#{_seq(history, 3)}, 1 seat(s)), which joined before them and fits in their seats, "
        "is still WAITING"
    ]
    assert set(findings) == {OFFER_ORDER, UNOFFERED}


def test_seats_shared_among_later_small_entries_past_a_big_one_that_fits_are_found(history: History) -> None:
    # 3 seats come back (b1's 2 and one more); u2 (3 seats) fits them all, but u3, u5 and a
    # newer u6 get one each: together they had the seats u2 needed.
    history.join(6, 1, T(7.5))
    history.events("UPDATE events SET total_seats = 5, available_seats = available_seats + 1 WHERE id = %s", EVENT)
    history.release(B1, T(8))
    for n, booking_id in ((3, O2), (5, O3), (6, O4)):
        history.offer(n, booking_id, T(8))
    offered = ", ".join(f"{E[n]} (#{_seq(history, n)}, 1 seat(s))" for n in (3, 5, 6))
    assert history.audit().findings == {
        OFFER_ORDER: [
            f"entries {offered} were offered at {T(8).isoformat()}, but entry {E[2]} (#{_seq(history, 2)}, "
            "3 seat(s)), which joined before them and fits in their seats, is still WAITING"
        ]
    }
    # (With 2 seats only, u2 would not have fitted: test_first_fit_may_pass_over_an_entry_too_big...)


def test_a_reservation_taking_seats_while_the_list_waits_is_found(history: History) -> None:
    # b1's seats go to a newcomer instead of the list; released again later, it still jumped.
    history.release(B1, T(8))
    history.reserve(N1, 1, T(9), user="newcomer")
    history.reserve(N2, 1, T(9.5), user="newcomer")
    history.release(N2, T(10))
    history.reserve(uuid.uuid4(), 1, T(11), user="newcomer")
    report = history.audit()
    assert report.findings[QUEUE_JUMPS][:2] == [
        f"reservation {N1} took seats of event {EVENT} at {T(9).isoformat()} "
        f"while entry {E[2]} (joined {T(2).isoformat()}) was WAITING",
        f"reservation {N2} took seats of event {EVENT} at {T(9.5).isoformat()} "
        f"while entry {E[2]} (joined {T(2).isoformat()}) was WAITING",
    ]
    assert report.counts[QUEUE_JUMPS] == 3 and set(report.findings) == {QUEUE_JUMPS}


def test_reservations_before_anyone_waits_or_after_everyone_left_are_no_jump(history: History) -> None:
    for n in (2, 3, 5):
        history.leave(n, T(8))
    history.release(B1, T(9))
    history.reserve(N1, 2, T(9))
    report = history.audit()
    assert report.ok, report.lines()


def _seq(history: History, n: int) -> int:
    with psycopg.connect(history.event_dsn) as conn:
        row = conn.execute("SELECT seq FROM waitlist_entries WHERE id = %s", (E[n],)).fetchone()
    assert row is not None
    return int(row[0])
