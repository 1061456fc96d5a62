"""REST bodies in the proto3 JSON mapping, as gRPC-Gateway serves them.

Requests are parsed into the same protobuf request messages the gRPC API takes, so both
transports share one definition of every field: lowerCamelCase (or the proto name), RFC 3339
timestamps, and unknown fields rejected, as the mapping's parsers do by default. Parse
failures become `InvalidArgument` naming the proto field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from service_runtime.errors import InvalidArgument

M = TypeVar("M", bound=Message)

_UNKNOWN_FIELD = re.compile(r'has no field named "([^"]+)"')
_BAD_FIELD = re.compile(r"Failed to parse (\w+) field: (.*?)(?: at [\w.]+)?\.?$", re.DOTALL)
_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")
_TIMESTAMP = "google.protobuf.Timestamp"
_TIMESTAMP_MESSAGE = "must be an RFC 3339 timestamp with a time zone offset or Z, such as 2027-01-01T10:00:00Z"


def _proto_name(json_name: str) -> str:
    return _CAMEL_HUMP.sub("_", json_name).lower()


def parse_body(body: bytes, message_type: type[M]) -> M:
    """Parses a JSON request body into a new `message_type`."""
    if not body.strip():
        raise InvalidArgument("body", "is empty; expected a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidArgument("body", f"is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise InvalidArgument("body", "must be a JSON object")
    return parse_dict(data, message_type)


def parse_dict(data: dict[str, Any], message_type: type[M]) -> M:
    message = message_type()
    # The stubs type DESCRIPTOR as the pure-Python or the upb class; both have this interface.
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    _refuse_repeated_names(data, descriptor)
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=False)
    except json_format.ParseError as error:
        text = str(error)
        if match := _UNKNOWN_FIELD.search(text):
            raise InvalidArgument(_proto_name(match.group(1)), "is not a field of this request") from None
        if match := _BAD_FIELD.search(text):
            field = _field(descriptor, match.group(1))
            if field is not None and field.message_type is not None and field.message_type.full_name == _TIMESTAMP:
                # The parser's own words ("Failed to parse timestamp: ... timezone offset.")
                # do not say what to send instead.
                raise InvalidArgument(field.name, _TIMESTAMP_MESSAGE) from None
            raise InvalidArgument(_proto_name(match.group(1)), match.group(2).strip().rstrip(".")) from None
        raise InvalidArgument("body", text.splitlines()[0]) from None
    return message


def _field(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    """The field a JSON key names: its JSON name (eventId) or its proto name (event_id)."""
    for field in descriptor.fields:
        if name in (field.json_name, field.name):
            return field
    return None


def _refuse_repeated_names(data: dict[str, Any], descriptor: Descriptor) -> None:
    """One field given twice under its two JSON names (`eventId` and `event_id`) is refused:
    the parser would otherwise keep whichever came last."""
    seen: set[str] = set()
    for key, value in data.items():
        field = _field(descriptor, key)
        if field is None:
            continue  # the parser names unknown fields
        if field.name in seen:
            raise InvalidArgument(field.name, f"is given twice (as {field.json_name} and {field.name})")
        seen.add(field.name)
        if (
            field.message_type is not None
            and not field.is_repeated
            and isinstance(value, dict)
            and not field.message_type.full_name.startswith("google.protobuf.")
        ):
            _refuse_repeated_names(value, field.message_type)


def to_dict(message: Message) -> dict[str, Any]:
    """The message as gRPC-Gateway renders it: every field present, timestamps in RFC 3339."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload)


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def optional_datetime(message: Message, field: str) -> datetime | None:
    """A Timestamp field as an aware datetime, or None when it is not set."""
    if not message.HasField(field):
        return None
    value: Timestamp = getattr(message, field)
    return value.ToDatetime(tzinfo=UTC)
