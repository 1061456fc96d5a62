"""Forwards to the one seat audit, `tools.audit.invariants`; nothing is checked here.

Kept only while the event service's own tests (repository_test, grpc_api_test, coalescer_test)
still import `event_service.audit`: once they import `tools.audit.invariants` (and depend on
`//tools/audit:invariants`), delete this file and the `:audit` target.
"""

from __future__ import annotations

from tools.audit.invariants import SeatMismatch, assert_seats_consistent, seat_mismatches

__all__ = ["SeatMismatch", "assert_seats_consistent", "seat_mismatches"]
