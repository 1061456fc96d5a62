"""The REST routes of holds through Quart's test client, on a real database and a stand-in
event service: POST /bookings with "hold", POST /bookings/{id}:confirm, DELETE of a hold, and
who may call them (no token: 401; another user's booking: 404; nothing written either way)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from quart.typing import TestClientProtocol as Client

from booking_service.conftest import StandInEvents, bearer
from service_runtime.auth import testkeys

EVENT = str(uuid.uuid4())


@pytest.fixture
def alice(signing_key: testkeys.SigningKey) -> dict[str, str]:
    return {"Authorization": bearer(signing_key, "alice")}


@pytest.fixture
def bob(signing_key: testkeys.SigningKey) -> dict[str, str]:
    return {"Authorization": bearer(signing_key, "bob")}


@pytest.fixture
def admin(signing_key: testkeys.SigningKey) -> dict[str, str]:
    return {"Authorization": bearer(signing_key, "root", admin=True)}


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
    assert stand_in_events[0].records[held["id"]].state == stand_in_events[0].records[held["id"]].RELEASED
