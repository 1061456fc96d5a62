"""The two ways a caller is refused for who it is, as domain errors.

Both are in `service_runtime.error_table.BASE_ERRORS`: `Unauthenticated` is 401 /
UNAUTHENTICATED, `PermissionDenied` is 403 / PERMISSION_DENIED. Messages are fixed strings of
this module: a token, or anything taken from one, never goes into a message or its metadata.
"""

from __future__ import annotations

import enum

from service_runtime.errors import DomainError


class TokenProblem(enum.StrEnum):
    """Why no principal could be made; the ErrorInfo metadata carries it as `cause`."""

    MISSING = "TOKEN_MISSING"  # no bearer credential at all (also: another auth scheme)
    MALFORMED = "TOKEN_MALFORMED"  # not a bearer token / JWT in form
    EXPIRED = "TOKEN_EXPIRED"
    INVALID = "TOKEN_INVALID"  # signature, key, algorithm, issuer, audience, nbf, claims


class Unauthenticated(DomainError):
    """No valid credential: 401 with `WWW-Authenticate` (REST), UNAUTHENTICATED (gRPC).

    `error` is the RFC 6750 error code: None when no token was presented (the client may not
    know authentication is needed), `invalid_token` for every token that was refused.
    """

    def __init__(self, reason: TokenProblem, message: str) -> None:
        super().__init__(message, cause=reason.value)
        self.reason = reason
        self.error: str | None = None if reason is TokenProblem.MISSING else "invalid_token"

    def challenge(self, realm: str = "ticketflow") -> str:
        """The RFC 6750 `WWW-Authenticate` value of this refusal: `Bearer realm="..."`, plus the
        error code when a token was presented."""
        challenge = f'Bearer realm="{realm}"'
        if self.error is not None:
            challenge += f', error="{self.error}"'
        return challenge


class PermissionDenied(DomainError):
    """A verified caller asked for something its identity does not allow."""

    def __init__(self, message: str = "the caller is not allowed to do this") -> None:
        super().__init__(message)
