"""The REST routes of holds through Quart's test client, on a real database and a stand-in
event service: POST /bookings with "hold", POST /bookings/{id}:confirm, DELETE of a hold, and
who may call them (no token: 401; another user's booking: 404; nothing written either way);
the service's hold sweeper and event-cancellation follower as wired, with their metrics."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg
from quart.typing import TestClientProtocol as Client

from booking_service import app
from booking_service.conftest import StandInEvents
from ticketflow.event.v1 import event_service_pb2 as event_pb

EVENT = str(uuid.uuid4())


async def _hold(client: Client, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    response = await client.post(
        "/bookings", json={"eventId": EVENT, "seats": 2, "hold": True, **extra}, headers=headers
    )
    assert response.status_code == 201, await response.get_data(as_text=True)
    body: dict[str, Any] = await response.get_json()
    return body


def _row(dsn: str, booking_id: str) -> tuple[Any, ...]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT status, update_time FROM bookings WHERE id = %s", (booking_id,)).fetchone()
    assert row is not None
    return tuple(row)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _reason(response: Any) -> str:
    body = await response.get_json()
    return str(body["details"][0]["reason"])


async def test_a_hold_is_created_held_with_its_expire_time(client: Client, alice: dict[str, str]) -> None:
    held = await _hold(client, {**alice, "Idempotency-Key": "h-1"})
    assert (held["status"], held["hold"], held["seats"]) == ("HELD", True, 2)
    assert _time(held["expireTime"]) - _time(held["createTime"]) == timedelta(seconds=300)
    assert await _hold(client, {**alice, "Idempotency-Key": "h-1"}) == held  # a retry: the same hold
    response = await client.post(
        "/bookings", json={"eventId": EVENT, "seats": 2}, headers={**alice, "Idempotency-Key": "h-1"}
    )
    assert response.status_code == 422 and await _reason(response) == "IDEMPOTENCY_KEY_REUSED"


async def test_confirm_confirms_a_hold_once_and_again_answers_the_same(client: Client, alice: dict[str, str]) -> None:
    held = await _hold(client, alice)
    first = await client.post(f"/bookings/{held['id']}:confirm", headers={**alice, "Idempotency-Key": "c-1"})
    assert first.status_code == 200
    confirmed = await first.get_json()
    assert confirmed["status"] == "CONFIRMED" and confirmed["hold"] is True and "expireTime" not in confirmed
    again = await client.post(f"/bookings/{held['id']}:confirm", json={}, headers=alice)
    assert again.status_code == 200 and await again.get_json() == confirmed


async def test_confirm_needs_a_token_and_is_the_owners_or_an_admins(
    client: Client, alice: dict[str, str], bob: dict[str, str], admin: dict[str, str], dsn: str
) -> None:
    held = await _hold(client, alice)
    before = _row(dsn, held["id"])
    anonymous = await client.post(f"/bookings/{held['id']}:confirm")
    assert anonymous.status_code == 401 and "WWW-Authenticate" in anonymous.headers
    someone_else = await client.post(f"/bookings/{held['id']}:confirm", headers=bob)
    assert someone_else.status_code == 404 and await _reason(someone_else) == "BOOKING_NOT_FOUND"
    assert _row(dsn, held["id"]) == before  # nothing written
    by_admin = await client.post(f"/bookings/{held['id']}:confirm", headers=admin)
    assert by_admin.status_code == 200 and (await by_admin.get_json())["status"] == "CONFIRMED"


async def test_a_hold_that_ran_out_answers_hold_expired(client: Client, alice: dict[str, str], dsn: str) -> None:
    held = await _hold(client, alice)
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE bookings SET expire_time = now() - interval '1 second' WHERE id = %s", (held["id"],))
    response = await client.post(f"/bookings/{held['id']}:confirm", headers=alice)
    assert response.status_code == 409 and await _reason(response) == "HOLD_EXPIRED"


async def test_a_booking_that_is_no_hold_cannot_be_confirmed_unless_confirmed(
    client: Client, alice: dict[str, str]
) -> None:
    response = await client.post("/bookings", json={"eventId": EVENT}, headers=alice)
    booking = await response.get_json()
    assert booking["status"] == "CONFIRMED" and booking["hold"] is False and "expireTime" not in booking
    confirmed = await client.post(f"/bookings/{booking['id']}:confirm", headers=alice)
    assert confirmed.status_code == 200
    await client.delete(f"/bookings/{booking['id']}", headers=alice)
    refused = await client.post(f"/bookings/{booking['id']}:confirm", headers=alice)
    assert refused.status_code == 409 and await _reason(refused) == "BOOKING_NOT_CONFIRMABLE"
    assert (await refused.get_json())["details"][0]["metadata"]["status"] == "CANCELLED"


async def test_a_confirm_body_naming_another_booking_is_refused(
    client: Client, alice: dict[str, str], dsn: str
) -> None:
    held = await _hold(client, alice)
    response = await client.post(
        f"/bookings/{held['id']}:confirm", json={"bookingId": str(uuid.uuid4())}, headers=alice
    )
    assert response.status_code == 400 and _row(dsn, held["id"])[0] == "HELD"


async def test_delete_releases_a_hold(
    client: Client, alice: dict[str, str], stand_in_events: tuple[StandInEvents, str]
) -> None:
    held = await _hold(client, alice)
    response = await client.delete(f"/bookings/{held['id']}", headers=alice)
    assert response.status_code == 200
    cancelled = await response.get_json()
    assert cancelled["status"] == "CANCELLED" and cancelled["cancelReason"] == "" and "expireTime" not in cancelled
    assert stand_in_events[0].records[held["id"]].state == event_pb.Reservation.RELEASED


async def _metric(client: Client, name: str) -> float:
    text = await (await client.get("/metrics")).get_data(as_text=True)
    [value] = [line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")]
    return float(value)


async def test_a_hold_that_ran_out_is_expired_by_the_sweeper_and_counted(
    client: Client,
    alice: dict[str, str],
    dsn: str,
    components: app.Components,
    stand_in_events: tuple[StandInEvents, str],
) -> None:
    held = await _hold(client, alice)
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE bookings SET expire_time = now() - interval '1 second' WHERE id = %s", (held["id"],))
    assert await components.hold_sweeper.run_once() == 1
    expired = await (await client.get(f"/bookings/{held['id']}", headers=alice)).get_json()
    assert expired["status"] == "EXPIRED" and "expireTime" in expired  # an expired hold shows when it ran out
    assert stand_in_events[0].records[held["id"]].state == event_pb.Reservation.RELEASED
    assert await _metric(client, "holds_expired_total") == 1


async def test_the_bookings_of_a_cancelled_event_end_cancelled_and_their_owners_see_it(
    client: Client, alice: dict[str, str], components: app.Components, stand_in_events: tuple[StandInEvents, str]
) -> None:
    held = await _hold(client, alice)
    confirmed = await (await client.post("/bookings", json={"eventId": EVENT}, headers=alice)).get_json()
    cancelled = event_pb.Event(id=EVENT, state=event_pb.Event.CANCELLED)
    cancelled.cancel_time.GetCurrentTime()
    stand_in_events[0].cancelled.append(cancelled)
    assert await components.follower.run_once() == 2
    listed = await (await client.get("/users/me/bookings", headers=alice)).get_json()
    assert {(b["id"], b["status"], b["cancelReason"]) for b in listed["bookings"]} == {
        (held["id"], "CANCELLED", "EVENT_CANCELLED"),
        (confirmed["id"], "CANCELLED", "EVENT_CANCELLED"),
    }
    assert await _metric(client, "event_cancellation_bookings_total") == 2
    assert await _metric(client, "event_cancellations_open") == 0
    response = await client.post(f"/bookings/{held['id']}:confirm", headers=alice)
    assert response.status_code == 409 and await _reason(response) == "EVENT_CANCELLED"
