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


@pytest.mark.parametrize(
    "body",
    [
        b'{"totalSeats": 5, "total_seats": 5}',
        b'{"total_seats": 5, "totalSeats": 6}',
        b'{"startTime": "2027-01-01T10:00:00Z", "start_time": "2027-01-01T10:00:00Z"}',
    ],
)
def test_a_field_given_under_both_its_names_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_body(body, pb.CreateEventRequest)
    assert error.value.field in ("total_seats", "start_time")
    assert "twice" in error.value.message


def test_a_field_given_twice_inside_a_nested_message_is_refused() -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_body(b'{"event": {"totalSeats": 5, "total_seats": 6}}', pb.UpdateEventRequest)
    assert error.value.field == "total_seats"


@pytest.mark.parametrize("value", ["2027-01-01T10:00:00", "2027-01-01", "noon"])
def test_timestamps_without_a_time_zone_get_a_clear_message(value: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_body(b'{"startTime": "%s"}' % value.encode(), pb.CreateEventRequest)
    assert error.value.field == "start_time"
    assert error.value.message == (
        "start_time: must be an RFC 3339 timestamp with a time zone offset or Z, such as 2027-01-01T10:00:00Z"
    )


def test_responses_print_every_field_in_camel_case() -> None:
    # Enums print by name, the zero value included; unset messages (timestamps) are left out.
    assert to_dict(pb.Event(id="e")) == {
        "id": "e",
        "name": "",
        "totalSeats": 0,
        "availableSeats": 0,
        "state": "STATE_UNSPECIFIED",
        "waitlistSize": 0,
    }
