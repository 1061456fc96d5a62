"""`Principal`: the verified caller, the explicit first argument of a use case."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller whose bearer token verified.

    `subject` is the token's `sub` (the user id); `is_admin` says whether the token carried
    the configured admin role or scope (see `service_runtime.auth.settings`).
    """

    subject: str
    is_admin: bool = False
