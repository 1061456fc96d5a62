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

A reservation refused for a reason of the event's (REFUSED with a refusal_reason, or a batch
entry's SALES_NOT_STARTED / SALES_ENDED / EVENT_CANCELLED error), or given back by the event's
cancellation (RELEASED with release_reason EVENT_CANCELLED), is a `Refused` answer: the
booking is rejected with that reason. `cancelled_events` follows ListCancelledEvents.

Waiting lists (`join_waitlist`, `leave_waitlist`, `user_waitlist`, `waitlist_offers`,
`acknowledge_offers`) have the same deadlines and retries (each of those calls is idempotent
or a read); a refusal is raised as `EventRefusal` with the event service's reason, message
and metadata, for the caller to pass on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from booking_service.domain import (
    Booking,
    Refused,
    RejectReason,
    SeatAnswer,
    SeatOutcome,
    SeatsRejected,
    SeatsUnavailable,
)
from booking_service.waitlist import EventRefusal, Joined, WaitlistEntry, WaitlistPage, WaitlistState
from service_runtime.auth.tls import ChannelTls
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
# Refusals for a reason of the event's: the booking is rejected with the same reason.
_EVENT_REFUSALS = {
    r.value: r for r in (RejectReason.SALES_NOT_STARTED, RejectReason.SALES_ENDED, RejectReason.EVENT_CANCELLED)
}
# What ListCancelledEvents is asked for per page.
_CANCELLED_PAGE = 100
_ENTRY_STATES = {
    pb.WaitlistEntry.WAITING: WaitlistState.WAITING,
    pb.WaitlistEntry.OFFERED: WaitlistState.OFFERED,
    pb.WaitlistEntry.LEFT: WaitlistState.LEFT,
    pb.WaitlistEntry.CLOSED: WaitlistState.CLOSED,
}


@dataclass(frozen=True)
class ClientSettings:
    address: str
    timeout: float = 2.0
    attempts: int = 3
    backoff: float = 0.05
    # Mutual TLS to the event service (EVENT_SERVICE_TLS_*): the event service takes seat
    # calls only from a peer whose client certificate it trusts.
    tls: ChannelTls | None = None


