"""The event service, as the booking service sees it: seats reserved and released by booking id.

`reserve(bookings)` takes the seats of many bookings in one ReserveSeatsBatch call, each
entry answered on its own. An event service without that method (UNIMPLEMENTED, from before
it existed) is said once in the log and in the `event_service_batch_unsupported` metric, and
is then called one ReserveSeats per booking.

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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from booking_service.domain import Booking, SeatOutcome, SeatsRejected, SeatsUnavailable
from service_runtime.error_table import error_info_of
from ticketflow.event.v1 import event_service_pb2 as pb
from ticketflow.event.v1 import event_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

T = TypeVar("T")

_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
# The event service failed on its side (its database is down, say): no answer to act on, and
# retrying at once would not help; the booking waits, as for an unreachable event service.
_FAILED = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.RESOURCE_EXHAUSTED}
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


@dataclass(frozen=True)
class ClientSettings:
    address: str
    timeout: float = 2.0
    attempts: int = 3
    backoff: float = 0.05


class EventClient:
    def __init__(self, settings: ClientSettings, on_batch_unsupported: Callable[[], None] = lambda: None) -> None:
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
        self._has_batches = True
        # Public: the app points it at a metric once the metrics exist.
        self.on_batch_unsupported = on_batch_unsupported

    async def close(self) -> None:
        await self._channel.close()

    async def reserve(self, bookings: Sequence[Booking]) -> list[SeatOutcome | SeatsRejected]:
        """Takes each booking's seats; per booking, what the event service holds for it after
        the call. Retrying is safe for the same reason a single call is: every entry is
        idempotent by booking id. Raises SeatsUnavailable when no answer comes."""
        requests = [
            pb.ReserveSeatsRequest(booking_id=str(b.id), event_id=str(b.event_id), seats=b.seats) for b in bookings
        ]
        if self._has_batches:
            batch = pb.ReserveSeatsBatchRequest(requests=requests)
            try:
                reply = await self._call(
                    lambda t, ready: self._stub.ReserveSeatsBatch(batch, timeout=t, wait_for_ready=ready)
                )
                return [self._result(result) for result in reply.results]
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise
                log.warning("the event service has no ReserveSeatsBatch: reserving with one call per booking")
                self._has_batches = False
                self.on_batch_unsupported()
        return list(await asyncio.gather(*(self._reserve_one(request) for request in requests)))

    async def _reserve_one(self, request: pb.ReserveSeatsRequest) -> SeatOutcome | SeatsRejected:
        try:
            reply = await self._call(lambda t, ready: self._stub.ReserveSeats(request, timeout=t, wait_for_ready=ready))
        except grpc.aio.AioRpcError as error:
            try:
                return self._refusal(error)
            except SeatsRejected as rejected:
                return rejected
        return _STATES[reply.state]

    @staticmethod
    def _result(result: pb.ReserveSeatsResult) -> SeatOutcome | SeatsRejected:
        if result.HasField("reservation"):
            return _STATES[result.reservation.state]
        if result.error.reason in _REFUSALS:
            return _REFUSALS[result.error.reason]
        return SeatsRejected(f"event service refused: {result.error.reason}: {result.error.message}")

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
                if error.code() in _FAILED:
                    log.warning("event service failed: %s: %s", error.code().name, error.details())
                    raise SeatsUnavailable(f"{error.code().name}: {error.details()}") from error
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
