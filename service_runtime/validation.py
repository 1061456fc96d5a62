"""Checks of request values shared by both services' use cases; failures name the field."""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
import uuid
from datetime import UTC, datetime

from service_runtime.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Tokens this server issues are about 100 characters; anything much longer is not one of them,
# and is refused before it is decoded.
MAX_PAGE_TOKEN_LENGTH = 1024


def parse_uuid(field: str, value: str) -> uuid.UUID:
    if not value:
        raise InvalidArgument(field, "is required")
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(field, f"{_shorten(value)!r} is not a UUID") from None
    # uuid.UUID also accepts forms such as "{...}" and "urn:uuid:..."; ids have one spelling.
    if str(parsed) != value.lower():
        raise InvalidArgument(field, f"{_shorten(value)!r} is not a UUID in canonical form")
    return parsed


def check_int(field: str, value: int, *, minimum: int, maximum: int) -> int:
    if not minimum <= value <= maximum:
        raise InvalidArgument(field, f"must be between {minimum} and {maximum}, got {value}")
    return value


def check_text(field: str, value: str, *, max_length: int, min_length: int = 1) -> str:
    """Non-empty (unless min_length=0), at most max_length characters, no control characters."""
    if len(value) < min_length:
        raise InvalidArgument(field, "is required" if min_length == 1 else f"needs {min_length}+ characters")
    if len(value) > max_length:
        raise InvalidArgument(field, f"is longer than {max_length} characters")
    # PostgreSQL text cannot hold NUL, and control characters in names and ids only cause harm.
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidArgument(field, "contains control characters")
    return value


def check_timestamp(field: str, value: datetime | None, *, required: bool = True) -> datetime | None:
    if value is None:
        if required:
            raise InvalidArgument(field, "is required")
        return None
    if value.tzinfo is None:
        raise InvalidArgument(field, "needs a time zone")
    if not 1900 <= value.year <= 9999:
        raise InvalidArgument(field, "is out of range")
    return value


def page_size(field: str, value: int) -> int:
    """0 (unset) is the default; above the maximum is the maximum (AIP-158); negative is refused."""
    if value == 0:
        return DEFAULT_PAGE_SIZE
    if value < 0:
        raise InvalidArgument(field, f"must not be negative, got {value}")
    return min(value, MAX_PAGE_SIZE)


def encode_page_token(position: list[str]) -> str:
    """An opaque token for keyset pagination: the sort key of the last row of a page."""
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_page_token(field: str, token: str, length: int) -> list[str] | None:
    if not token:
        return None
    if len(token) > MAX_PAGE_TOKEN_LENGTH:
        raise InvalidArgument(field, "is not a token this server issued")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        position = json.loads(raw)
    # RecursionError: deeply nested JSON (`[[[[...]]]]`) exhausts the decoder's stack.
    except (binascii.Error, ValueError, RecursionError):
        raise InvalidArgument(field, "is not a token this server issued") from None
    if not (isinstance(position, list) and len(position) == length and all(isinstance(p, str) for p in position)):
        raise InvalidArgument(field, "is not a token this server issued")
    return position


def encode_position(time: datetime, row_id: uuid.UUID) -> str:
    """A page token for keyset pagination on (timestamp, id)."""
    return encode_page_token([time.isoformat(), str(row_id)])


def decode_position(field: str, token: str) -> tuple[datetime, uuid.UUID] | None:
    """The (timestamp, id) of a token made by `encode_position`; None for the first page."""
    position = decode_page_token(field, token, 2)
    if position is None:
        return None
    try:
        time, row_id = datetime.fromisoformat(position[0]), uuid.UUID(position[1])
        if time.tzinfo is None:
            raise ValueError("naive timestamp")
        # In UTC, as the server wrote it; an offset that moves it past year 1 or 9999 overflows.
        return time.astimezone(UTC), row_id
    except (ValueError, OverflowError):
        raise InvalidArgument(field, "is not a token this server issued") from None


def _shorten(value: str, limit: int = 64) -> str:
    return value if len(value) <= limit else value[:limit] + "…"
