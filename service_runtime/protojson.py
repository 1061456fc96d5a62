"""REST bodies in the proto3 JSON mapping, as gRPC-Gateway serves them.

Requests are parsed into the same protobuf request messages the gRPC API takes, so both
transports share one definition of every field: lowerCamelCase (or the proto name), RFC 3339
timestamps, and unknown fields rejected, as the mapping's parsers do by default. Parse
failures become `InvalidArgument` naming the proto field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from service_runtime.errors import InvalidArgument

M = TypeVar("M", bound=Message)

_UNKNOWN_FIELD = re.compile(r'has no field named "([^"]+)"')
_BAD_FIELD = re.compile(r"Failed to parse (\w+) field: (.*?)(?: at [\w.]+)?\.?$", re.DOTALL)
_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")


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
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=False)
    except json_format.ParseError as error:
        text = str(error)
        if match := _UNKNOWN_FIELD.search(text):
            raise InvalidArgument(_proto_name(match.group(1)), "is not a field of this request") from None
        if match := _BAD_FIELD.search(text):
            raise InvalidArgument(_proto_name(match.group(1)), match.group(2).strip().rstrip(".")) from None
        raise InvalidArgument("body", text.splitlines()[0]) from None
    return message


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
