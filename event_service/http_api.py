"""REST adapter: the event routes, in the proto3 JSON mapping (as gRPC-Gateway serves them).

    GET   /events?pageSize=&pageToken=   ListEvents                                  anyone
    GET   /events/{eventId}              GetEvent                                    anyone
    POST  /events                        CreateEvent -> 201, Location: /events/{id}  an admin token
    PATCH /events/{eventId}?updateMask=  UpdateEvent (body: the Event)               an admin token
    POST  /events/{eventId}:cancel       CancelEvent (body: empty or {})             an admin token
    GET   /events/{eventId}/waitlist?pageSize=&pageToken=
                                         ListEventWaitlist (join order, every state) an admin token

Without a token the admin routes answer 401, with another user's 403, before the body is
looked at, and nothing is written. Users join and leave waiting lists through the booking
service, which calls this service over gRPC. Seats are taken and given back only over gRPC, by the
booking service: no public route takes or gives back a booking's seats (UpdateEvent changes
only the free ones).
"""

from __future__ import annotations

import re

from quart import Blueprint, Response, request

from event_service.messages import event_message, event_values, waitlist_message
from event_service.service import EventService
from event_service.waitlist_service import WaitlistService
from service_runtime.auth.access import Access
from service_runtime.errors import InvalidArgument
from service_runtime.protojson import optional_datetime, parse_body, to_dict
from service_runtime.rest import int_param, json_response, query_params, read_body
from ticketflow.event.v1 import event_service_pb2 as pb

_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")


def blueprint(service: EventService, waitlist: WaitlistService, access: Access) -> Blueprint:
    routes = Blueprint("events", __name__)

    @routes.get("/events")
    async def list_events() -> Response:
        params = query_params("page_size", "page_token")
        page = await service.list_events(int_param(params, "page_size"), params.get("page_token", ""))
        message = pb.ListEventsResponse(
            events=[event_message(e) for e in page.events],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )
        return json_response(to_dict(message))

    @routes.get("/events/<event_id>")
    async def get_event(event_id: str) -> Response:
        return json_response(to_dict(event_message(await service.get_event(event_id))))

    @routes.post("/events")
    async def create_event() -> Response:
        caller = access.user(request.headers.get("Authorization"))
        body = parse_body(await read_body(), pb.CreateEventRequest)
        event = await service.create_event(
            caller,
            body.name,
            optional_datetime(body, "start_time"),
            body.total_seats,
            optional_datetime(body, "sales_start_time"),
            optional_datetime(body, "sales_end_time"),
        )
        return json_response(to_dict(event_message(event)), 201, {"Location": f"/events/{event.id}"})

    @routes.patch("/events/<event_id>")
    async def update_event(event_id: str) -> Response:
        caller = access.user(request.headers.get("Authorization"))
        mask = update_mask(query_params("update_mask").get("update_mask", ""))
        body = parse_body(await read_body(), pb.Event)
        if body.id and body.id != event_id:
            raise InvalidArgument("id", "differs from the event id of the path")
        event = await service.update_event(caller, event_id, event_values(body), mask)
        return json_response(to_dict(event_message(event)))

    # A custom method (AIP-136): the verb follows the resource after a colon.
    @routes.post("/events/<event_id>:cancel")
    async def cancel_event(event_id: str) -> Response:
        caller = access.user(request.headers.get("Authorization"))
        raw = await read_body()
        if raw.strip():
            body = parse_body(raw, pb.CancelEventRequest)
            if body.event_id and body.event_id != event_id:
                raise InvalidArgument("event_id", "differs from the event id of the path")
        return json_response(to_dict(event_message(await service.cancel_event(caller, event_id))))

    @routes.get("/events/<event_id>/waitlist")
    async def list_event_waitlist(event_id: str) -> Response:
        caller = access.user(request.headers.get("Authorization"))
        params = query_params("page_size", "page_token")
        page = await waitlist.list_for_event(
            caller, event_id, int_param(params, "page_size"), params.get("page_token", "")
        )
        return json_response(to_dict(waitlist_message(page.entries, page.next_page_token)))

    return routes


def update_mask(raw: str) -> list[str]:
    """An update mask in its JSON form (`name,salesStartTime`) as proto field paths; proto
    names (`sales_start_time`) are accepted too, as for every field."""
    return [_CAMEL_HUMP.sub("_", path.strip()).lower() for path in raw.split(",") if path.strip()]
