"""The audit at a quiet moment: wait until the system has settled, then check both databases
with `tools.audit.invariants` (seats add up per event, no seat held without a CONFIRMED
booking, nothing PENDING or CANCELLING, one booking per idempotency key). Used after a run by
the end-to-end tests, the load tool and the benchmark."""

from __future__ import annotations

import time

from tools.audit.invariants import Report, audit_dsns

UNSETTLED = ("PENDING", "CANCELLING")


def settled_audit(booking_dsn: str, event_dsn: str, settle_timeout: float, poll: float = 0.25) -> Report:
    """Audits once nothing is PENDING or CANCELLING, or when `settle_timeout` seconds are up
    (then what is still unsettled is a violation). Bookings left PENDING by a request that
    died are settled by the booking service's reconciler after PENDING_TIMEOUT_SECONDS."""
    deadline = time.monotonic() + settle_timeout
    while True:
        report = audit_dsns(booking_dsn, event_dsn)
        unsettled = sum(report.bookings_by_status.get(status, 0) for status in UNSETTLED)
        if not unsettled or time.monotonic() >= deadline:
            return report
        time.sleep(poll)
