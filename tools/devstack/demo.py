"""Demo events, created through the event service's REST API, and the banner that shows what
runs and how to try it (ready-to-paste `curl` commands with the demo events' ids)."""

from __future__ import annotations

import json
import shlex
import urllib.request
from dataclasses import dataclass

from tools.stack.stack import Stack

# (name, start time, seats): a small sale to sell out by hand, and a large one for load tests.
DEMO_EVENTS = [
    ("TicketFlow Live: the flash sale", "2030-06-01T20:00:00Z", 100),
    ("Bazel & Friends Unplugged", "2030-06-08T19:30:00Z", 500),
    ("PostgreSQL by Night", "2030-06-15T21:00:00Z", 5000),
]


@dataclass(frozen=True)
class DemoEvent:
    id: str
    name: str
    seats: int


def create_demo_events(event_url: str) -> list[DemoEvent]:
    created = []
    for name, start, seats in DEMO_EVENTS:
        body = json.dumps({"name": name, "startTime": start, "totalSeats": seats}).encode()
        request = urllib.request.Request(
            f"{event_url}/events", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            created.append(DemoEvent(json.load(response)["id"], name, seats))
    return created


def banner(stack: Stack, events: list[DemoEvent], ready_seconds: float) -> str:
    assert stack.database is not None
    event, booking, server = stack.event, stack.booking, stack.database
    lines = [
        "",
        f"TicketFlow is up (ready in {ready_seconds:.1f} s). Ctrl-C stops everything.",
        "",
    ]
    for service in (event, booking):
        lines.append(
            f"  {service.name}_service".ljust(20) + f"REST {service.http_url}   gRPC {service.grpc_address}   "
            f"database {service.database}   pid {service.pid}"
        )
    if stack.postgres is not None and stack.postgres.process is not None:
        where = "kept on exit (--keep-data)" if stack.config.keep_data else "removed on exit"
        lines.append(
            "  postgres".ljust(20)
            + f"{server.host}:{server.port} as {server.user}, data in {stack.postgres.base} ({where})   "
            f"pid {stack.postgres.process.pid}"
        )
    else:
        lines.append("  postgres".ljust(20) + f"{server.host}:{server.port} as {server.user} (--external-db)")
    lines.append("")
    event_id = events[0].id if events else "EVENT_ID"
    if events:
        lines.append("Demo events:")
        lines += [f"  {e.id}  {e.seats:>5} seats  {e.name}" for e in events]
        lines.append("")
    post = json.dumps({"eventId": event_id, "userId": "alice", "seats": 2})
    lines += [
        "Try (in another terminal):",
        f"  curl -s -X POST {booking.http_url}/bookings -H 'Content-Type: application/json' "
        f"-H 'Idempotency-Key: demo-1' -d {shlex.quote(post)}",
        f"  curl -s {booking.http_url}/users/alice/bookings",
        f'  curl -s -X DELETE {booking.http_url}/bookings/BOOKING_ID      # the "id" the POST answered',
        f"  curl -s {event.http_url}/events",
        f"  curl -s {event.http_url}/events/{event_id}",
        "",
        "Load test (flash sale on a new event, then the audit of both databases):",
        "  ./tools/bazel run //tools/loadtest -- flash --seats 5000 --requests 20000 --concurrency 64 "
        f"--booking-url {booking.http_url} --event-url {event.http_url} "
        f"--booking-dsn {shlex.quote(stack.booking_dsn)} "
        f"--event-dsn {shlex.quote(stack.event_dsn)}",
        "",
    ]
    return "\n".join(lines)
