"""The REST routes of issue 13 through Quart's test client: sales windows at creation,
`PATCH /events/{id}` with and without an update mask, the custom method
`POST /events/{id}:cancel` routed next to `/events/{id}`, and who may call them (an admin
token; 401 without a token, 403 for anyone else, nothing written)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from quart.typing import TestClientProtocol as Client

from event_service import app

Headers = dict[str, str]

GIG = {"name": "Gig", "startTime": "2027-03-01T19:30:00Z", "totalSeats": 100}


async def _create(client: Client, admin: Headers, **fields: Any) -> dict[str, Any]:
    response = await client.post("/events", json={**GIG, **fields}, headers=admin)
    assert response.status_code == 201, await response.get_data(as_text=True)
    body: dict[str, Any] = await response.get_json()
    return body


async def _get(client: Client, event_id: str) -> dict[str, Any]:
    response = await client.get(f"/events/{event_id}")
    assert response.status_code == 200
    body: dict[str, Any] = await response.get_json()
    return body


async def _error(response: Any, status: int, reason: str) -> dict[str, str]:
    assert response.status_code == status, await response.get_data(as_text=True)
    detail = (await response.get_json())["details"][0]
    assert detail["reason"] == reason
    metadata: dict[str, str] = detail["metadata"]
    return metadata


async def _send(client: Client, method: str, path: str, body: dict[str, Any] | None, headers: Headers) -> Any:
    """A request with `body` as JSON, or with no body at all when it is None."""
    if body is None:
        return await getattr(client, method)(path, headers=headers)
    return await getattr(client, method)(path, json=body, headers=headers)


def _rows(dsn: str) -> list[tuple[Any, ...]]:
    """Everything the event service has written, for the nothing-written checks."""
    with psycopg.connect(dsn) as conn:
        events = conn.execute("SELECT * FROM events ORDER BY id").fetchall()
        reservations = conn.execute("SELECT * FROM reservations ORDER BY booking_id").fetchall()
    return events + reservations


# --- Sales windows at creation ------------------------------------------------------------------


async def test_an_event_is_created_with_its_sales_window(client: Client, admin_headers: Headers) -> None:
    created = await _create(
        client, admin_headers, salesStartTime="2027-02-01T10:00:00+01:00", salesEndTime="2027-03-01T18:00:00Z"
    )
    assert (created["salesStartTime"], created["salesEndTime"]) == ("2027-02-01T09:00:00Z", "2027-03-01T18:00:00Z")
    assert await _get(client, created["id"]) == created


async def test_a_sales_window_that_ends_before_it_starts_is_400_and_creates_nothing(
    client: Client, admin_headers: Headers, dsn: str
) -> None:
    response = await client.post(
        "/events",
        json={**GIG, "salesStartTime": "2027-02-01T10:00:00Z", "salesEndTime": "2027-02-01T09:00:00Z"},
        headers=admin_headers,
    )
    assert (await _error(response, 400, "FIELD_INVALID"))["field"] == "sales_end_time"
    assert _rows(dsn) == []


# --- PATCH /events/{id} ---------------------------------------------------------------------------


async def test_patch_with_an_update_mask_changes_only_the_named_fields(client: Client, admin_headers: Headers) -> None:
    created = await _create(client, admin_headers)
    response = await client.patch(
        f"/events/{created['id']}?updateMask=name,salesStartTime",
        json={"name": "Renamed", "salesStartTime": "2027-02-01T10:00:00Z", "totalSeats": 5},
        headers=admin_headers,
    )
    assert response.status_code == 200
    body = await response.get_json()
    assert (body["name"], body["salesStartTime"], body["totalSeats"]) == ("Renamed", "2027-02-01T10:00:00Z", 100)
    assert body["updateTime"] >= created["updateTime"]
    assert await _get(client, created["id"]) == body


async def test_patch_without_a_mask_changes_the_fields_the_body_sets(client: Client, admin_headers: Headers) -> None:
    created = await _create(client, admin_headers, salesEndTime="2027-03-01T18:00:00Z")
    response = await client.patch(
        f"/events/{created['id']}", json={"id": created["id"], "totalSeats": 150}, headers=admin_headers
    )
    body = await response.get_json()
    assert (body["totalSeats"], body["availableSeats"], body["name"]) == (150, 150, "Gig")
    assert body["salesEndTime"] == "2027-03-01T18:00:00Z"


async def test_a_sales_time_named_in_the_mask_and_absent_from_the_body_is_cleared(
    client: Client, admin_headers: Headers
) -> None:
    created = await _create(client, admin_headers, salesEndTime="2027-03-01T18:00:00Z")
    response = await client.patch(f"/events/{created['id']}?update_mask=sales_end_time", json={}, headers=admin_headers)
    assert response.status_code == 200
    assert "salesEndTime" not in await response.get_json()


@pytest.mark.parametrize(
    ("query", "body", "field"),
    [
        ("updateMask=availableSeats", {"availableSeats": 5}, "update_mask"),
        ("updateMask=state", {"state": "CANCELLED"}, "update_mask"),
        ("", {"id": str(uuid.uuid4()), "name": "Other"}, "id"),
        ("", {"totalSeats": 0, "name": ""}, None),  # nothing set: nothing to change, 200
        ("updateMask=totalSeats", {}, "total_seats"),
        ("updateMask=name", {"name": " "}, "name"),
        ("", {"salesStartTime": "2027-03-02T00:00:00Z", "salesEndTime": "2027-03-01T00:00:00Z"}, "sales_end_time"),
        ("", {"color": "red"}, "color"),
        ("mask=name", {"name": "Other"}, "mask"),
    ],
)
async def test_bad_patches_are_400_naming_the_field_and_change_nothing(
    client: Client, admin_headers: Headers, dsn: str, query: str, body: dict[str, Any], field: str | None
) -> None:
    created = await _create(client, admin_headers)
    before = _rows(dsn)
    response = await client.patch(f"/events/{created['id']}?{query}", json=body, headers=admin_headers)
    if field is None:
        assert response.status_code == 200
    else:
        assert (await _error(response, 400, "FIELD_INVALID"))["field"] == field
    assert _rows(dsn) == before


async def test_seats_cannot_be_removed_below_those_taken(
    client: Client, admin_headers: Headers, components: app.Components
) -> None:
    created = await _create(client, admin_headers, totalSeats=10)
    await components.service.reserve_seats(str(uuid.uuid4()), created["id"], 4)
    response = await client.patch(f"/events/{created['id']}", json={"totalSeats": 3}, headers=admin_headers)
    metadata = await _error(response, 409, "SEATS_IN_USE")
    assert (metadata["taken_seats"], metadata["total_seats"]) == ("4", "3")
    response = await client.patch(f"/events/{created['id']}", json={"totalSeats": 4}, headers=admin_headers)
    assert (await response.get_json())["availableSeats"] == 0


async def test_patching_an_unknown_event_is_404(client: Client, admin_headers: Headers) -> None:
    response = await client.patch(f"/events/{uuid.uuid4()}", json={"name": "x"}, headers=admin_headers)
    await _error(response, 404, "EVENT_NOT_FOUND")


# --- POST /events/{id}:cancel ---------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, {}], ids=["empty_body", "empty_object"])
async def test_cancel_gives_every_seat_back_and_refuses_later_reservations(
    client: Client, admin_headers: Headers, components: app.Components, body: dict[str, Any] | None
) -> None:
    created = await _create(client, admin_headers, totalSeats=10)
    booking = str(uuid.uuid4())
    await components.service.reserve_seats(booking, created["id"], 4)
    response = await _send(client, "post", f"/events/{created['id']}:cancel", body, admin_headers)
    assert response.status_code == 200
    cancelled = await response.get_json()
    assert (cancelled["state"], cancelled["availableSeats"]) == ("CANCELLED", 10)
    assert cancelled["cancelTime"]
    assert await _get(client, created["id"]) == cancelled
    # Idempotent: cancelling again answers the same event.
    again = await client.post(f"/events/{created['id']}:cancel", headers=admin_headers)
    assert again.status_code == 200 and await again.get_json() == cancelled
    metrics = await (await client.get("/metrics")).get_data(as_text=True)
    assert "events_cancelled_total 1.0" in metrics
    # The events list shows it, cancelled.
    listed = await (await client.get("/events")).get_json()
    assert [e["state"] for e in listed["events"]] == ["CANCELLED"]
    released = await components.service.get_reservation(booking)
    assert released.release_reason is not None and released.release_reason.value == "EVENT_CANCELLED"
    # A cancelled event cannot be changed.
    patched = await client.patch(f"/events/{created['id']}", json={"name": "Back"}, headers=admin_headers)
    await _error(patched, 409, "EVENT_CANCELLED")


async def test_cancelling_an_unknown_event_is_404_and_a_bad_id_400(client: Client, admin_headers: Headers) -> None:
    await _error(await client.post(f"/events/{uuid.uuid4()}:cancel", headers=admin_headers), 404, "EVENT_NOT_FOUND")
    bad = await client.post("/events/1234:cancel", headers=admin_headers)
    assert (await _error(bad, 400, "FIELD_INVALID"))["field"] == "event_id"


async def test_a_cancel_body_naming_another_event_is_400_and_cancels_nothing(
    client: Client, admin_headers: Headers
) -> None:
    created = await _create(client, admin_headers)
    response = await client.post(
        f"/events/{created['id']}:cancel", json={"eventId": str(uuid.uuid4())}, headers=admin_headers
    )
    assert (await _error(response, 400, "FIELD_INVALID"))["field"] == "event_id"
    assert (await _get(client, created["id"]))["state"] == "SCHEDULED"


async def test_the_cancel_route_and_the_event_route_live_side_by_side(client: Client, admin_headers: Headers) -> None:
    created = await _create(client, admin_headers)
    path = f"/events/{created['id']}"
    # The event route still answers its methods, and only those.
    assert (await client.get(path)).status_code == 200
    wrong = await client.post(path, json={}, headers=admin_headers)
    assert wrong.status_code == 405 and set(wrong.headers["Allow"].split(", ")) >= {"GET", "PATCH"}
    # The custom method answers POST only; a GET of it is not a read of some event "<id>:cancel".
    assert (await client.get(f"{path}:cancel")).status_code in (400, 405)
    assert (await client.patch(f"{path}:cancel", json={}, headers=admin_headers)).status_code in (400, 405)
    assert (await _get(client, created["id"]))["state"] == "SCHEDULED"
    # Other verbs are not routes.
    assert (await client.post(f"{path}:delete", headers=admin_headers)).status_code in (404, 405)
    assert (await client.post(f"{path}:cancel", headers=admin_headers)).status_code == 200
    metrics = await (await client.get("/metrics")).get_data(as_text=True)
    assert 'http_requests_total{method="POST",route="/events/<event_id>:cancel",status="200"} 1.0' in metrics


# --- Who may change and cancel events -------------------------------------------------------------


ADMIN_ROUTES = [
    pytest.param("patch", "", {"name": "Renamed", "totalSeats": 1}, id="patch"),
    pytest.param("patch", "?updateMask=totalSeats", {"totalSeats": 1}, id="patch_with_mask"),
    pytest.param("post", ":cancel", None, id="cancel"),
]


@pytest.mark.parametrize(("method", "suffix", "body"), ADMIN_ROUTES)
@pytest.mark.parametrize("authorization", [None, "Basic cm9vdDpyb290", "Bearer not-a-jwt"])
async def test_changing_or_cancelling_without_a_valid_token_is_401_and_writes_nothing(
    client: Client,
    admin_headers: Headers,
    components: app.Components,
    dsn: str,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
    authorization: str | None,
) -> None:
    created = await _create(client, admin_headers, totalSeats=10)
    await components.service.reserve_seats(str(uuid.uuid4()), created["id"], 2)
    before = _rows(dsn)
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await _send(client, method, f"/events/{created['id']}{suffix}", body, headers)
    await _error(response, 401, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert _rows(dsn) == before


@pytest.mark.parametrize(("method", "suffix", "body"), ADMIN_ROUTES)
async def test_a_user_token_cannot_change_or_cancel_events_and_writes_nothing(
    client: Client,
    admin_headers: Headers,
    user_token: str,
    components: app.Components,
    dsn: str,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    created = await _create(client, admin_headers, totalSeats=10)
    await components.service.reserve_seats(str(uuid.uuid4()), created["id"], 2)
    before = _rows(dsn)
    response = await _send(
        client, method, f"/events/{created['id']}{suffix}", body, {"Authorization": f"Bearer {user_token}"}
    )
    await _error(response, 403, "PERMISSION_DENIED")
    assert _rows(dsn) == before
