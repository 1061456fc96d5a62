"""Wiring of the event service: one pool, the use cases, the Quart app and the gRPC server."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool
from quart import Quart

from event_service import grpc_api, http_api
from event_service.coalescer import ReservationCoalescer
from event_service.config import Settings
from event_service.errors import ERRORS
from event_service.repository import EventRepository
from event_service.service import EventService
from service_runtime import rest
from service_runtime.database import is_reachable, open_pool
from service_runtime.grpc_server import GrpcServer
from service_runtime.metrics import Metrics
from service_runtime.migrations import migrate_package
from service_runtime.serve import Servers
from ticketflow.event.v1 import event_service_pb2_grpc

log = logging.getLogger(__name__)

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass
class Components:
    service: EventService
    metrics: Metrics
    http_app: Quart
    grpc_server: GrpcServer
    coalescer: ReservationCoalescer | None


def build(settings: Settings, pool: AsyncConnectionPool, grpc_server: GrpcServer | None = None) -> Components:
    """Everything the service serves, around an open pool (tests call this too)."""
    metrics = Metrics()
    metrics.watch_pool(pool)
    repository = EventRepository(pool)
    coalescer = None
    if settings.batching:
        batch_sizes = metrics.histogram(
            "reservation_batch_size", "ReserveSeats calls decided per transaction.", [], buckets=BATCH_BUCKETS
        )
        coalescer = ReservationCoalescer(repository, settings.max_batch, on_batch=batch_sizes.observe)
    service = EventService(repository, settings.limits, coalescer.reserve if coalescer else None)

    http_app = Quart("event_service")
    rest.install(
        http_app,
        errors=ERRORS,
        metrics=metrics,
        readiness={"database": lambda: is_reachable(pool)},
        max_body_bytes=settings.server.max_body_bytes,
    )
    http_app.register_blueprint(http_api.blueprint(service))

    grpc_server = grpc_server or GrpcServer([grpc_api.SERVICE_NAME])
    event_service_pb2_grpc.add_EventServiceServicer_to_server(grpc_api.servicer(service, metrics), grpc_server.server)
    return Components(service, metrics, http_app, grpc_server, coalescer)


async def migrate(settings: Settings) -> int:
    return await migrate_package(settings.database.conninfo(), "event_service")


async def run(settings: Settings) -> None:
    """Serves until SIGTERM/SIGINT, then shuts down gracefully."""
    grpc_server = GrpcServer([grpc_api.SERVICE_NAME])
    servers = Servers(settings.server, grpc_server)
    pool = await open_pool(settings.database, name="event_service")
    try:
        await migrate(settings)
        components = build(settings, pool, grpc_server)
    except BaseException:
        await pool.close()
        raise

    async def stop() -> None:
        if components.coalescer is not None:
            await components.coalescer.close()
        await pool.close()

    await servers.run(components.http_app, on_stop=stop)
