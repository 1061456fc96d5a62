"""Wiring of the booking service: one pool, the event service client, the use cases, the
reconciler, the Quart app and the gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool
from quart import Quart

from booking_service import grpc_api, http_api
from booking_service.batched_store import BatchedStore
from booking_service.config import Settings
from booking_service.errors import ERRORS
from booking_service.event_client import EventClient
from booking_service.reconciler import Reconciler
from booking_service.repository import BookingRepository
from booking_service.service import BookingService, Seats
from service_runtime import rest
from service_runtime.database import is_reachable, open_pool
from service_runtime.faults import Faults
from service_runtime.grpc_server import GrpcServer
from service_runtime.metrics import Metrics
from service_runtime.migrations import migrate_package
from service_runtime.serve import Servers
from service_runtime.tasks import DetachedTasks
from ticketflow.booking.v1 import booking_service_pb2_grpc

log = logging.getLogger(__name__)

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass
class Components:
    store: BatchedStore
    service: BookingService
    reconciler: Reconciler
    tasks: DetachedTasks
    metrics: Metrics
    http_app: Quart
    grpc_server: GrpcServer


def build(
    settings: Settings,
    pool: AsyncConnectionPool,
    seats: Seats,
    *,
    seats_ready: rest.ReadinessCheck | None = None,
    grpc_server: GrpcServer | None = None,
    faults: Faults | None = None,
) -> Components:
    """Everything the service serves, around an open pool and an event service client."""
    metrics = Metrics()
    metrics.watch_pool(pool)
    outcomes = metrics.counter("bookings_total", "Create-booking requests by outcome.", ["outcome"])
    settled = metrics.counter("reconciler_settled_total", "Bookings settled by the reconciler, by result.", ["result"])
    repository = BookingRepository(pool)
    batch_sizes = metrics.histogram(
        "booking_write_batch_size", "Booking rows written per statement.", [], buckets=BATCH_BUCKETS
    )
    store = BatchedStore(repository, on_batch=batch_sizes.observe)
    tasks = DetachedTasks()
    service = BookingService(
        store,
        seats,
        settings.limits,
        tasks,
        retry_after=settings.retry_after,
        faults=faults,
        on_outcome=lambda outcome: outcomes.labels(outcome).inc(),
    )
    reconciler = Reconciler(
        repository,
        seats,
        min_age=settings.pending_timeout,
        interval=settings.reconcile_interval,
        on_settled=lambda result: settled.labels(result).inc(),
    )

    readiness: dict[str, rest.ReadinessCheck] = {"database": lambda: is_reachable(pool)}
    if seats_ready is not None:
        readiness["event_service"] = seats_ready
    http_app = Quart("booking_service")
    rest.install(
        http_app, errors=ERRORS, metrics=metrics, readiness=readiness, max_body_bytes=settings.server.max_body_bytes
    )
    http_app.register_blueprint(http_api.blueprint(service))

    grpc_server = grpc_server or GrpcServer([grpc_api.SERVICE_NAME])
    booking_service_pb2_grpc.add_BookingServiceServicer_to_server(
        grpc_api.servicer(service, metrics), grpc_server.server
    )
    return Components(store, service, reconciler, tasks, metrics, http_app, grpc_server)


async def migrate(settings: Settings) -> int:
    return await migrate_package(settings.database.conninfo(), "booking_service")


async def run(settings: Settings) -> None:
    """Serves until SIGTERM/SIGINT, then shuts down gracefully."""
    grpc_server = GrpcServer([grpc_api.SERVICE_NAME])
    servers = Servers(settings.server, grpc_server)
    pool = await open_pool(settings.database, name="booking_service")
    events = EventClient(settings.event_service)
    try:
        await migrate(settings)
        components = build(
            settings,
            pool,
            events,
            seats_ready=events.ready,
            grpc_server=grpc_server,
            faults=Faults.from_env(os.environ),
        )
    except BaseException:
        await events.close()
        await pool.close()
        raise
    reconciler = asyncio.create_task(components.reconciler.run_forever())
    log.info(
        "event service at %s; reconciler settles bookings unsettled for %s",
        settings.event_service.address,
        settings.pending_timeout,
    )

    async def stop() -> None:
        reconciler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reconciler
        await components.tasks.drain(settings.server.shutdown_grace)
        await components.store.close()
        await events.close()
        await pool.close()

    await servers.run(components.http_app, on_stop=stop)
