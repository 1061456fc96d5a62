"""ConfirmBooking and holds over a real gRPC channel, and who may call them: no token is
UNAUTHENTICATED, another user's booking NOT_FOUND (BOOKING_NOT_FOUND), nothing written."""

from __future__ import annotations

import uuid

import grpc
import psycopg
import pytest

from booking_service.conftest import bearer
from service_runtime.auth import testkeys
from service_runtime.error_table import error_info_of
from ticketflow.booking.v1 import booking_service_pb2 as pb
from ticketflow.booking.v1 import booking_service_pb2_grpc as pb_grpc

EVENT = str(uuid.uuid4())


def _auth(key: testkeys.SigningKey, sub: str, admin: bool = False) -> tuple[tuple[str, str], ...]:
    return (("authorization", bearer(key, sub, admin=admin)),)


async def test_confirm_booking_over_grpc_and_who_may_call_it(
    grpc_channel: grpc.aio.Channel, signing_key: testkeys.SigningKey, dsn: str
) -> None:
    stub = pb_grpc.BookingServiceStub(grpc_channel)
    alice = _auth(signing_key, "alice")
    held = await stub.CreateBooking(pb.CreateBookingRequest(event_id=EVENT, seats=1, hold=True), metadata=alice)
    assert held.status == pb.Booking.HELD and held.hold and held.HasField("expire_time")
    request = pb.ConfirmBookingRequest(booking_id=held.id)

    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await stub.ConfirmBooking(request)
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as someone_else:
        await stub.ConfirmBooking(request, metadata=_auth(signing_key, "bob"))
    assert someone_else.value.code() == grpc.StatusCode.NOT_FOUND
    info = error_info_of(someone_else.value)
    assert info is not None and info.reason == "BOOKING_NOT_FOUND"
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT status FROM bookings").fetchall() == [("HELD",)]

    confirmed = await stub.ConfirmBooking(request, metadata=alice)
    assert confirmed.status == pb.Booking.CONFIRMED and not confirmed.HasField("expire_time")
    assert await stub.ConfirmBooking(request, metadata=_auth(signing_key, "root", admin=True)) == confirmed


async def test_an_expired_hold_is_refused_over_grpc(
    grpc_channel: grpc.aio.Channel, signing_key: testkeys.SigningKey, dsn: str
) -> None:
    stub = pb_grpc.BookingServiceStub(grpc_channel)
    alice = _auth(signing_key, "alice")
    held = await stub.CreateBooking(pb.CreateBookingRequest(event_id=EVENT, hold=True), metadata=alice)
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE bookings SET expire_time = now() - interval '1 second'")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ConfirmBooking(pb.ConfirmBookingRequest(booking_id=held.id), metadata=alice)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info_of(error.value)
    assert info is not None and info.reason == "HOLD_EXPIRED"
