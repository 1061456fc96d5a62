"""REST adapter: the event routes, in the proto3 JSON mapping (as gRPC-Gateway serves them).

    GET  /events?pageSize=&pageToken=   ListEvents                                anyone
    GET  /events/{eventId}              GetEvent                                  anyone
    POST /events                        CreateEvent -> 201, Location: /events/{id}  an admin token

Seats are taken and given back only over gRPC, by the booking service: there is no public
route that changes a seat count.
"""

from __future__ import annotations

from quart import Blueprint, Response, request

from event_service.messages import event_message
from event_service.service import EventService
from service_runtime.auth.access import Access
from service_runtime.protojson import optional_datetime, parse_body, to_dict
from service_runtime.rest import int_param, json_response, query_params, read_body
from ticketflow.event.v1 import event_service_pb2 as pb


def blueprint(service: EventService, access: Access) -> Blueprint:
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
        event = await service.create_event(caller, body.name, optional_datetime(body, "start_time"), body.total_seats)
        return json_response(to_dict(event_message(event)), 201, {"Location": f"/events/{event.id}"})

    return routes
