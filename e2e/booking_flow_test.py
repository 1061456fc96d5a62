"""The booking flow end to end: POST /bookings through the booking service, gRPC over mutual TLS
to the event service, each with its own PostgreSQL; every test ends with the cross-database
audit. Every call carries the bearer token of the user it acts as; users are distinct wherever
the per-user seat cap (MAX_SEATS_PER_USER_PER_EVENT, 20) would otherwise interfere."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import aiohttp
import grpc
import pytest

from e2e.conftest import auth, available, book, create_event, settled_audit
from ticketflow.booking.v1 import booking_service_pb2 as pb
from ticketflow.booking.v1 import booking_service_pb2_grpc as pb_grpc
from tools.stack.stack import Stack


async def test_flash_sale_sells_exactly_the_seats(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 100)
    results = await asyncio.gather(*(book(http, stack, event_id, f"user-{n}") for n in range(500)))
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 100, 409: 400}, statuses
    assert all(body["status"] == "CONFIRMED" for status, body in results if status == 201)
    assert {body["details"][0]["reason"] for status, body in results if status == 409} == {"SOLD_OUT"}
    assert await available(http, stack, event_id) == 0
    report = await settled_audit(stack)
    assert report.ok, report.violations
    assert report.bookings_by_status == {"CONFIRMED": 100, "REJECTED": 400}


async def test_the_last_seat_can_be_booked(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 1)
    status, body = await book(http, stack, event_id)
    assert status == 201 and body["status"] == "CONFIRMED"
    assert await available(http, stack, event_id) == 0
    status, body = await book(http, stack, event_id, "bob")
    assert status == 409 and body["details"][0]["reason"] == "SOLD_OUT"


async def test_multi_seat_bookings_never_overshoot(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 10)
    results = await asyncio.gather(*(book(http, stack, event_id, f"u{n}", seats=3) for n in range(10)))
    assert sum(1 for status, _ in results if status == 201) == 3
    assert await available(http, stack, event_id) == 1
    status, _ = await book(http, stack, event_id, "last", seats=2)
    assert status == 409
    status, _ = await book(http, stack, event_id, "last", seats=1)
    assert status == 201
    report = await settled_audit(stack)
    assert report.ok, report.violations


async def test_a_retried_post_with_the_same_key_books_once(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 10)
    first = await book(http, stack, event_id, key="order-17")
    again = await book(http, stack, event_id, key="order-17")
    assert first[0] == again[0] == 201
    assert first[1] == again[1]
    assert await available(http, stack, event_id) == 9


async def test_concurrent_duplicates_book_once(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 10)
    results = await asyncio.gather(*(book(http, stack, event_id, key="same-key", seats=2) for _ in range(30)))
    assert {status for status, _ in results} == {201}
    assert len({body["id"] for _, body in results}) == 1
    assert await available(http, stack, event_id) == 8
    report = await settled_audit(stack)
    assert report.ok, report.violations


async def test_a_key_reused_for_another_request_is_422(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 10)
    assert (await book(http, stack, event_id, key="k"))[0] == 201
    status, body = await book(http, stack, event_id, seats=2, key="k")
    assert status == 422 and body["details"][0]["reason"] == "IDEMPOTENCY_KEY_REUSED"
    assert await available(http, stack, event_id) == 9


async def test_a_sold_out_answer_is_replayed_for_the_same_key(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 1)
    assert (await book(http, stack, event_id, "a"))[0] == 201
    first = await book(http, stack, event_id, "b", key="late")
    again = await book(http, stack, event_id, "b", key="late")
    assert first[0] == again[0] == 409
    assert first[1]["details"][0]["metadata"]["booking_id"] == again[1]["details"][0]["metadata"]["booking_id"]


async def test_unknown_event_is_404(http: aiohttp.ClientSession, stack: Stack) -> None:
    status, body = await book(http, stack, str(uuid.uuid4()))
    assert status == 404 and body["details"][0]["reason"] == "EVENT_NOT_FOUND"


async def test_20_concurrent_cancels_release_the_seats_once(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 10)
    status, booking = await book(http, stack, event_id, seats=4)
    assert status == 201
    await book(http, stack, event_id, "other", seats=2)

    async def cancel() -> tuple[int, str]:
        async with http.delete(f"{stack.booking_url}/bookings/{booking['id']}", headers=auth(stack)) as response:
            return response.status, (await response.json())["status"]

    results = await asyncio.gather(*(cancel() for _ in range(20)))
    assert set(results) == {(200, "CANCELLED")}
    assert await available(http, stack, event_id) == 8
    report = await settled_audit(stack)
    assert report.ok, report.violations
    async with http.delete(f"{stack.booking_url}/bookings/{uuid.uuid4()}", headers=auth(stack)) as response:
        assert response.status == 404


async def test_bookings_read_back_and_list_newest_first(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 10)
    ids = [(await book(http, stack, event_id, "carol"))[1]["id"] for _ in range(3)]
    carol = auth(stack, "carol")
    async with http.get(f"{stack.booking_url}/bookings/{ids[0]}", headers=carol) as response:
        assert response.status == 200 and (await response.json())["userId"] == "carol"
    async with http.get(f"{stack.booking_url}/users/carol/bookings?pageSize=2", headers=carol) as response:
        page = await response.json()
    next_page = f"{stack.booking_url}/users/me/bookings?pageToken={page['nextPageToken']}"
    async with http.get(next_page, headers=carol) as response:
        rest = await response.json()
    assert [b["id"] for b in page["bookings"] + rest["bookings"]] == ids[::-1]
    assert rest["nextPageToken"] == ""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"eventId": "nope", "userId": "a"}, "event_id"),
        ({"userId": "a"}, "event_id"),
        # An empty userId is the caller's own (it is optional); a control character is refused.
        ({"eventId": "EVENT", "userId": "a\u0001"}, "user_id"),
        ({"eventId": "EVENT", "userId": "u" * 65}, "user_id"),
        ({"eventId": "EVENT", "userId": "a", "seats": -1}, "seats"),
        ({"eventId": "EVENT", "userId": "a", "seats": 21}, "seats"),
        ({"eventId": "EVENT", "userId": "a", "seats": "two"}, "seats"),
        ({"eventId": "EVENT", "userId": "a", "ticketCount": 1}, "ticket_count"),
    ],
)
async def test_bad_input_is_400_naming_the_field_and_touches_no_seat(
    http: aiohttp.ClientSession, stack: Stack, body: dict[str, object], field: str
) -> None:
    event_id = await create_event(http, stack, 5)
    body = {k: (event_id if v == "EVENT" else v) for k, v in body.items()}
    # As user "a": the request is refused for its input, not for booking on another's behalf.
    async with http.post(f"{stack.booking_url}/bookings", json=body, headers=auth(stack, "a")) as response:
        assert response.status == 400
        error = await response.json()
    assert error["details"][0]["metadata"]["field"] == field, error
    assert await available(http, stack, event_id) == 5
    report = await settled_audit(stack)
    assert report.bookings_by_status == {}


@pytest.mark.parametrize("raw", [b"{", b"[]", b"", b"\x00"])
async def test_malformed_json_is_400(http: aiohttp.ClientSession, stack: Stack, raw: bytes) -> None:
    headers = {**auth(stack), "Content-Type": "application/json"}
    async with http.post(f"{stack.booking_url}/bookings", data=raw, headers=headers) as r:
        assert r.status == 400


async def test_an_oversized_body_is_413(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 5)
    body = {"eventId": event_id, "userId": "a" * 200_000}
    async with http.post(f"{stack.booking_url}/bookings", json=body, headers=auth(stack, "a")) as response:
        assert response.status == 413
    assert await available(http, stack, event_id) == 5


async def test_grpc_booking_service_over_a_real_channel(http: aiohttp.ClientSession, stack: Stack) -> None:
    event_id = await create_event(http, stack, 1)
    dave, erin = grpc_auth(stack, "dave"), grpc_auth(stack, "erin")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.booking.grpc_port}") as channel:
        stub = pb_grpc.BookingServiceStub(channel)
        request = pb.CreateBookingRequest(event_id=event_id, user_id="dave", seats=1, idempotency_key="g-1")
        created = await stub.CreateBooking(request, timeout=10, metadata=dave)
        assert created.status == pb.Booking.CONFIRMED
        assert await stub.CreateBooking(request, timeout=10, metadata=dave) == created
        assert await stub.GetBooking(pb.GetBookingRequest(booking_id=created.id), metadata=dave) == created
        listed = await stub.ListUserBookings(pb.ListUserBookingsRequest(user_id="dave"), metadata=dave)
        assert [b.id for b in listed.bookings] == [created.id]
        with pytest.raises(grpc.aio.AioRpcError) as sold_out:
            await stub.CreateBooking(
                pb.CreateBookingRequest(event_id=event_id, user_id="erin"), timeout=10, metadata=erin
            )
        assert sold_out.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(grpc.aio.AioRpcError) as not_yours:
            await stub.CancelBooking(pb.CancelBookingRequest(booking_id=created.id), metadata=erin)
        assert not_yours.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await stub.GetBooking(pb.GetBookingRequest(booking_id=created.id))
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
        cancelled = await stub.CancelBooking(pb.CancelBookingRequest(booking_id=created.id), metadata=dave)
        assert cancelled.status == pb.Booking.CANCELLED
    assert await available(http, stack, event_id) == 1


async def test_health_readiness_and_metrics(http: aiohttp.ClientSession, stack: Stack) -> None:
    async with http.get(f"{stack.booking_url}/readyz") as response:
        assert response.status == 200
        assert (await response.json())["checks"] == {"database": "ok", "event_service": "ok"}
    event_id = await create_event(http, stack, 1)
    await book(http, stack, event_id)
    async with http.get(f"{stack.booking_url}/metrics") as response:
        text = await response.text()
    assert 'bookings_total{outcome="CONFIRMED"} 1.0' in text
    assert 'http_requests_total{method="POST",route="/bookings",status="201"} 1.0' in text


def grpc_auth(stack: Stack, user: str, *, admin: bool = False) -> tuple[tuple[str, str], ...]:
    """The `authorization` metadata of `user`'s bearer token."""
    return (("authorization", auth(stack, user, admin=admin)["Authorization"]),)
