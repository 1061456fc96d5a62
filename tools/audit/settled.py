"""The audit at a quiet moment: wait until the system has settled, then check both databases
with `tools.audit.invariants` (seats add up per event, RESERVED reservations are exactly the
CONFIRMED and HELD bookings, nothing PENDING, CANCELLING or EXPIRING, no hold past its expiry,
cancelled events hold nothing, one booking per idempotency key, and the waiting lists': sizes,
offers recorded, no seat unoffered, first-fit order, no queue jumping). Used after a run by
the end-to-end tests, the load tool and the benchmark."""

from __future__ import annotations

import time

from tools.audit.invariants import DEFAULT_SWEEP_INTERVAL, UNSETTLED, Report, audit_dsns

__all__ = ["UNSETTLED", "settled_audit"]


def settled_audit(
    booking_dsn: str,
    event_dsn: str,
    settle_timeout: float,
    poll: float = 0.25,
    sweep_interval: float = DEFAULT_SWEEP_INTERVAL,
) -> Report:
    """Audits once nothing is in flight (`Report.in_flight`: nothing PENDING, CANCELLING or
    EXPIRING, no CONFIRMED or HELD booking of a cancelled event, no hold just past its
    expiry, no offer the booking service has yet to record), or when `settle_timeout` seconds
    are up (then what is still in flight is a violation). Bookings left PENDING by a request
    that died are settled by the booking service's reconciler after PENDING_TIMEOUT_SECONDS;
    those of a cancelled event by its follower within EVENT_CANCELLATION_POLL_SECONDS; offers
    by its offer follower within WAITLIST_POLL_SECONDS; a hold past its expireTime by the hold
    sweeper within `sweep_interval` (plus slack): one HELD longer than that is a violation
    whenever the audit looks, not something to wait for."""
    deadline = time.monotonic() + settle_timeout
    while True:
        report = audit_dsns(booking_dsn, event_dsn, sweep_interval)
        if not report.in_flight or time.monotonic() >= deadline:
            return report
        time.sleep(poll)
