"""REST adapter: the booking routes, in the proto3 JSON mapping (as gRPC-Gateway serves them).

Every route needs a bearer token (`access.user`): 401 without one. Whose bookings a caller
may see or change is the service's rule: the owner's or an admin's; anyone else's answers 404
BOOKING_NOT_FOUND, with nothing written.

POST   /bookings                      CreateBooking -> 201, Location: /bookings/{id}
                                      (Idempotency-Key header: retries book once;
                                      "hold": true -> HELD until expireTime); for the caller,
                                      or (admins only) for the body's userId
POST   /bookings/{bookingId}:confirm  ConfirmBooking: HELD -> CONFIRMED, idempotent; owner or
                                      admin (an Idempotency-Key header is accepted and needs
                                      nothing more: confirming is idempotent by itself)
GET    /bookings/{bookingId}          GetBooking; owner or admin
DELETE /bookings/{bookingId}          CancelBooking -> 200 with the CANCELLED booking (a HELD
                                      one is released); owner or admin
GET    /users/{userId}/bookings       ListUserBookings, newest first (pageSize, pageToken);
                                      userId `me` is the caller; another user's: admins only
"""

from __future__ import annotations

from quart import Blueprint, Response, request

from booking_service.messages import booking_message
from booking_service.service import BookingService
from service_runtime.auth.access import Access
from service_runtime.auth.principal import Principal
from service_runtime.errors import InvalidArgument
from service_runtime.protojson import parse_body, to_dict
from service_runtime.rest import int_param, json_response, query_params, read_body
from ticketflow.booking.v1 import booking_service_pb2 as pb

IDEMPOTENCY_HEADER = "Idempotency-Key"


def blueprint(service: BookingService, access: Access) -> Blueprint:
    routes = Blueprint("bookings", __name__)

    def caller() -> Principal:
        return access.user(request.headers.get("Authorization"))

    @routes.post("/bookings")
    async def create_booking() -> Response:
        user = caller()
        body = parse_body(await read_body(), pb.CreateBookingRequest)
        key = idempotency_key(body.idempotency_key)
        booking = await service.create_booking(user, body.event_id, body.user_id, body.seats, key, body.hold)
        return json_response(to_dict(booking_message(booking)), 201, {"Location": f"/bookings/{booking.id}"})

    @routes.post("/bookings/<booking_id>:confirm")
    async def confirm_booking(booking_id: str) -> Response:
        user = caller()
        # The body, if any, is a ConfirmBookingRequest whose bookingId is the path's.
        if (raw := await read_body()).strip():
            body = parse_body(raw, pb.ConfirmBookingRequest)
            if body.booking_id and body.booking_id != booking_id:
                raise InvalidArgument("booking_id", "differs from the path's booking id")
        return json_response(to_dict(booking_message(await service.confirm_booking(user, booking_id))))

    @routes.get("/bookings/<booking_id>")
    async def get_booking(booking_id: str) -> Response:
        return json_response(to_dict(booking_message(await service.get_booking(caller(), booking_id))))

    @routes.delete("/bookings/<booking_id>")
    async def cancel_booking(booking_id: str) -> Response:
        return json_response(to_dict(booking_message(await service.cancel_booking(caller(), booking_id))))

    @routes.get("/users/<user_id>/bookings")
    async def list_user_bookings(user_id: str) -> Response:
        user = caller()
        params = query_params("page_size", "page_token")
        page = await service.list_user_bookings(
            user, user_id, int_param(params, "page_size"), params.get("page_token", "")
        )
        message = pb.ListUserBookingsResponse(
            bookings=[booking_message(b) for b in page.bookings], next_page_token=page.next_page_token
        )
        return json_response(to_dict(message))

    return routes


def idempotency_key(from_body: str) -> str:
    """The Idempotency-Key header, or the body's idempotencyKey; both must agree if both are given."""
    header = request.headers.get(IDEMPOTENCY_HEADER, "")
    if header and from_body and header != from_body:
        raise InvalidArgument("idempotency_key", f"the {IDEMPOTENCY_HEADER} header and the body disagree")
    return header or from_body
