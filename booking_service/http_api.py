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

Waiting lists (the caller's own; another user's, named by userId: admins only, 403 otherwise):
POST   /events/{eventId}/waitlist     JoinWaitlist, body {"seats"} (and "userId" for admins)
                                      -> 201 with the new entry, 200 with the one the user had
DELETE /events/{eventId}/waitlist     LeaveWaitlist (?userId= for admins) -> 200 with the entry
GET    /users/{userId}/waitlist       ListUserWaitlist, newest first (pageSize, pageToken)
"""

from __future__ import annotations

from quart import Blueprint, Response, request

from booking_service.messages import booking_message, waitlist_entry_message
from booking_service.service import BookingService
from booking_service.waitlist_service import WaitlistService
from service_runtime.auth.access import Access
from service_runtime.auth.principal import Principal
from service_runtime.errors import InvalidArgument
from service_runtime.protojson import parse_body, to_dict
from service_runtime.rest import int_param, json_response, query_params, read_body
from ticketflow.booking.v1 import booking_service_pb2 as pb

IDEMPOTENCY_HEADER = "Idempotency-Key"


def blueprint(service: BookingService, waitlists: WaitlistService, access: Access) -> Blueprint:
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

    @routes.post("/events/<event_id>/waitlist")
    async def join_waitlist(event_id: str) -> Response:
        user = caller()
        # Every field is optional (seats: 1), so an empty body is an empty request.
        raw = await read_body()
        body = parse_body(raw, pb.JoinWaitlistRequest) if raw.strip() else pb.JoinWaitlistRequest()
        if body.event_id and body.event_id != event_id:
            raise InvalidArgument("event_id", "differs from the path's event id")
        joined = await waitlists.join(user, event_id, body.user_id, body.seats)
        return json_response(to_dict(waitlist_entry_message(joined.entry)), 201 if joined.created else 200)

    @routes.delete("/events/<event_id>/waitlist")
    async def leave_waitlist(event_id: str) -> Response:
        user = caller()
        params = query_params("user_id")
        entry = await waitlists.leave(user, event_id, params.get("user_id", ""))
        return json_response(to_dict(waitlist_entry_message(entry)))

    @routes.get("/users/<user_id>/waitlist")
    async def list_user_waitlist(user_id: str) -> Response:
        user = caller()
        params = query_params("page_size", "page_token")
        page = await waitlists.list_user(user, user_id, int_param(params, "page_size"), params.get("page_token", ""))
        message = pb.ListUserWaitlistResponse(
            entries=[waitlist_entry_message(e) for e in page.entries], next_page_token=page.next_page_token
        )
        return json_response(to_dict(message))

    return routes


def idempotency_key(from_body: str) -> str:
    """The Idempotency-Key header, or the body's idempotencyKey; both must agree if both are given."""
    header = request.headers.get(IDEMPOTENCY_HEADER, "")
    if header and from_body and header != from_body:
        raise InvalidArgument("idempotency_key", f"the {IDEMPOTENCY_HEADER} header and the body disagree")
    return header or from_body
