"""The REST API through Quart's test client: routes, JSON mapping, errors, who may create events,
health, metrics."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from quart.typing import TestClientProtocol as Client

from service_runtime.auth import testkeys

Headers = dict[str, str]

GIG = {"name": "Gig", "startTime": "2027-03-01T19:30:00+01:00", "totalSeats": 100}


async def _create(client: Client, admin: Headers, **fields: Any) -> dict[str, Any]:
    response = await client.post("/events", json={**GIG, **fields}, headers=admin)
    assert response.status_code == 201, await response.get_data(as_text=True)
    body: dict[str, Any] = await response.get_json()
    return body


def _admin_claims(**overrides: Any) -> dict[str, Any]:
    return testkeys.claims(sub="root", roles=["admin"], **overrides)


# Tokens that name an admin but must not be believed: each is refused as invalid.
BAD_TOKENS: dict[str, Callable[[testkeys.SigningKey], str]] = {
    "malformed": lambda key: "not-a-jwt",
    "expired": lambda key: testkeys.sign(key, _admin_claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)),
    "wrong_audience": lambda key: testkeys.sign(key, _admin_claims(aud="another-service")),
    "wrong_issuer": lambda key: testkeys.sign(key, _admin_claims(iss="https://elsewhere.example.test/")),
    "bad_signature": lambda key: testkeys.sign(testkeys.signing_key(key.kid), _admin_claims()),
    "unknown_kid": lambda key: testkeys.sign(testkeys.signing_key("stranger"), _admin_claims()),
    "alg_none": lambda key: testkeys.forge({"alg": "none", "kid": key.kid, "typ": "JWT"}, _admin_claims(), None),
}


def _count_events(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    return int(row[0])


async def test_post_creates_an_event_with_location_and_camel_case_json(client: Client, admin_headers: Headers) -> None:
    response = await client.post("/events", json=GIG, headers=admin_headers)
    assert response.status_code == 201
    body = await response.get_json()
    assert response.headers["Location"] == f"/events/{body['id']}"
    assert body["name"] == "Gig"
    assert body["startTime"] == "2027-03-01T18:30:00Z"  # RFC 3339, normalised to UTC
    assert (body["totalSeats"], body["availableSeats"]) == (100, 100)
    # Unset timestamps (no sales window, not cancelled) are absent, as the mapping has it.
    assert set(body) == {
        "id",
        "name",
        "startTime",
        "totalSeats",
        "availableSeats",
        "createTime",
        "updateTime",
        "state",
        "waitlistSize",
    }
    assert body["waitlistSize"] == 0
    assert body["state"] == "SCHEDULED"


async def test_proto_field_names_are_accepted_too(client: Client, admin_headers: Headers) -> None:
    body = {"name": "Gig", "start_time": "2027-01-01T00:00:00Z", "total_seats": 7}
    response = await client.post("/events", json=body, headers=admin_headers)
    assert response.status_code == 201
    assert (await response.get_json())["totalSeats"] == 7


async def test_get_returns_the_event(client: Client, admin_headers: Headers) -> None:
    created = await _create(client, admin_headers)
    response = await client.get(f"/events/{created['id']}")
    assert response.status_code == 200
    assert await response.get_json() == created


async def test_list_pages_with_tokens(client: Client, admin_headers: Headers) -> None:
    ids = {(await _create(client, admin_headers))["id"] for _ in range(3)}
    first = await (await client.get("/events?pageSize=2")).get_json()
    assert len(first["events"]) == 2 and first["totalSize"] == 3 and first["nextPageToken"]
    second = await (await client.get(f"/events?page_size=2&pageToken={first['nextPageToken']}")).get_json()
    assert len(second["events"]) == 1 and second["nextPageToken"] == ""
    assert {e["id"] for e in first["events"] + second["events"]} == ids


async def test_unknown_event_is_404_with_error_body(client: Client) -> None:
    missing = str(uuid.uuid4())
    response = await client.get(f"/events/{missing}")
    assert response.status_code == 404
    body = await response.get_json()
    assert body["code"] == 5 and missing in body["message"]
    assert body["details"][0]["reason"] == "EVENT_NOT_FOUND"
    assert body["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GIG, "name": ""}, "name"),
        ({**GIG, "name": "x" * 201}, "name"),
        ({**GIG, "totalSeats": 0}, "total_seats"),
        ({**GIG, "totalSeats": -1}, "total_seats"),
        ({**GIG, "totalSeats": 10**12}, "total_seats"),
        ({**GIG, "totalSeats": "many"}, "total_seats"),
        ({**GIG, "totalSeats": 1.5}, "total_seats"),
        ({**GIG, "startTime": "tomorrow"}, "start_time"),
        ({**GIG, "startTime": "2027-03-01T19:30:00"}, "start_time"),
        ({"name": "Gig", "totalSeats": 5}, "start_time"),
        ({**GIG, "availableSeats": 5}, "available_seats"),
        ({**GIG, "color": "red"}, "color"),
    ],
)
async def test_bad_fields_are_400_naming_the_field_and_create_nothing(
    client: Client, dsn: str, admin_headers: Headers, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/events", json=body, headers=admin_headers)
    assert response.status_code == 400
    error = await response.get_json()
    assert error["code"] == 3
    assert error["details"][0]["metadata"]["field"] == field
    assert field in error["message"]
    assert _count_events(dsn) == 0


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b"null", b'"text"', b"\xff\xfe"])
async def test_malformed_json_is_400(client: Client, dsn: str, admin_headers: Headers, raw: bytes) -> None:
    response = await client.post("/events", data=raw, headers={**admin_headers, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert (await response.get_json())["details"][0]["metadata"]["field"] == "body"
    assert _count_events(dsn) == 0


async def test_a_body_over_the_limit_is_413(client: Client, dsn: str, admin_headers: Headers) -> None:
    response = await client.post("/events", json={**GIG, "name": "x" * 100_000}, headers=admin_headers)
    assert response.status_code == 413
    assert (await response.get_json())["details"][0]["reason"] == "BODY_TOO_LARGE"
    assert _count_events(dsn) == 0


@pytest.mark.parametrize("query", ["pageSize=0x10", "pageSize=-1", "pageToken=garbage", "limit=5"])
async def test_bad_list_parameters_are_400(client: Client, query: str) -> None:
    response = await client.get(f"/events?{query}")
    assert response.status_code == 400


async def test_a_page_size_above_the_maximum_is_the_maximum(client: Client, admin_headers: Headers) -> None:
    # AIP-158: coerced to 100, not refused.
    for _ in range(101):
        await client.post("/events", json=GIG, headers=admin_headers)
    response = await client.get("/events?pageSize=500")
    assert response.status_code == 200
    page = await response.get_json()
    assert len(page["events"]) == 100 and page["nextPageToken"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        _b64(b"[" * 50_000 + b"]" * 50_000),  # deeper than the JSON decoder's stack
        "A" * 5_000,
        _b64(b'["2027-01-01T10:00:00", "00000000-0000-0000-0000-000000000001"]'),
        _b64(b'[1, {"a": null}]'),
    ],
    ids=["nested", "huge", "naive_time", "wrong_types"],
)
async def test_a_garbage_page_token_is_400_naming_it(client: Client, token: str) -> None:
    response = await client.get("/events", query_string={"pageToken": token})
    assert response.status_code == 400
    error = await response.get_json()
    assert error["details"][0]["reason"] == "FIELD_INVALID"
    assert error["details"][0]["metadata"]["field"] == "page_token"


async def test_a_field_given_under_both_its_names_is_400(client: Client, dsn: str, admin_headers: Headers) -> None:
    response = await client.post("/events", json={**GIG, "total_seats": 5}, headers=admin_headers)
    assert response.status_code == 400
    assert (await response.get_json())["details"][0]["metadata"]["field"] == "total_seats"
    assert _count_events(dsn) == 0


async def test_a_start_time_without_a_time_zone_says_what_is_needed(client: Client, admin_headers: Headers) -> None:
    response = await client.post("/events", json={**GIG, "startTime": "2027-01-01T10:00:00"}, headers=admin_headers)
    assert response.status_code == 400
    error = await response.get_json()
    assert error["details"][0]["metadata"]["field"] == "start_time"
    assert error["message"] == (
        "start_time: must be an RFC 3339 timestamp with a time zone offset or Z, such as 2027-01-01T10:00:00Z"
    )


async def test_non_uuid_id_is_400_not_500(client: Client) -> None:
    response = await client.get("/events/1234")
    assert response.status_code == 400
    assert (await response.get_json())["details"][0]["metadata"]["field"] == "event_id"


async def test_unknown_route_and_wrong_method_use_the_error_body(client: Client) -> None:
    missing = await client.get("/nowhere")
    assert missing.status_code == 404 and (await missing.get_json())["code"] == 5
    assert (await missing.get_json())["details"][0]["reason"] == "NOT_FOUND"
    wrong = await client.delete("/events")
    assert wrong.status_code == 405 and "GET" in wrong.headers["Allow"]
    assert (await wrong.get_json())["code"] == 12  # UNIMPLEMENTED, as gRPC-Gateway answers
    assert (await wrong.get_json())["details"][0]["reason"] == "METHOD_NOT_ALLOWED"


async def test_no_route_takes_or_gives_back_seats(client: Client, admin_headers: Headers) -> None:
    created = await _create(client, admin_headers)
    for method in ("put", "delete"):
        # Not even for an admin.
        response = await getattr(client, method)(
            f"/events/{created['id']}", json={"quantity": 5}, headers=admin_headers
        )
        assert response.status_code == 405
    # PATCH changes an event, never a booking's seats: a seat field is not one of its fields.
    patched = await client.patch(f"/events/{created['id']}", json={"quantity": 5}, headers=admin_headers)
    assert patched.status_code == 400
    assert (await patched.get_json())["details"][0]["metadata"]["field"] == "quantity"
    assert (await (await client.get(f"/events/{created['id']}")).get_json())["availableSeats"] == 100


async def test_health_readiness_and_metrics(client: Client) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and (await ready.get_json())["checks"] == {"database": "ok"}
    await client.get("/events/not-an-id")
    metrics = await (await client.get("/metrics")).get_data(as_text=True)
    assert 'http_requests_total{method="GET",route="/events/<event_id>",status="400"} 1.0' in metrics
    assert "db_pool_size" in metrics


@pytest.mark.parametrize("authorization", [None, "Basic cm9vdDpyb290", "Bearer"])
async def test_creating_an_event_without_a_token_is_401_with_a_bearer_challenge_and_writes_nothing(
    client: Client, dsn: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.post("/events", json=GIG, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    body = await response.get_json()
    assert body["code"] == 16 and body["details"][0]["reason"] == "UNAUTHENTICATED"
    assert _count_events(dsn) == 0


async def test_no_token_at_all_gets_the_plain_bearer_challenge(client: Client) -> None:
    response = await client.post("/events", json=GIG)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="ticketflow"'


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_creating_an_event_with_a_bad_token_is_401_invalid_token_and_writes_nothing(
    client: Client, dsn: str, signing_key: testkeys.SigningKey, kind: str
) -> None:
    token = BAD_TOKENS[kind](signing_key)
    response = await client.post("/events", json=GIG, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="ticketflow", error="invalid_token"'
    text = await response.get_data(as_text=True)
    assert token not in text
    assert _count_events(dsn) == 0


@pytest.mark.parametrize("body", [GIG, {**GIG, "totalSeats": 0}], ids=["valid", "invalid"])
async def test_a_user_token_cannot_create_events_and_writes_nothing(
    client: Client, dsn: str, user_token: str, body: dict[str, Any]
) -> None:
    response = await client.post("/events", json=body, headers={"Authorization": f"Bearer {user_token}"})
    assert response.status_code == 403
    error = await response.get_json()
    assert error["code"] == 7 and error["details"][0]["reason"] == "PERMISSION_DENIED"
    assert user_token not in await response.get_data(as_text=True)
    assert _count_events(dsn) == 0


async def test_an_admin_token_creates_the_event(client: Client, dsn: str, admin_token: str) -> None:
    response = await client.post("/events", json=GIG, headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code == 201
    assert _count_events(dsn) == 1


async def test_reading_events_needs_no_token(client: Client, admin_headers: Headers) -> None:
    created = await _create(client, admin_headers)
    listed = await client.get("/events")
    assert listed.status_code == 200
    assert [event["id"] for event in (await listed.get_json())["events"]] == [created["id"]]
    one = await client.get(f"/events/{created['id']}")
    assert one.status_code == 200 and await one.get_json() == created


async def test_health_and_readiness_need_no_token(client: Client) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(path)).status_code == 200, path
