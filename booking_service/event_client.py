"""The event service, as the booking service sees it: seats reserved and released by booking id.

Every call has a deadline. Calls that fail in a way that may not have reached the event
service, or may have reached it without an answer coming back (UNAVAILABLE,
DEADLINE_EXCEEDED), are retried a bounded number of times with backoff: that is safe because
the event service is idempotent by booking id. When the retries are spent, `SeatsUnavailable`
is raised and the booking stays PENDING for the reconciler.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from booking_service.domain import SeatOutcome, SeatsUnavailable
from service_runtime.batching import Batcher, Failed
from service_runtime.error_table import error_info_of
from ticketflow.event.v1 import event_service_pb2 as pb
from ticketflow.event.v1 import event_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

T = TypeVar("T")

_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
_STATES = {
    pb.Reservation.RESERVED: SeatOutcome.RESERVED,
    pb.Reservation.RELEASED: SeatOutcome.RELEASED,
    pb.Reservation.SOLD_OUT: SeatOutcome.SOLD_OUT,
}
_REFUSALS = {
    "SOLD_OUT": SeatOutcome.SOLD_OUT,
    "EVENT_NOT_FOUND": SeatOutcome.EVENT_NOT_FOUND,
    "RESERVATION_RELEASED": SeatOutcome.RELEASED,
}


class SeatsRejected(Exception):
    """The event service refused a request in a way the booking service never causes
    (for example BOOKING_ID_REUSED, or a seat count above its own limit)."""


@dataclass(frozen=True)
class ClientSettings:
    address: str
    timeout: float = 2.0
    attempts: int = 3
    backoff: float = 0.05
    # Send concurrent reservations together (ReserveSeatsBatch) instead of one call each.
    batching: bool = True
    max_batch: int = 256
    # ReserveSeatsBatch calls that may be in flight at once (each entry is independent).
    batches_in_flight: int = 2


class EventClient:
    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._channel = grpc.aio.insecure_channel(
            settings.address,
            options=[
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.keepalive_timeout_ms", 10_000),
                # Reconnect quickly after the event service restarts.
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 2_000),
            ],
        )
        self._stub = pb_grpc.EventServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._batching = settings.batching
        self._reservations: Batcher[None, pb.ReserveSeatsRequest, SeatOutcome] = Batcher(
            self._reserve_batch, max_batch=settings.max_batch, max_in_flight=settings.batches_in_flight
        )

    async def close(self) -> None:
        await self._channel.close()

    async def reserve(self, booking_id: uuid.UUID, event_id: uuid.UUID, seats: int) -> SeatOutcome:
        request = pb.ReserveSeatsRequest(booking_id=str(booking_id), event_id=str(event_id), seats=seats)
        if self._batching:
            return await self._reservations.submit(None, request)
        return await self._reserve_one(request)

    async def _reserve_one(self, request: pb.ReserveSeatsRequest) -> SeatOutcome:
        try:
            reply = await self._call(lambda t, ready: self._stub.ReserveSeats(request, timeout=t, wait_for_ready=ready))
        except grpc.aio.AioRpcError as error:
            return self._refusal(error)
        return _STATES[reply.state]

    async def _reserve_batch(self, _: None, requests: list[pb.ReserveSeatsRequest]) -> list[SeatOutcome | Failed]:
        """One ReserveSeatsBatch call for the reservations queued meanwhile. Retrying the whole
        batch is safe for the same reason a single call is: every entry is idempotent."""
        batch = pb.ReserveSeatsBatchRequest(requests=requests)
        try:
            reply = await self._call(
                lambda t, ready: self._stub.ReserveSeatsBatch(batch, timeout=t, wait_for_ready=ready)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            # An event service from before ReserveSeatsBatch: call it one reservation at a time.
            log.warning("event service has no ReserveSeatsBatch; reserving one call at a time")
            self._batching = False
            return list(await asyncio.gather(*(self._reserve_one(r) for r in requests)))
        return [self._result(result) for result in reply.results]

    @staticmethod
    def _result(result: pb.ReserveSeatsResult) -> SeatOutcome | Failed:
        if result.HasField("reservation"):
            return _STATES[result.reservation.state]
        if result.error.reason in _REFUSALS:
            return _REFUSALS[result.error.reason]
        return Failed(SeatsRejected(f"event service refused: {result.error.reason}: {result.error.message}"))

    async def release(self, booking_id: uuid.UUID) -> SeatOutcome:
        request = pb.ReleaseSeatsRequest(booking_id=str(booking_id))
        try:
            reply = await self._call(lambda t, ready: self._stub.ReleaseSeats(request, timeout=t, wait_for_ready=ready))
        except grpc.aio.AioRpcError as error:
            return self._refusal(error)
        return _STATES[reply.state]

    async def lookup(self, booking_id: uuid.UUID) -> SeatOutcome:
        request = pb.GetReservationRequest(booking_id=str(booking_id))
        try:
            reply = await self._call(
                lambda t, ready: self._stub.GetReservation(request, timeout=t, wait_for_ready=ready)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return SeatOutcome.NONE
            return self._refusal(error)
        return _STATES[reply.state]

    async def ready(self, timeout: float = 1.0) -> bool:
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def _call(self, call: Callable[[float, bool], Awaitable[T]]) -> T:
        """`call(timeout, wait_for_ready)` with retries. The first attempt fails fast when the
        channel is down; retries wait (within their deadline) for it to reconnect, so that
        an event service that just came back is not missed during the channel's backoff."""
        settings = self._settings
        for attempt in range(1, settings.attempts + 1):
            try:
                return await call(settings.timeout, attempt > 1)
            except grpc.aio.AioRpcError as error:
                if error.code() not in _RETRYABLE:
                    raise
                if attempt == settings.attempts:
                    log.warning("event service unavailable after %d attempts: %s", attempt, error.code().name)
                    raise SeatsUnavailable(f"{error.code().name}: {error.details()}") from error
                # Full jitter keeps retries from many requests from arriving in lockstep.
                await asyncio.sleep(random.uniform(0, settings.backoff * 2**attempt))
        raise AssertionError("unreachable")

    @staticmethod
    def _refusal(error: grpc.aio.AioRpcError) -> SeatOutcome:
        info = error_info_of(error)
        if info is not None and info.reason in _REFUSALS:
            return _REFUSALS[info.reason]
        raise SeatsRejected(f"event service refused: {error.code().name}: {error.details()}") from error
