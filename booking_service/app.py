"""Wiring of the booking service: one pool, the event service client, the use cases, the
periodic work (reconciler, hold sweeper, event-cancellation follower, waiting-list offer
follower, in every replica), the Quart app and the gRPC server.

The route of a booking: `http_api` (POST /bookings) or `grpc_api` (CreateBooking) ->
`BookingService.create_booking` -> its batch saga `_create_batch`: `BookingRepository`
(one INSERT) -> `EventClient.reserve` (one ReserveSeatsBatch call) -> `BookingRepository`
(one UPDATE).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from prometheus_client import Gauge
from psycopg_pool import AsyncConnectionPool
from quart import Quart

from booking_service import grpc_api, http_api
from booking_service.background import Background, Periodic
from booking_service.config import Settings
from booking_service.errors import ERRORS
from booking_service.event_cancellation import CancellationFollower
from booking_service.event_client import EventClient
from booking_service.holds import HoldSweeper
from booking_service.reconciler import Reconciler
from booking_service.repository import BookingRepository
from booking_service.service import BookingService
from booking_service.sweep_repository import SweepRepository
from booking_service.waitlist_offers import OfferFollower
from booking_service.waitlist_repository import WaitlistRepository
from booking_service.waitlist_service import WaitlistService
from service_runtime.auth.access import Access
from service_runtime.edges import BATCH_BUCKETS, edges
from service_runtime.faults import Faults
from service_runtime.grpc_server import GrpcServer
from service_runtime.metrics import Metrics
from service_runtime.migrations import migrate_package
from service_runtime.serve import Started, serve_service
from service_runtime.tasks import DetachedTasks
from ticketflow.booking.v1 import booking_service_pb2_grpc

log = logging.getLogger(__name__)


@dataclass
class Components:
    service: BookingService
    reconciler: Reconciler
    hold_sweeper: HoldSweeper
    follower: CancellationFollower
    waitlists: WaitlistService
    offers: OfferFollower
    # The reconciler, the sweeper and the two followers, each every its interval; started and
    # stopped with the service.
    background: Background
    tasks: DetachedTasks
    metrics: Metrics
    http_app: Quart
    grpc_server: GrpcServer


def build(
    settings: Settings,
    pool: AsyncConnectionPool,
    events: EventClient,
    access: Access,
    grpc_server: GrpcServer | None = None,
) -> Components:
    """Everything the service serves, around an open pool and an event service client."""
    edge = edges(
        "booking_service",
        server=settings.server,
        errors=ERRORS,
        pool=pool,
        grpc_services=[grpc_api.SERVICE_NAME],
        readiness={"event_service": events.ready},
        grpc_server=grpc_server,
    )
    metrics = edge.metrics
    outcomes = metrics.counter("bookings_total", "Create-booking requests by outcome.", ["outcome"])
    settled = metrics.counter("reconciler_settled_total", "Bookings settled by the reconciler, by result.", ["result"])
    batch_sizes = metrics.histogram(
        "booking_batch_size",
        "Create-booking requests per batch (one INSERT, one reservation call).",
        [],
        buckets=BATCH_BUCKETS,
    )
    unsupported = metrics.counter(
        "event_service_batch_unsupported", "The event service answered ReserveSeatsBatch with UNIMPLEMENTED.", []
    )
    events.on_batch_unsupported = unsupported.inc
    expired = metrics.counter("holds_expired_total", "Holds that ran out and gave their seats back.", [])
    expiry_lag = metrics.histogram(
        "hold_expiry_lag_seconds",
        "How long after its expire_time a hold was taken for expiry (how far behind the sweeper is).",
        [],
    )
    cancelled_by_event = metrics.counter(
        "event_cancellation_bookings_total", "Bookings cancelled because their event was cancelled.", []
    )
    open_cancellations = Gauge(
        "event_cancellations_open",
        "Cancelled events whose bookings are not all cancelled yet (after the last round).",
        registry=metrics.registry,
    )
    repository = BookingRepository(pool)
    sweeps = SweepRepository(pool)
    faults = Faults(settings.fault_points)
    tasks = DetachedTasks()
    service = BookingService(
        repository,
        events,
        settings.limits,
        tasks,
        batching=settings.batching,
        retry_after=settings.retry_after,
        hold_ttl=settings.hold_ttl,
        faults=faults,
        on_outcome=lambda outcome: outcomes.labels(outcome).inc(),
        on_batch=batch_sizes.observe,
    )

    def on_settled(result: str) -> None:
        settled.labels(result).inc()
        if result == "EXPIRED":  # a hold the sweeper left EXPIRING
            expired.inc()

    reconciler = Reconciler(
        repository,
        events,
        min_age=settings.pending_timeout,
        interval=settings.reconcile_interval,
        on_settled=on_settled,
    )

    hold_sweeper = HoldSweeper(sweeps, events, on_expired=expired.inc, on_lag=expiry_lag.observe)
    follower = CancellationFollower(
        sweeps, events, faults=faults, on_cancelled=cancelled_by_event.inc, on_open=open_cancellations.set
    )
    offers_recorded = metrics.counter(
        "waitlist_offers_recorded_total",
        "Waiting-list offers recorded as bookings, by outcome (HELD, REJECTED, CANCELLED).",
        ["outcome"],
    )
    offer_lag = metrics.histogram(
        "waitlist_offer_lag_seconds",
        "How long after the event service made an offer it was recorded as a booking.",
        [],
        # An offer waits about one WAITLIST_POLL_SECONDS; minutes mean the event service was away.
        buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
    )
    waitlist_store = WaitlistRepository(pool)
    waitlists = WaitlistService(waitlist_store, events, settings.limits, retry_after=settings.retry_after)
    offers = OfferFollower(
        waitlist_store,
        events,
        user_limit=settings.limits.max_seats_per_user_per_event,
        ttl=settings.waitlist_offer_ttl,
        faults=faults,
        on_recorded=lambda outcome: offers_recorded.labels(outcome).inc(),
        on_lag=offer_lag.observe,
    )
    background = Background(
        [
            Periodic("reconciler", reconciler.run_once, settings.reconcile_interval.total_seconds()),
            Periodic("hold sweeper", hold_sweeper.tick, settings.hold_sweep_interval.total_seconds()),
            Periodic("event cancellation", follower.run_once, settings.event_cancellation_poll.total_seconds()),
            Periodic("waitlist offers", offers.run_once, settings.waitlist_poll.total_seconds()),
        ]
    )
    edge.http_app.register_blueprint(http_api.blueprint(service, waitlists, access))
    booking_service_pb2_grpc.add_BookingServiceServicer_to_server(
        grpc_api.servicer(service, waitlists, access, metrics), edge.grpc_server.server
    )
    return Components(
        service=service,
        reconciler=reconciler,
        hold_sweeper=hold_sweeper,
        follower=follower,
        waitlists=waitlists,
        offers=offers,
        background=background,
        tasks=tasks,
        metrics=metrics,
        http_app=edge.http_app,
        grpc_server=edge.grpc_server,
    )


async def migrate(settings: Settings) -> int:
    return await migrate_package(settings.database.conninfo(), "booking_service")


async def run(settings: Settings) -> None:
    """Serves until SIGTERM/SIGINT, then shuts down gracefully."""

    async def start(access: Access, pool: AsyncConnectionPool, grpc_server: GrpcServer) -> Started:
        events = EventClient(settings.event_service)
        try:
            await migrate(settings)
            components = build(settings, pool, events, access, grpc_server)
        except BaseException:
            await events.close()
            raise
        components.background.start()
        log.info(
            "event service at %s; reconciler settles bookings unsettled for %s; holds last %s",
            settings.event_service.address,
            settings.pending_timeout,
            settings.hold_ttl,
        )

        async def stop() -> None:
            await components.background.stop()
            await components.hold_sweeper.close()
            await components.service.close(settings.server.shutdown_grace)
            await events.close()

        return Started(components.http_app, stop)

    # The signing keys are configuration: load them before binding ports or connecting to the
    # database, so that a bad AUTH_JWKS_FILE/URL is the one start-up line and nothing else.
    async with Access.running(settings.auth) as access:
        await serve_service(
            "booking_service",
            settings.server,
            settings.database,
            [grpc_api.SERVICE_NAME],
            functools.partial(start, access),
            settings.grpc_tls.credentials() if settings.grpc_tls else None,
        )
