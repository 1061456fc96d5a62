"""Request value checks and page tokens."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from service_runtime.errors import InvalidArgument
from service_runtime.validation import (
    check_text,
    decode_page_token,
    decode_position,
    encode_page_token,
    encode_position,
    page_size,
    parse_uuid,
)


def test_uuids_must_be_canonical() -> None:
    value = uuid.uuid4()
    assert parse_uuid("id", str(value)) == value
    assert parse_uuid("id", str(value).upper()) == value
    for bad in ("", "abc", "{" + str(value) + "}", value.hex, "urn:uuid:" + str(value)):
        with pytest.raises(InvalidArgument):
            parse_uuid("id", bad)


def test_text_is_bounded_and_free_of_control_characters() -> None:
    assert check_text("name", "Zoë", max_length=3) == "Zoë"
    for bad in ("", "abcd", "a\x00", "a\nb"):
        with pytest.raises(InvalidArgument):
            check_text("name", bad, max_length=3)


def test_page_size_defaults_and_bounds() -> None:
    assert page_size("page_size", 0) == 20
    assert page_size("page_size", 100) == 100
    # AIP-158: above the maximum is coerced to it, not refused.
    assert page_size("page_size", 101) == 100
    assert page_size("page_size", 2**31 - 1) == 100
    with pytest.raises(InvalidArgument) as error:
        page_size("page_size", -1)
    assert error.value.field == "page_size"


def test_page_tokens_round_trip_and_reject_garbage() -> None:
    token = encode_page_token(["2027-01-01T00:00:00+00:00", "x"])
    assert decode_page_token("page_token", token, 2) == ["2027-01-01T00:00:00+00:00", "x"]
    assert decode_page_token("page_token", "", 2) is None
    for bad in ("%%%", "bm90IGpzb24", encode_page_token(["only-one"])):
        with pytest.raises(InvalidArgument):
            decode_page_token("page_token", bad, 2)


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_positions_round_trip() -> None:
    time, row_id = datetime(2027, 1, 1, 10, tzinfo=UTC), uuid.uuid4()
    assert decode_position("page_token", encode_position(time, row_id)) == (time, row_id)


@pytest.mark.parametrize(
    "token",
    [
        _token(b"[" * 100_000 + b"]" * 100_000),  # nested deeper than the decoder's stack
        _token(b'{"a":' * 5_000 + b"1" + b"}" * 5_000),
        "A" * 100_000,  # huge
        "é-not-base64",
        _token(b"\xff\xfe"),  # not UTF-8
        _token(b'{"a": 1}'),
        _token(b"[1, 2]"),
        _token(b'["2027-01-01T10:00:00", "' + str(uuid.UUID(int=1)).encode() + b'"]'),  # no time zone
        _token(b'["0001-01-01T00:00:00+14:00", "' + str(uuid.UUID(int=1)).encode() + b'"]'),  # before year 1 in UTC
        _token(b'["2027-01-01T10:00:00Z", "not-a-uuid"]'),
        _token(b"null"),
    ],
    ids=[
        "nested_lists",
        "nested_objects",
        "huge",
        "not_base64",
        "not_utf8",
        "object",
        "numbers",
        "naive_time",
        "overflow",
        "bad_uuid",
        "null",
    ],
)
def test_garbage_positions_are_field_errors(token: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        decode_position("page_token", token)
    assert error.value.field == "page_token"
