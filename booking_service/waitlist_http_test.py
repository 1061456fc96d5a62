"""Waiting lists through the service as wired, on a real database, in front of a stand-in event
service over a real gRPC channel: the REST routes and the gRPC methods, who may call them (no
token: 401; another user: 403 unless admin; nothing asked of the event service, nothing
written), the event service's refusals passed on with their reason and metadata, 503 with
Retry-After while it is away, and the offer follower recording an offer as a HELD booking."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import grpc
import psycopg
import pytest
from quart.typing import TestClientProtocol as Client

from booking_service import app
from booking_service.conftest import StandInEvents, bearer
from booking_service.waitlist import EventRefusal
from service_runtime.auth import testkeys
from service_runtime.error_table import error_info_of
from ticketflow.booking.v1 import booking_service_pb2 as pb
from ticketflow.booking.v1 import booking_service_pb2_grpc as pb_grpc

EVENT = uuid.uuid4()
PATH = f"/events/{EVENT}/waitlist"


@pytest.fixture
def lists(stand_in_events: tuple[StandInEvents, str]) -> StandInEvents:
    """The stand-in event service, with EVENT sold out."""
    stand_in_events[0].waitlists.available[EVENT] = 0
    return stand_in_events[0]


async def _error(response: Any) -> tuple[int, str, dict[str, str]]:
    body = await response.get_json()
    detail = body["details"][0]
    return response.status_code, str(detail["reason"]), dict(detail["metadata"])


async def test_joining_answers_201_then_200_with_the_same_entry(
    client: Client, alice: dict[str, str], lists: StandInEvents
) -> None:
    first = await client.post(PATH, json={"seats": 2}, headers=alice)
    assert first.status_code == 201, await first.get_data(as_text=True)
    entry = await first.get_json()
    assert (entry["eventId"], entry["userId"], entry["seats"]) == (str(EVENT), "alice", 2)
    assert (entry["state"], entry["position"]) == ("WAITING", 1) and "offerTime" not in entry
    again = await client.post(PATH, json={"seats": 2, "eventId": str(EVENT)}, headers=alice)
    assert again.status_code == 200 and await again.get_json() == entry
    unknown = uuid.uuid4()
    missing = await client.post(f"/events/{unknown}/waitlist", headers=alice)  # no body: 1 seat
    assert await _error(missing) == (404, "EVENT_NOT_FOUND", {"event_id": str(unknown)})
    assert lists.waitlists.calls == ["join_waitlist"] * 3


async def test_nobody_else_joins_leaves_or_lists_for_a_user_and_nothing_is_asked_or_written(
    client: Client, alice: dict[str, str], bob: dict[str, str], admin: dict[str, str], lists: StandInEvents, dsn: str
) -> None:
    refusals = [
        (await client.post(PATH, json={"seats": 1}), 401),
        (await client.delete(PATH), 401),
        (await client.get("/users/me/waitlist"), 401),
        (await client.post(PATH, json={"seats": 1, "userId": "alice"}, headers=bob), 403),
        (await client.delete(f"{PATH}?userId=alice", headers=bob), 403),
        (await client.get("/users/alice/waitlist", headers=bob), 403),
    ]
    for response, status in refusals:
        assert response.status_code == status
        if status == 401:
            assert "WWW-Authenticate" in response.headers
    assert lists.waitlists.calls == [] and lists.waitlists.entries == []
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM bookings").fetchone() == (0,)
    # An admin acts for anyone.
    joined = await client.post(PATH, json={"seats": 1, "userId": "alice"}, headers=admin)
    assert joined.status_code == 201 and (await joined.get_json())["userId"] == "alice"
    listed = await client.get("/users/alice/waitlist", headers=admin)
    assert [e["userId"] for e in (await listed.get_json())["entries"]] == ["alice"]
    left = await client.delete(f"{PATH}?userId=alice", headers=admin)
    assert left.status_code == 200 and (await left.get_json())["state"] == "LEFT"


async def test_leave_and_list_a_users_entries_newest_first_a_page_at_a_time(
    client: Client, alice: dict[str, str], lists: StandInEvents
) -> None:
    other = uuid.uuid4()
    lists.waitlists.available[other] = 0
    await client.post(PATH, json={"seats": 1}, headers=alice)
    await client.post(f"/events/{other}/waitlist", json={"seats": 1}, headers=alice)
    left = await client.delete(PATH, headers=alice)
    assert left.status_code == 200
    left_entry = await left.get_json()
    assert left_entry["state"] == "LEFT" and left_entry.get("position", 0) == 0
    first = await (await client.get("/users/me/waitlist?pageSize=1", headers=alice)).get_json()
    assert [e["eventId"] for e in first["entries"]] == [str(other)] and first["nextPageToken"]
    rest = await client.get(f"/users/alice/waitlist?page_size=1&pageToken={first['nextPageToken']}", headers=alice)
    assert [e["id"] for e in (await rest.get_json())["entries"]] == [left_entry["id"]]
    twice = await client.delete(PATH, headers=alice)
    assert twice.status_code == 200 and await twice.get_json() == left_entry  # leaving twice: the LEFT entry
    bad = await client.get("/users/me/waitlist?pageSize=-1", headers=alice)
    assert bad.status_code == 400


async def test_the_event_services_refusals_pass_through_with_their_reason_and_metadata(
    client: Client, alice: dict[str, str], bob: dict[str, str], lists: StandInEvents
) -> None:
    open_event = uuid.uuid4()
    lists.waitlists.available[open_event] = 5
    available = await client.post(f"/events/{open_event}/waitlist", json={"seats": 2}, headers=alice)
    assert await _error(available) == (409, "SEATS_AVAILABLE", {"available_seats": "5"})
    not_on = await client.delete(PATH, headers=bob)
    assert (await _error(not_on))[:2] == (404, "WAITLIST_ENTRY_NOT_FOUND")
    lists.refuse_next = EventRefusal("SALES_ENDED", "over", {"sales_end_time": "2026-01-01T00:00:00Z"})
    ended = await client.post(PATH, json={"seats": 1}, headers=alice)
    assert await _error(ended) == (409, "SALES_ENDED", {"sales_end_time": "2026-01-01T00:00:00Z"})
    lists.refuse_next = EventRefusal("FIELD_INVALID", "page_token: is not a token", {"field": "page_token"})
    invalid = await client.get("/users/me/waitlist?pageToken=x", headers=alice)
    assert await _error(invalid) == (400, "FIELD_INVALID", {"field": "page_token"})
    # A refusal that is the booking service's own problem (its peer identity) is no answer for the user.
    lists.refuse_next = EventRefusal("PERMISSION_DENIED", "not a seat caller", {})
    denied = await client.post(PATH, json={"seats": 1}, headers=alice)
    assert denied.status_code == 500


async def test_an_unreachable_event_service_answers_503_with_retry_after(
    client: Client, alice: dict[str, str], lists: StandInEvents
) -> None:
    lists.waitlists.up = False
    for response in (
        await client.post(PATH, json={"seats": 1}, headers=alice),
        await client.delete(PATH, headers=alice),
        await client.get("/users/me/waitlist", headers=alice),
    ):
        assert (await _error(response))[:2] == (503, "EVENT_SERVICE_UNAVAILABLE")
        assert response.headers["Retry-After"] == "5"


async def test_the_cap_is_checked_before_the_event_service_is_asked(
    client: Client, alice: dict[str, str], lists: StandInEvents
) -> None:
    booked = await client.post("/bookings", json={"eventId": str(EVENT), "seats": 18}, headers=alice)
    assert booked.status_code == 201
    over = await client.post(PATH, json={"seats": 3}, headers=alice)
    assert await _error(over) == (
        409,
        "USER_LIMIT_REACHED",
        {"event_id": str(EVENT), "limit": "20", "held_seats": "18"},
    )
    assert lists.waitlists.calls == []
    assert (await client.post(PATH, json={"seats": 2}, headers=alice)).status_code == 201


async def _metric(client: Client, sample: str) -> float:
    text = await (await client.get("/metrics")).get_data(as_text=True)
    [value] = [line.split()[-1] for line in text.splitlines() if line.startswith(sample + " ")]
    return float(value)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_an_offer_becomes_a_held_booking_of_its_user_who_confirms_it(
    client: Client, alice: dict[str, str], lists: StandInEvents, components: app.Components
) -> None:
    entry = await (await client.post(PATH, json={"seats": 2}, headers=alice)).get_json()
    lists.waitlists.add_seats(EVENT, 2)
    assert await components.offers.run_once() == 1
    [offered] = (await (await client.get("/users/me/waitlist", headers=alice)).get_json())["entries"]
    assert offered["state"] == "OFFERED" and offered["offerTime"]
    [booking] = (await (await client.get("/users/me/bookings", headers=alice)).get_json())["bookings"]
    assert booking["id"] == offered["bookingId"] and booking["waitlistEntryId"] == entry["id"]
    assert (booking["status"], booking["hold"], booking["seats"]) == ("HELD", True, 2)
    assert _time(booking["expireTime"]) - _time(booking["createTime"]) == timedelta(seconds=1800)
    assert await _metric(client, 'waitlist_offers_recorded_total{outcome="HELD"}') == 1
    assert await _metric(client, "waitlist_offer_lag_seconds_count") == 1
    confirmed = await client.post(f"/bookings/{booking['id']}:confirm", headers=alice)
    assert (await confirmed.get_json())["status"] == "CONFIRMED"


def _auth(key: testkeys.SigningKey, sub: str, admin: bool = False) -> tuple[tuple[str, str], ...]:
    return (("authorization", bearer(key, sub, admin=admin)),)


async def test_the_waitlist_methods_over_grpc_and_who_may_call_them(
    grpc_channel: grpc.aio.Channel, signing_key: testkeys.SigningKey, lists: StandInEvents
) -> None:
    stub = pb_grpc.BookingServiceStub(grpc_channel)
    alice = _auth(signing_key, "alice")
    join = pb.JoinWaitlistRequest(event_id=str(EVENT), seats=2)
    anonymous_calls = (
        lambda: stub.JoinWaitlist(join),
        lambda: stub.LeaveWaitlist(pb.LeaveWaitlistRequest(event_id=str(EVENT))),
        lambda: stub.ListUserWaitlist(pb.ListUserWaitlistRequest(user_id="me")),
    )
    for call in anonymous_calls:
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await call()
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as someone_else:
        await stub.JoinWaitlist(
            pb.JoinWaitlistRequest(event_id=str(EVENT), user_id="alice"), metadata=_auth(signing_key, "bob")
        )
    assert someone_else.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert lists.waitlists.calls == []

    entry = await stub.JoinWaitlist(join, metadata=alice)
    assert (entry.state, entry.position, entry.seats, entry.user_id) == (pb.WaitlistEntry.WAITING, 1, 2, "alice")
    listed = await stub.ListUserWaitlist(pb.ListUserWaitlistRequest(user_id="me"), metadata=alice)
    assert list(listed.entries) == [entry]
    left = await stub.LeaveWaitlist(pb.LeaveWaitlistRequest(event_id=str(EVENT)), metadata=alice)
    assert left.state == pb.WaitlistEntry.LEFT and left.id == entry.id
    open_event = uuid.uuid4()
    lists.waitlists.available[open_event] = 5
    with pytest.raises(grpc.aio.AioRpcError) as available:
        await stub.JoinWaitlist(pb.JoinWaitlistRequest(event_id=str(open_event)), metadata=alice)
    assert available.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info_of(available.value)
    assert info is not None and info.reason == "SEATS_AVAILABLE" and dict(info.metadata) == {"available_seats": "5"}
