"""Domain errors shared by both services, free of any transport.

Every error a use case can raise derives from `DomainError`. Each service maps its errors to
HTTP statuses and gRPC codes once, in an `ErrorTable` (see `service_runtime.error_table`).
"""

from __future__ import annotations


class DomainError(Exception):
    """A use case refused a request for a reason the caller can act on."""

    def __init__(self, message: str, **metadata: str | int) -> None:
        super().__init__(message)
        self.message = message
        # Machine-readable facts about the refusal (for example the field at fault).
        self.metadata = {key: str(value) for key, value in metadata.items()}


class InvalidArgument(DomainError):
    """A request field is malformed or out of range; `field` names it (proto field name)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.field = field


class NotFound(DomainError):
    """The named resource does not exist."""


class Conflict(DomainError):
    """The request conflicts with the resource's current state."""


class Unavailable(DomainError):
    """A dependency could not answer; the request may succeed if retried later."""

    def __init__(self, message: str, retry_after_seconds: int = 1, **metadata: str | int) -> None:
        super().__init__(message, **metadata)
        self.retry_after_seconds = retry_after_seconds
