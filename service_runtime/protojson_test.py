"""REST bodies parse into request messages as the proto3 JSON mapping says, with errors naming fields."""

from __future__ import annotations

import pytest

from service_runtime.errors import InvalidArgument
from service_runtime.protojson import parse_body, to_dict
from ticketflow.event.v1 import event_service_pb2 as pb


def test_camel_case_and_proto_names_both_parse() -> None:
    camel = parse_body(
        b'{"name": "Gig", "totalSeats": 5, "startTime": "2027-01-01T10:00:00+02:00"}', pb.CreateEventRequest
    )
    snake = parse_body(
        b'{"name": "Gig", "total_seats": 5, "start_time": "2027-01-01T08:00:00Z"}', pb.CreateEventRequest
    )
    assert camel == snake


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"totalSeats": "x"}', "total_seats"),
        (b'{"totalSeats": 2.5}', "total_seats"),
        (b'{"startTime": "noon"}', "start_time"),
        (b'{"unknownThing": 1}', "unknown_thing"),
        (b"{", "body"),
        (b"[]", "body"),
        (b"", "body"),
    ],
)
def test_errors_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_body(body, pb.CreateEventRequest)
    assert error.value.field == field


def test_responses_print_every_field_in_camel_case() -> None:
    # Enums print by name, the zero value included; unset messages (timestamps) are left out.
    assert to_dict(pb.Event(id="e")) == {
        "id": "e",
        "name": "",
        "totalSeats": 0,
        "availableSeats": 0,
        "state": "STATE_UNSPECIFIED",
    }
