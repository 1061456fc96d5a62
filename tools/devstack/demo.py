"""Demo events, created through the event service's REST API with an admin's token, and the
banner that shows what runs and how to try it: dev tokens for users `alice` and `bob` and for
an admin, and ready-to-paste `curl` commands using them and the demo events' ids.

Printing the tokens is the point here: they are dev tokens, signed with this machine's dev key
(tools.devkeys), that only a dev stack accepts.
"""

from __future__ import annotations

import json
import shlex
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from tools.devkeys import dev_home
from tools.stack.stack import Stack

# (name, start time, seats): a small sale to sell out by hand, and a large one for load tests.
DEMO_EVENTS = [
    ("TicketFlow Live: the flash sale", "2030-06-01T20:00:00Z", 100),
    ("Bazel & Friends Unplugged", "2030-06-08T19:30:00Z", 500),
    ("PostgreSQL by Night", "2030-06-15T21:00:00Z", 5000),
]


# The banner's tokens: long enough for a day of trying things by hand.
BANNER_TOKEN_TTL = timedelta(hours=24)
# (shell variable, subject, admin)
BANNER_USERS = (("ALICE_TOKEN", "alice", False), ("BOB_TOKEN", "bob", False), ("ADMIN_TOKEN", "admin", True))


@dataclass(frozen=True)
class DemoEvent:
    id: str
    name: str
    seats: int


def create_demo_events(event_url: str, admin_token: str) -> list[DemoEvent]:
    created = []
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {admin_token}"}
    for name, start, seats in DEMO_EVENTS:
        body = json.dumps({"name": name, "startTime": start, "totalSeats": seats}).encode()
        request = urllib.request.Request(f"{event_url}/events", data=body, method="POST", headers=headers)
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
    lines += _tries(stack, event_id)
    lines += [
        "Load test (flash sale on a new event, then the audit of both databases):",
        "  ./tools/bazel run //tools/loadtest -- flash --seats 5000 --requests 20000 --concurrency 64 "
        f"--booking-url {booking.http_url} --event-url {event.http_url} "
        f"--booking-dsn {shlex.quote(stack.booking_dsn)} "
        f"--event-dsn {shlex.quote(stack.event_dsn)}",
        "",
    ]
    return "\n".join(lines)


def _tries(stack: Stack, event_id: str) -> list[str]:
    """The tokens and the curl commands of the banner."""
    event, booking = stack.event, stack.booking
    try:
        tokens = {name: stack.token(sub, admin=admin, ttl=BANNER_TOKEN_TTL) for name, sub, admin in BANNER_USERS}
    except LookupError:
        return [
            "Identity: the AUTH_* settings you gave (bearer tokens come from your identity provider).",
            f"  curl -s {event.http_url}/events",
            f'  curl -s {booking.http_url}/users/me/bookings -H "Authorization: Bearer $TOKEN"',
            "",
        ]
    home = stack.config.dev_home or dev_home()
    lines = [
        f"Dev tokens (signed with the dev key in {_short(home)}, valid {BANNER_TOKEN_TTL.total_seconds() / 3600:g} h;",
        "more with ./tools/bazel run //tools/token -- --sub NAME [--admin] [--ttl 1h]). Paste into a terminal:",
    ]
    lines += [f"  export {variable}={token}" for variable, token in tokens.items()]
    post = json.dumps({"eventId": event_id, "seats": 2})
    hold = json.dumps({"eventId": event_id, "seats": 1, "hold": True})
    wait = json.dumps({"seats": 1})
    new_event = json.dumps({"name": "My gig", "startTime": "2030-07-01T20:00:00Z", "totalSeats": 50})
    json_body = "-H 'Content-Type: application/json'"
    lines += [
        "",
        "Then try (alice books; bookings are their owner's: bob gets 404, an admin sees all):",
        f"  curl -s -X POST {booking.http_url}/bookings {_bearer('ALICE_TOKEN')} {json_body} "
        f"-H 'Idempotency-Key: demo-1' -d {shlex.quote(post)}",
        f"  curl -s {booking.http_url}/users/me/bookings {_bearer('ALICE_TOKEN')}",
        f'  curl -s {booking.http_url}/bookings/BOOKING_ID {_bearer("BOB_TOKEN")}      # the "id" the POST answered',
        f"  curl -s {booking.http_url}/users/alice/bookings {_bearer('ADMIN_TOKEN')}",
        f"  curl -s -X DELETE {booking.http_url}/bookings/BOOKING_ID {_bearer('ALICE_TOKEN')}",
        f"  curl -s -X POST {booking.http_url}/bookings {_bearer('BOB_TOKEN')} {json_body} "
        f"-d {shlex.quote(hold)}      # HELD until its expireTime",
        f"  curl -s -X POST {booking.http_url}/bookings/BOOKING_ID:confirm {_bearer('BOB_TOKEN')}",
        f"  curl -s -X POST {booking.http_url}/events/{event_id}/waitlist {_bearer('BOB_TOKEN')} {json_body} "
        f"-d {shlex.quote(wait)}      # once sold out: wait in line",
        f"  curl -s {booking.http_url}/users/me/waitlist {_bearer('BOB_TOKEN')}   # your place, or the offer",
        f"  curl -s {event.http_url}/events/{event_id}/waitlist {_bearer('ADMIN_TOKEN')}   # the whole list, in order",
        f"  curl -s -X POST {event.http_url}/events {_bearer('ADMIN_TOKEN')} {json_body} -d {shlex.quote(new_event)}",
        f"  curl -s -X POST {event.http_url}/events/EVENT_ID:cancel {_bearer('ADMIN_TOKEN')}  # bookings end CANCELLED",
        f"  curl -s {event.http_url}/events                     # reading events needs no token",
        f"  curl -s {event.http_url}/events/{event_id}",
        "",
    ]
    return lines


def _bearer(variable: str) -> str:
    return f'-H "Authorization: Bearer ${variable}"'


def _short(path: Path) -> str:
    """`path` with the home directory as `~`, as a user would type it."""
    try:
        return f"~/{path.relative_to(Path.home())}"
    except ValueError:
        return str(path)
