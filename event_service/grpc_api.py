"""gRPC adapter: `ticketflow.event.v1.EventService` on top of the use cases.

Who may call what: GetEvent and ListEvents, anyone; CreateEvent, UpdateEvent and CancelEvent,
a bearer token (UNAUTHENTICATED without one; the use cases want an admin, PERMISSION_DENIED
for anyone else); the seat methods (ReserveSeats, ReserveSeatsBatch, ReleaseSeats,
GetReservation), the waiting-list methods the booking service uses on its users' behalf
(JoinWaitlist, LeaveWaitlist, ListUserWaitlist, ListWaitlistOffers, AcknowledgeWaitlistOffers)
and ListCancelledEvents, only a peer whose verified client certificate names a SEAT_CALLERS
service (PERMISSION_DENIED otherwise, whatever token it shows); ListEventWaitlist, a bearer
token of an admin.
"""

from __future__ import annotations

from typing import Any

import grpc

from event_service.errors import ERRORS
from event_service.messages import (
    event_message,
    event_values,
    reservation_message,
    reserve_result,
    waitlist_entry_message,
    waitlist_message,
)
from event_service.service import EventService
from event_service.waitlist_service import WaitlistService
from service_runtime.auth.access import Access, SeatCallers
from service_runtime.errors import InvalidArgument
from service_runtime.grpc_server import error_mapping
from service_runtime.metrics import Metrics
from service_runtime.protojson import optional_datetime
from ticketflow.event.v1 import event_service_pb2 as pb
from ticketflow.event.v1 import event_service_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EventService"].full_name
MAX_BATCH = 1000


def servicer(
    service: EventService, waitlist: WaitlistService, access: Access, seat_callers: SeatCallers, metrics: Metrics
) -> pb_grpc.EventServiceServicer:
    @error_mapping(ERRORS, metrics, SERVICE_NAME)
    class EventServicer(pb_grpc.EventServiceServicer):
        async def CreateEvent(
            self, request: pb.CreateEventRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.Event:
            event = await service.create_event(
                access.grpc_user(context),
                request.name,
                optional_datetime(request, "start_time"),
                request.total_seats,
                optional_datetime(request, "sales_start_time"),
                optional_datetime(request, "sales_end_time"),
            )
            return event_message(event)

        async def UpdateEvent(
            self, request: pb.UpdateEventRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.Event:
            caller = access.grpc_user(context)
            event = await service.update_event(
                caller, request.event.id, event_values(request.event), list(request.update_mask.paths)
            )
            return event_message(event)

        async def CancelEvent(
            self, request: pb.CancelEventRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.Event:
            return event_message(await service.cancel_event(access.grpc_user(context), request.event_id))

        async def ListCancelledEvents(
            self, request: pb.ListCancelledEventsRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.ListCancelledEventsResponse:
            seat_callers.check(context)
            page = await service.list_cancelled_events(
                optional_datetime(request, "cancelled_after"), request.page_size, request.page_token
            )
            return pb.ListCancelledEventsResponse(
                events=[event_message(e) for e in page.events], next_page_token=page.next_page_token
            )

        async def GetEvent(self, request: pb.GetEventRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.Event:
            return event_message(await service.get_event(request.event_id))

        async def ListEvents(
            self, request: pb.ListEventsRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.ListEventsResponse:
            page = await service.list_events(request.page_size, request.page_token)
            return pb.ListEventsResponse(
                events=[event_message(e) for e in page.events],
                next_page_token=page.next_page_token,
                total_size=page.total_size,
            )

        async def ReserveSeats(
            self, request: pb.ReserveSeatsRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.Reservation:
            seat_callers.check(context)
            reservation = await service.reserve_seats(request.booking_id, request.event_id, request.seats)
            return reservation_message(reservation)

        async def ReserveSeatsBatch(
            self, request: pb.ReserveSeatsBatchRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.ReserveSeatsBatchResponse:
            seat_callers.check(context)
            if len(request.requests) > MAX_BATCH:
                raise InvalidArgument("requests", f"at most {MAX_BATCH} per call, got {len(request.requests)}")
            results = await service.reserve_seats_batch([(r.booking_id, r.event_id, r.seats) for r in request.requests])
            return pb.ReserveSeatsBatchResponse(results=[reserve_result(result, ERRORS) for result in results])

        async def ReleaseSeats(
            self, request: pb.ReleaseSeatsRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.Reservation:
            seat_callers.check(context)
            return reservation_message(await service.release_seats(request.booking_id))

        async def GetReservation(
            self, request: pb.GetReservationRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.Reservation:
            seat_callers.check(context)
            return reservation_message(await service.get_reservation(request.booking_id))

        async def JoinWaitlist(
            self, request: pb.JoinWaitlistRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.JoinWaitlistResponse:
            seat_callers.check(context)
            joined = await waitlist.join(request.event_id, request.user_id, request.seats)
            return pb.JoinWaitlistResponse(entry=waitlist_entry_message(joined.entry), created=joined.created)

        async def LeaveWaitlist(
            self, request: pb.LeaveWaitlistRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.WaitlistEntry:
            seat_callers.check(context)
            return waitlist_entry_message(await waitlist.leave(request.event_id, request.user_id))

        async def ListUserWaitlist(
            self, request: pb.ListUserWaitlistRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.ListWaitlistResponse:
            seat_callers.check(context)
            page = await waitlist.list_for_user(request.user_id, request.page_size, request.page_token)
            return waitlist_message(page.entries, page.next_page_token)

        async def ListEventWaitlist(
            self, request: pb.ListEventWaitlistRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.ListWaitlistResponse:
            caller = access.grpc_user(context)
            page = await waitlist.list_for_event(caller, request.event_id, request.page_size, request.page_token)
            return waitlist_message(page.entries, page.next_page_token)

        async def ListWaitlistOffers(
            self, request: pb.ListWaitlistOffersRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.ListWaitlistResponse:
            seat_callers.check(context)
            return waitlist_message(await waitlist.list_offers(request.page_size))

        async def AcknowledgeWaitlistOffers(
            self, request: pb.AcknowledgeWaitlistOffersRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> pb.AcknowledgeWaitlistOffersResponse:
            seat_callers.check(context)
            acknowledged = await waitlist.acknowledge_offers(list(request.booking_ids))
            return pb.AcknowledgeWaitlistOffersResponse(acknowledged=acknowledged)

    return EventServicer()
