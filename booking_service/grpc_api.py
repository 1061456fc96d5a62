"""gRPC adapter: `ticketflow.booking.v1.BookingService` on top of the use cases.

Every method needs a bearer token in the `authorization` metadata (`access.grpc_user`):
UNAUTHENTICATED without one. Who may do what is the service's rule: CreateBooking for the
caller (another user: admins only), ConfirmBooking, GetBooking and CancelBooking on the
caller's own bookings (any booking: admins; anyone else's reads as BOOKING_NOT_FOUND),
ListUserBookings of "me" (another user's: admins only); JoinWaitlist, LeaveWaitlist and
ListUserWaitlist for the caller (another user: admins only, PERMISSION_DENIED otherwise)."""

from __future__ import annotations

from typing import Any

import grpc

from booking_service.errors import ERRORS
from booking_service.messages import booking_message, waitlist_entry_message
from booking_service.service import BookingService
from booking_service.waitlist_service import WaitlistService
from service_runtime.auth.access import Access
from service_runtime.grpc_server import error_mapping
from service_runtime.metrics import Metrics
from ticketflow.booking.v1 import booking_service_pb2 as pb
from ticketflow.booking.v1 import booking_service_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["BookingService"].full_name


def servicer(
    service: BookingService, waitlists: WaitlistService, access: Access, metrics: Metrics
) -> pb_grpc.BookingServiceServicer:
    @error_mapping(ERRORS, metrics, SERVICE_NAME)
    class BookingServicer(pb_grpc.BookingServiceServicer):
        async def CreateBooking(
            self, request: pb.CreateBookingRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.Booking:
            booking = await service.create_booking(
                access.grpc_user(context),
                request.event_id,
                request.user_id,
                request.seats,
                request.idempotency_key,
                request.hold,
            )
            return booking_message(booking)

        async def ConfirmBooking(
            self, request: pb.ConfirmBookingRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.Booking:
            return booking_message(await service.confirm_booking(access.grpc_user(context), request.booking_id))

        async def GetBooking(
            self, request: pb.GetBookingRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.Booking:
            return booking_message(await service.get_booking(access.grpc_user(context), request.booking_id))

        async def ListUserBookings(
            self, request: pb.ListUserBookingsRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.ListUserBookingsResponse:
            page = await service.list_user_bookings(
                access.grpc_user(context), request.user_id, request.page_size, request.page_token
            )
            return pb.ListUserBookingsResponse(
                bookings=[booking_message(b) for b in page.bookings], next_page_token=page.next_page_token
            )

        async def CancelBooking(
            self, request: pb.CancelBookingRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.Booking:
            return booking_message(await service.cancel_booking(access.grpc_user(context), request.booking_id))

        async def JoinWaitlist(
            self, request: pb.JoinWaitlistRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.WaitlistEntry:
            joined = await waitlists.join(access.grpc_user(context), request.event_id, request.user_id, request.seats)
            return waitlist_entry_message(joined.entry)

        async def LeaveWaitlist(
            self, request: pb.LeaveWaitlistRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.WaitlistEntry:
            entry = await waitlists.leave(access.grpc_user(context), request.event_id, request.user_id)
            return waitlist_entry_message(entry)

        async def ListUserWaitlist(
            self, request: pb.ListUserWaitlistRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.ListUserWaitlistResponse:
            page = await waitlists.list_user(
                access.grpc_user(context), request.user_id, request.page_size, request.page_token
            )
            return pb.ListUserWaitlistResponse(
                entries=[waitlist_entry_message(e) for e in page.entries], next_page_token=page.next_page_token
            )

    return BookingServicer()
