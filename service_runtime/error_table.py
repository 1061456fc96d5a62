"""The one place each service maps its domain errors to HTTP, gRPC and a stable reason.

An `ErrorTable` holds, per domain error class, the HTTP status, the gRPC status code and the
`reason` put in a `google.rpc.ErrorInfo` detail. Both transports render errors from it:
REST as the gRPC-Gateway body `{"code", "message", "details"}`, gRPC as a rich status
(`grpc-status-details-bin`) carrying the same detail. Lookup follows the class hierarchy, so
a subclass without an entry of its own inherits its parent's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from service_runtime.auth.errors import PermissionDenied, Unauthenticated
from service_runtime.errors import DomainError, InvalidArgument, NotFound, Unavailable

ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"


@dataclass(frozen=True)
class ErrorSpec:
    http_status: int
    grpc_code: grpc.StatusCode
    reason: str


# Entries every service shares; a service's own table adds to these.
BASE_ERRORS: Mapping[type[DomainError], ErrorSpec] = {
    InvalidArgument: ErrorSpec(400, grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID"),
    NotFound: ErrorSpec(404, grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    Unauthenticated: ErrorSpec(401, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
    PermissionDenied: ErrorSpec(403, grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED"),
    Unavailable: ErrorSpec(503, grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE"),
    DomainError: ErrorSpec(400, grpc.StatusCode.FAILED_PRECONDITION, "FAILED_PRECONDITION"),
}


class ErrorTable:
    def __init__(self, domain: str, entries: Mapping[type[DomainError], ErrorSpec]) -> None:
        self.domain = domain
        self._entries = {**BASE_ERRORS, **entries}

    def spec(self, error: DomainError) -> ErrorSpec:
        for cls in type(error).__mro__:
            if cls in self._entries:
                return self._entries[cls]
        raise TypeError(f"{type(error).__name__} is not a DomainError")

    def error_info(self, error: DomainError) -> error_details_pb2.ErrorInfo:
        return error_details_pb2.ErrorInfo(reason=self.spec(error).reason, domain=self.domain, metadata=error.metadata)

    def http_body(self, error: DomainError) -> tuple[int, dict[str, Any]]:
        """(HTTP status, gRPC-Gateway style JSON body)."""
        spec = self.spec(error)
        return spec.http_status, status_body(spec.grpc_code, error.message, spec.reason, self.domain, error.metadata)

    def grpc_status(self, error: DomainError) -> grpc.Status:
        """A rich gRPC status whose details hold the ErrorInfo."""
        spec = self.spec(error)
        detail = any_pb2.Any()
        detail.Pack(self.error_info(error))
        return rpc_status.to_status(
            status_pb2.Status(code=spec.grpc_code.value[0], message=error.message, details=[detail])
        )


def status_body(
    code: grpc.StatusCode, message: str, reason: str, domain: str, metadata: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A `google.rpc.Status` with one ErrorInfo detail, in the proto3 JSON mapping (the body
    gRPC-Gateway answers errors with)."""
    detail = {"@type": ERROR_INFO_TYPE, "reason": reason, "domain": domain, "metadata": dict(metadata or {})}
    return {"code": code.value[0], "message": message, "details": [detail]}


def error_info_of(error: grpc.aio.AioRpcError | grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a failed call, if the server sent one."""
    try:
        # from_call reads code(), details() and trailing_metadata(), which AioRpcError has
        # too; the stubs accept only grpc.Call.
        status = rpc_status.from_call(cast(grpc.Call, error))
    except ValueError:
        return None
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None
