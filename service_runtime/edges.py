"""What every service exposes, built one way: its metrics, its Quart app with the shared
routes (error bodies, health, readiness, metrics) and its gRPC server (health, reflection).

A service's `app.build` starts from `edges(...)` and adds its own routes, servicer and
metrics; `service_runtime.serve.serve_service` runs the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool
from quart import Quart

from service_runtime import rest
from service_runtime.config import ServerSettings
from service_runtime.database import is_reachable
from service_runtime.error_table import ErrorTable
from service_runtime.grpc_server import GrpcServer
from service_runtime.metrics import Metrics

# Histogram buckets of batch sizes (rows per statement, calls per transaction).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass
class Edges:
    metrics: Metrics
    http_app: Quart
    grpc_server: GrpcServer


def edges(
    name: str,
    *,
    server: ServerSettings,
    errors: ErrorTable,
    pool: AsyncConnectionPool,
    grpc_services: Iterable[str],
    readiness: Mapping[str, rest.ReadinessCheck] | None = None,
    grpc_server: GrpcServer | None = None,
) -> Edges:
    """The metrics, Quart app and gRPC server of service `name`. Readiness always checks the
    database; `readiness` adds the service's other dependencies."""
    metrics = Metrics()
    metrics.watch_pool(pool)
    http_app = Quart(name)
    rest.install(
        http_app,
        errors=errors,
        metrics=metrics,
        readiness={"database": lambda: is_reachable(pool), **(readiness or {})},
        max_body_bytes=server.max_body_bytes,
    )
    return Edges(metrics, http_app, grpc_server or GrpcServer(grpc_services))
