"""Wiring of the event service: one pool, the use cases, the Quart app and the gRPC server.

The route of a reservation: `grpc_api` (ReserveSeats, ReserveSeatsBatch) -> `EventService`
(validates each call) -> the `ReserveMany` port wired here: the `ReservationCoalescer`
(RESERVATION_BATCHING=true, the default: concurrent calls share one transaction) or straight
`EventRepository.reserve_batch` (a transaction per call) -> SQL.

Waiting lists: `grpc_api` / `http_api` -> `WaitlistService` -> `WaitlistRepository`; the offers
are made inside the repositories' transactions (release, update, join), which report them here
for the metrics.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool
from quart import Quart

from event_service import grpc_api, http_api
from event_service.coalescer import ReservationCoalescer
from event_service.config import Settings
from event_service.errors import ERRORS
from event_service.repository import EventRepository
from event_service.service import EventService, ReserveMany, Tally
from event_service.waitlist import WaitlistEntry
from event_service.waitlist_repository import WaitlistRepository
from event_service.waitlist_service import WaitlistService, WaitlistTally
from service_runtime.auth.access import Access, SeatCallers
from service_runtime.edges import BATCH_BUCKETS, edges
from service_runtime.grpc_server import GrpcServer
from service_runtime.metrics import Metrics
from service_runtime.migrations import migrate_package
from service_runtime.serve import Started, serve_service
from ticketflow.event.v1 import event_service_pb2_grpc


@dataclass
class Components:
    service: EventService
    metrics: Metrics
    http_app: Quart
    grpc_server: GrpcServer
    coalescer: ReservationCoalescer | None


def build(
    settings: Settings, pool: AsyncConnectionPool, access: Access, grpc_server: GrpcServer | None = None
) -> Components:
    """Everything the service serves, around an open pool (tests call this too)."""
    edge = edges(
        "event_service",
        server=settings.server,
        errors=ERRORS,
        pool=pool,
        grpc_services=[grpc_api.SERVICE_NAME],
        grpc_server=grpc_server,
    )
    offers = edge.metrics.counter("waitlist_offers_total", "Waiting-list entries offered seats.", [])
    offered_seats = edge.metrics.counter("waitlist_offered_seats_total", "Seats offered to waiting lists.", [])

    def count_offers(made: list[WaitlistEntry]) -> None:
        offers.inc(len(made))
        offered_seats.inc(sum(entry.seats for entry in made))

    repository = EventRepository(pool, count_offers)
    coalescer = None
    reserve_many: ReserveMany = repository.reserve_batch
    if settings.batching:
        batch_sizes = edge.metrics.histogram(
            "reservation_batch_size", "ReserveSeats calls decided per transaction.", [], buckets=BATCH_BUCKETS
        )
        coalescer = ReservationCoalescer(repository.reserve_batch, settings.max_batch, on_batch=batch_sizes.observe)
        reserve_many = coalescer.reserve_many
    refused = edge.metrics.counter(
        "reservations_refused_total",
        "Reservations refused because the event was not on sale (replays included), by reason.",
        ["reason"],
    )
    cancelled = edge.metrics.counter("events_cancelled_total", "Events cancelled.", [])
    tally = Tally(refused=lambda reason: refused.labels(reason).inc(), cancelled=cancelled.inc)
    service = EventService(repository, settings.limits, reserve_many, tally)
    joins = edge.metrics.counter("waitlist_joins_total", "Users put on a waiting list (repeats not counted).", [])
    leaves = edge.metrics.counter("waitlist_leaves_total", "Users who left a waiting list while WAITING.", [])
    waitlist = WaitlistService(
        WaitlistRepository(pool, count_offers), settings.limits, WaitlistTally(joined=joins.inc, left=leaves.inc)
    )

    edge.http_app.register_blueprint(http_api.blueprint(service, waitlist, access))
    seat_callers = SeatCallers(settings.seat_callers)
    event_service_pb2_grpc.add_EventServiceServicer_to_server(
        grpc_api.servicer(service, waitlist, access, seat_callers, edge.metrics), edge.grpc_server.server
    )
    return Components(service, edge.metrics, edge.http_app, edge.grpc_server, coalescer)


async def migrate(settings: Settings) -> int:
    return await migrate_package(settings.database.conninfo(), "event_service")


async def run(settings: Settings) -> None:
    """Serves until SIGTERM/SIGINT, then shuts down gracefully."""

    async def start(access: Access, pool: AsyncConnectionPool, grpc_server: GrpcServer) -> Started:
        await migrate(settings)
        components = build(settings, pool, access, grpc_server)

        async def stop() -> None:
            if components.coalescer is not None:
                await components.coalescer.close()

        return Started(components.http_app, stop)

    # The signing keys are configuration: load them before binding ports or connecting to the
    # database, so that a bad AUTH_JWKS_FILE/URL is the one start-up line and nothing else.
    async with Access.running(settings.auth) as access:
        await serve_service(
            "event_service",
            settings.server,
            settings.database,
            [grpc_api.SERVICE_NAME],
            functools.partial(start, access),
            settings.grpc_tls.credentials() if settings.grpc_tls else None,
        )