class EventClient:
    def __init__(self, settings: ClientSettings, on_batch_unsupported: Callable[[], None] = lambda: None) -> None:
        self._settings = settings
        options: list[tuple[str, Any]] = [
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            # Reconnect quickly after the event service restarts.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2_000),
        ]
        if settings.tls is None:
            self._channel = grpc.aio.insecure_channel(settings.address, options=options)
        else:
            self._channel = grpc.aio.secure_channel(
                settings.address, settings.tls.credentials(), options=options + settings.tls.options()
            )
        self._stub = pb_grpc.EventServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._has_batches = True
        # Public: the app points it at a metric once the metrics exist.
        self.on_batch_unsupported = on_batch_unsupported

    async def close(self) -> None:
        await self._channel.close()

    async def reserve(self, bookings: Sequence[Booking]) -> list[SeatAnswer | SeatsRejected]:
        """Takes each booking's seats; per booking, what the event service holds for it after
        the call. Retrying is safe for the same reason a single call is: every entry is
        idempotent by booking id. Raises SeatsUnavailable when no answer comes."""
        answers = await self._reserve(bookings)
        # A released id answers a replay with RESERVATION_RELEASED, which does not say who
        # released it: the record does (the event's cancellation, or the booking service).
        return [
            await self.lookup(b.id) if answer is SeatOutcome.RELEASED else answer
            for b, answer in zip(bookings, answers, strict=True)
        ]

    async def _reserve(self, bookings: Sequence[Booking]) -> list[SeatAnswer | SeatsRejected]:
        requests = [
            pb.ReserveSeatsRequest(booking_id=str(b.id), event_id=str(b.event_id), seats=b.seats) for b in bookings
        ]
        if self._has_batches:
            batch = pb.ReserveSeatsBatchRequest(requests=requests)
            try:
                reply = await self._call(
                    lambda t, ready: self._stub.ReserveSeatsBatch(batch, timeout=t, wait_for_ready=ready)
                )
                return [await self._result(result) for result in reply.results]
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise
                log.warning("the event service has no ReserveSeatsBatch: reserving with one call per booking")
                self._has_batches = False
                self.on_batch_unsupported()
        return list(await asyncio.gather(*(self._reserve_one(request) for request in requests)))

    async def _reserve_one(self, request: pb.ReserveSeatsRequest) -> SeatAnswer | SeatsRejected:
        try:
            reply = await self._call(lambda t, ready: self._stub.ReserveSeats(request, timeout=t, wait_for_ready=ready))
        except grpc.aio.AioRpcError as error:
            try:
                return self._refusal(error)
            except SeatsRejected as rejected:
                return rejected
        try:
            return await self._answer(reply)
        except SeatsRejected as rejected:
            return rejected

    async def _result(self, result: pb.ReserveSeatsResult) -> SeatAnswer | SeatsRejected:
        if result.HasField("reservation"):
            try:
                return await self._answer(result.reservation)
            except SeatsRejected as rejected:
                return rejected
        error = result.error
        if error.reason in _EVENT_REFUSALS:
            return Refused(_EVENT_REFUSALS[error.reason], dict(error.metadata))
        if error.reason in _REFUSALS:
            return _REFUSALS[error.reason]
        return SeatsRejected(f"event service refused: {error.reason}: {error.message}")

    async def _answer(self, reservation: pb.Reservation) -> SeatAnswer:
        """What a reservation record means for its booking."""
        if reservation.state == pb.Reservation.REFUSED:
            reason = _EVENT_REFUSALS.get(reservation.refusal_reason)
            if reason is None:
                raise SeatsRejected(f"reservation refused: {reservation.refusal_reason!r}")
            facts: dict[str, str] = {}
            if reason is RejectReason.SALES_NOT_STARTED:
                facts = await self._sales_start(reservation.event_id)
            return Refused(reason, facts)
        if reservation.state == pb.Reservation.RELEASED and reservation.release_reason == "EVENT_CANCELLED":
            return Refused(RejectReason.EVENT_CANCELLED)
        return _STATES[reservation.state]

    async def _sales_start(self, event_id: str) -> dict[str, str]:
        """The event's sales start, for a SALES_NOT_STARTED answer read back from a record
        (which does not carry it); nothing when the event cannot be read."""
        request = pb.GetEventRequest(event_id=event_id)
        try:
            event = await self._call(lambda t, ready: self._stub.GetEvent(request, timeout=t, wait_for_ready=ready))
        except grpc.aio.AioRpcError:
            return {}
        if not event.HasField("sales_start_time"):
            return {}
        return {"sales_start_time": event.sales_start_time.ToJsonString()}

    async def release(self, booking_id: uuid.UUID) -> SeatAnswer:
        request = pb.ReleaseSeatsRequest(booking_id=str(booking_id))
        try:
            reply = await self._call(lambda t, ready: self._stub.ReleaseSeats(request, timeout=t, wait_for_ready=ready))
        except grpc.aio.AioRpcError as error:
            return self._refusal(error)
        return await self._answer(reply)

    async def lookup(self, booking_id: uuid.UUID) -> SeatAnswer:
        request = pb.GetReservationRequest(booking_id=str(booking_id))
        try:
            reply = await self._call(
                lambda t, ready: self._stub.GetReservation(request, timeout=t, wait_for_ready=ready)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return SeatOutcome.NONE
            return self._refusal(error)
        return await self._answer(reply)

    async def cancelled_events(self, after: datetime | None) -> list[tuple[uuid.UUID, datetime]]:
        """(event id, cancel time) of every event cancelled at or after `after` (all when
        None), over all pages of ListCancelledEvents."""
        found: list[tuple[uuid.UUID, datetime]] = []
        token = ""
        while True:
            request = pb.ListCancelledEventsRequest(page_size=_CANCELLED_PAGE, page_token=token)
            if after is not None:
                request.cancelled_after.FromDatetime(after)
            page = await self._cancelled_page(request)
            found += [(uuid.UUID(e.id), e.cancel_time.ToDatetime(tzinfo=UTC)) for e in page.events]
            token = page.next_page_token
            if not token:
                return found

    async def join_waitlist(self, event_id: uuid.UUID, user_id: str, seats: int) -> Joined:
        """The user's entry on the event's waiting list: new (created), or the one they had.
        A retry after a lost answer finds the entry the first attempt made (created False)."""
        request = pb.JoinWaitlistRequest(event_id=str(event_id), user_id=user_id, seats=seats)
        reply = await self._waitlist_call(
            lambda t, ready: self._stub.JoinWaitlist(request, timeout=t, wait_for_ready=ready)
        )
        return Joined(_entry(reply.entry), reply.created)

    async def leave_waitlist(self, event_id: uuid.UUID, user_id: str) -> WaitlistEntry:
        request = pb.LeaveWaitlistRequest(event_id=str(event_id), user_id=user_id)
        reply = await self._waitlist_call(
            lambda t, ready: self._stub.LeaveWaitlist(request, timeout=t, wait_for_ready=ready)
        )
        return _entry(reply)

    async def user_waitlist(self, user_id: str, page_size: int, page_token: str) -> WaitlistPage:
        request = pb.ListUserWaitlistRequest(user_id=user_id, page_size=page_size, page_token=page_token)
        reply = await self._waitlist_call(
            lambda t, ready: self._stub.ListUserWaitlist(request, timeout=t, wait_for_ready=ready)
        )
        return WaitlistPage([_entry(e) for e in reply.entries], reply.next_page_token)

    async def waitlist_offers(self, limit: int) -> list[WaitlistEntry]:
        """Up to `limit` offers not acknowledged yet, oldest first."""
        request = pb.ListWaitlistOffersRequest(page_size=limit)
        reply = await self._waitlist_call(
            lambda t, ready: self._stub.ListWaitlistOffers(request, timeout=t, wait_for_ready=ready)
        )
        return [_entry(e) for e in reply.entries]

    async def acknowledge_offers(self, booking_ids: Sequence[uuid.UUID]) -> int:
        """Marks the offers as recorded; returns how many this call acknowledged."""
        request = pb.AcknowledgeWaitlistOffersRequest(booking_ids=[str(b) for b in booking_ids])
        reply = await self._waitlist_call(
            lambda t, ready: self._stub.AcknowledgeWaitlistOffers(request, timeout=t, wait_for_ready=ready)
        )
        return int(reply.acknowledged)

    async def _waitlist_call(self, call: Callable[[float, bool], Awaitable[T]]) -> T:
        """A waiting-list call: its refusals raised as EventRefusal, keeping what they said."""
        try:
            return await self._call(call)
        except grpc.aio.AioRpcError as error:
            info = error_info_of(error)
            if info is None:
                raise SeatsRejected(f"event service refused: {error.code().name}: {error.details()}") from error
            raise EventRefusal(info.reason, error.details() or "", dict(info.metadata)) from error

    async def ready(self, timeout: float = 1.0) -> bool:
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def _cancelled_page(self, request: pb.ListCancelledEventsRequest) -> pb.ListCancelledEventsResponse:
        try:
            return await self._call(
                lambda t, ready: self._stub.ListCancelledEvents(request, timeout=t, wait_for_ready=ready)
            )
        except grpc.aio.AioRpcError as error:
            raise SeatsUnavailable(f"ListCancelledEvents: {error.code().name}: {error.details()}") from error

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
    def _refusal(error: grpc.aio.AioRpcError) -> SeatAnswer:
        info = error_info_of(error)
        if info is not None and info.reason in _EVENT_REFUSALS:
            return Refused(_EVENT_REFUSALS[info.reason], dict(info.metadata))
        if info is not None and info.reason in _REFUSALS:
            return _REFUSALS[info.reason]
        raise SeatsRejected(f"event service refused: {error.code().name}: {error.details()}") from error


def _entry(entry: pb.WaitlistEntry) -> WaitlistEntry:
    return WaitlistEntry(
        id=uuid.UUID(entry.id),
        event_id=uuid.UUID(entry.event_id),
        user_id=entry.user_id,
        seats=entry.seats,
        state=_ENTRY_STATES[entry.state],
        position=entry.position,
        create_time=entry.create_time.ToDatetime(tzinfo=UTC),
        update_time=entry.update_time.ToDatetime(tzinfo=UTC),
        offer_time=entry.offer_time.ToDatetime(tzinfo=UTC) if entry.HasField("offer_time") else None,
        booking_id=uuid.UUID(entry.booking_id) if entry.booking_id else None,
    )
