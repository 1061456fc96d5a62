"""Who may call a route or an RPC, stated by the route or RPC itself at the edge.

Each handler begins with what it requires: `access.user(...)` / `access.grpc_user(...)` (any
caller with a valid bearer token), or nothing for a public route (reading events, health).
The principal it gets back is the first argument of the use case, where the rules live (an
admin creates events; a booking is its owner's or an admin's). Seat calls
between the services are authorised by the peer's verified client certificate instead
(`SeatCallers`): no user token can take or give back seats.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from service_runtime.auth.errors import PermissionDenied
from service_runtime.auth.jwks import JwksKeySet
from service_runtime.auth.principal import Principal
from service_runtime.auth.settings import AuthSettings
from service_runtime.auth.tls import peer_identities
from service_runtime.auth.verifier import TokenVerifier


class Access:
    """Bearer-token checks for REST (an `Authorization` header value) and gRPC (a context)."""

    def __init__(self, verifier: TokenVerifier, refresher: asyncio.Task[None] | None = None) -> None:
        self._verifier = verifier
        self._refresher = refresher

    @classmethod
    async def start(cls, settings: AuthSettings) -> Access:
        """Loads the signing keys (a ConfigError naming the variable if they cannot be had) and
        keeps them fresh in a background task until `close()`."""
        keys = JwksKeySet.from_settings(settings)
        await keys.load()
        return cls(TokenVerifier(settings, keys), asyncio.create_task(keys.run_refresh()))

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, settings: AuthSettings) -> AsyncIterator[Access]:
        """`start`, and `close` when the block ends: a service's whole life."""
        access = await cls.start(settings)
        try:
            yield access
        finally:
            await access.close()

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher

    def user(self, authorization: str | None) -> Principal:
        return self._verifier.authenticate(authorization)

    def grpc_user(self, context: grpc.aio.ServicerContext[Any, Any]) -> Principal:
        return self._verifier.authenticate_metadata(context.invocation_metadata())


class SeatCallers:
    """The services allowed to take and give back seats: peers whose verified client
    certificate names one of `allowed` (SEAT_CALLERS)."""

    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed

    def check(self, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        """The calling service's name; PermissionDenied for a peer without a verified client
        certificate (plaintext, or TLS without one) or with a certificate of another name."""
        identities = peer_identities(context)
        if not identities:
            raise PermissionDenied("seat calls need the booking service's client certificate (mutual TLS)")
        allowed = identities & self.allowed
        if not allowed:
            raise PermissionDenied("this client certificate may not take or give back seats")
        return min(allowed)
