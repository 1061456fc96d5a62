"""The gRPC side shared by both services: the grpc.aio server, health, reflection, errors.

`error_mapping(table, metrics)` is a class decorator for servicers: each RPC method is
wrapped once so that a `DomainError` becomes a rich status (code and message from the
service's `ErrorTable`, with a google.rpc.ErrorInfo detail), an unexpected exception is logged
once and becomes INTERNAL, and every call is counted and timed.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service_runtime.error_table import ErrorTable
from service_runtime.errors import DomainError
from service_runtime.metrics import Metrics

log = logging.getLogger(__name__)

T = TypeVar("T")

# Long-lived channels between services: keep connections alive through idle periods.
SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
]


def error_mapping(table: ErrorTable, metrics: Metrics, service_name: str) -> Callable[[type[T]], type[T]]:
    """Wraps every public coroutine method of a servicer class (see module docstring)."""

    def decorate(cls: type[T]) -> type[T]:
        for name, method in list(vars(cls).items()):
            if not name.startswith("_") and inspect.iscoroutinefunction(method):
                setattr(cls, name, _wrap(method, table, metrics, service_name, name))
        return cls

    return decorate


def _wrap(
    method: Callable[..., Awaitable[Any]], table: ErrorTable, metrics: Metrics, service: str, rpc: str
) -> Callable[..., Awaitable[Any]]:
    latency = metrics.grpc_latency.labels(service, rpc)

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            return await method(self, request, context)
        except DomainError as error:
            status = table.grpc_status(error)
            code = status.code
            await context.abort_with_status(status)
        except grpc.aio.AbortError:
            # The stubs say code() is always a StatusCode; the fallback for a context whose code
            # was never set is kept as it was (a mechanical typing fix, not a behaviour change).
            code = cast("grpc.StatusCode | None", context.code()) or grpc.StatusCode.UNKNOWN
            raise
        except Exception:
            log.exception("unhandled error in %s/%s", service, rpc)
            code = grpc.StatusCode.INTERNAL
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        finally:
            metrics.grpc_handled.labels(service, rpc, code.name).inc()
            latency.observe(time.perf_counter() - started)

    return wrapper


class GrpcServer:
    """A grpc.aio server with the standard health service and server reflection."""

    def __init__(self, service_names: Iterable[str]) -> None:
        self.server = grpc.aio.server(options=SERVER_OPTIONS)
        self.health = health.aio.HealthServicer()
        self._service_names = list(service_names)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )

    def bind(self, address: str, credentials: grpc.ServerCredentials | None = None) -> int:
        """Binds `host:port`, with TLS when `credentials` are given; returns the port (useful
        with port 0). Raises OSError when taken."""
        try:
            if credentials is None:
                port = self.server.add_insecure_port(address)
            else:
                port = self.server.add_secure_port(address, credentials)
        except RuntimeError as error:
            raise OSError(f"cannot listen on {address}: {error}") from None
        if port == 0:
            raise OSError(f"cannot listen on {address}: address in use or unavailable")
        return int(port)

    async def start(self) -> None:
        await self.server.start()
        for name in ["", *self._service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float) -> None:
        """Reports NOT_SERVING, refuses new calls, lets calls in flight finish for `grace` s."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
