"""RFC 6750 bearer tokens on the wire: out of an `Authorization` header value or gRPC
metadata (the `WWW-Authenticate` challenge of a refusal is `Unauthenticated.challenge()`).

Another scheme (`Basic ...`) counts as no token at all, as RFC 6750 section 3 asks: the answer
is a bare challenge without an error code. A `Bearer` credential that is not a token in form
is `invalid_token`. No function here puts the credential into an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from service_runtime.auth.errors import TokenProblem, Unauthenticated

METADATA_KEY = "authorization"

# RFC 6750 section 2.1: credentials = "Bearer" 1*SP b64token.
_CREDENTIALS = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: +(.*))?")
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# Larger than any token an identity provider issues; longer values are refused unparsed.
MAX_TOKEN_LENGTH = 8192


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization` header value; the scheme is matched case-insensitively.

    Raises Unauthenticated: MISSING for no header or another scheme, MALFORMED for a `Bearer`
    credential without a well-formed token.
    """
    if authorization is None or not authorization.strip():
        raise Unauthenticated(TokenProblem.MISSING, "a bearer token is required")
    match = _CREDENTIALS.fullmatch(authorization.strip())
    if match is None:
        raise Unauthenticated(TokenProblem.MISSING, "a bearer token is required")
    if match.group(1).lower() != "bearer":
        raise Unauthenticated(TokenProblem.MISSING, "a bearer token is required (no other scheme is accepted)")
    token = match.group(2) or ""
    if len(token) > MAX_TOKEN_LENGTH or _B64TOKEN.fullmatch(token) is None:
        raise Unauthenticated(TokenProblem.MALFORMED, "the bearer token is malformed")
    return token


def bearer_token_from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The token of a call's `authorization` metadata (`context.invocation_metadata()`).

    gRPC keys are lower case; more than one `authorization` entry is refused as malformed.
    """
    values = [value for key, value in metadata or () if key.lower() == METADATA_KEY]
    if not values:
        return bearer_token(None)
    if len(values) > 1:
        raise Unauthenticated(TokenProblem.MALFORMED, "more than one authorization entry")
    value = values[0]
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise Unauthenticated(TokenProblem.MALFORMED, "the bearer token is malformed") from None
    return bearer_token(value)
