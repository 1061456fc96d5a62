"""Request value checks and page tokens."""

from __future__ import annotations

import uuid

import pytest

from service_runtime.errors import InvalidArgument
from service_runtime.validation import (
    check_text,
    decode_page_token,
    encode_page_token,
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
    for bad in (-1, 101):
        with pytest.raises(InvalidArgument):
            page_size("page_size", bad)


def test_page_tokens_round_trip_and_reject_garbage() -> None:
    token = encode_page_token(["2027-01-01T00:00:00+00:00", "x"])
    assert decode_page_token("page_token", token, 2) == ["2027-01-01T00:00:00+00:00", "x"]
    assert decode_page_token("page_token", "", 2) is None
    for bad in ("%%%", "bm90IGpzb24", encode_page_token(["only-one"])):
        with pytest.raises(InvalidArgument):
            decode_page_token("page_token", bad, 2)
