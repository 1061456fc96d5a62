"""The booking service's use cases: primitives in, domain objects out.

Creating a booking is a small saga across two databases, run for a whole batch of concurrent
requests at once (`_create_batch`, the service's one batching layer):

1. record each request PENDING: one INSERT for the batch; a retry finds its key's booking;
2. reserve the seats of every PENDING booking: one ReserveSeatsBatch call, idempotent by
   booking id, each booking answered on its own;
3. settle each booking by its answer: one UPDATE for the batch, CONFIRMED or REJECTED.

A lone request is a batch of one and waits for nothing; under load, requests that arrive while
a batch runs form the next one. The batch runs in a task of its own, so a client that hangs up
cannot cancel it half-way; if the process dies in between, the reconciler settles the booking.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from booking_service.domain import (
    Booking,
    BookingNotFound,
    BookingStatus,
    EventServiceUnavailable,
    IdempotencyKeyReused,
    Limits,
    NewBooking,
    RejectReason,
    SeatOutcome,
    SeatsRejected,
    SeatsUnavailable,
    Settlement,
    check_cancellable,
    check_same_request,
    new_booking,
    outcome,
    parse_booking_id,
    settled_status,
)
from service_runtime.batching import Batcher, Failed
from service_runtime.faults import Faults
from service_runtime.tasks import DetachedTasks
from service_runtime.validation import check_text, decode_position, encode_position, page_size


class Store(Protocol):
    async def insert_pending(self, news: Sequence[NewBooking]) -> list[Booking | Failed | None]: ...
    async def get_by_keys(self, keys: Collection[str]) -> dict[str, Booking]: ...
    async def settle(self, settlements: Sequence[Settlement]) -> dict[uuid.UUID, Booking]: ...
    async def get(self, booking_id: uuid.UUID) -> Booking | None: ...
    async def transition(
        self, booking_id: uuid.UUID, frm: Sequence[BookingStatus], to: BookingStatus, reason: RejectReason | None = None
    ) -> Booking | None: ...
    async def list_for_user(
        self, user_id: str, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Booking]: ...


class Seats(Protocol):
    """The event service. Every method raises SeatsUnavailable when it cannot be reached."""

    async def reserve(self, bookings: Sequence[Booking]) -> list[SeatOutcome | SeatsRejected]: ...
    async def release(self, booking_id: uuid.UUID) -> SeatOutcome: ...
    async def lookup(self, booking_id: uuid.UUID) -> SeatOutcome: ...


@dataclass(frozen=True)
class Batching:
    """How many create requests one batch takes (1: no batching), and how many batches may be
    in flight at once (a batch waiting on the event service need not hold up the next INSERT)."""

    max_batch: int = 256
    in_flight: int = 2


@dataclass(frozen=True)
class BookingPage:
    bookings: list[Booking]
    next_page_token: str


class BookingService:
    def __init__(
        self,
        store: Store,
        seats: Seats,
        limits: Limits,
        tasks: DetachedTasks,
        *,
        batching: Batching = Batching(),
        retry_after: timedelta = timedelta(seconds=5),
        faults: Faults | None = None,
        on_outcome: Callable[[str], None] = lambda outcome: None,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:
        self._store = store
        self._seats = seats
        self.limits = limits
        self._tasks = tasks
        self._retry_after = max(1, int(retry_after.total_seconds()))
        self._faults = faults or Faults()
        self._on_outcome = on_outcome
        self._creates: Batcher[None, NewBooking, Booking] = Batcher(
            self._create_batch, max_batch=batching.max_batch, max_in_flight=batching.in_flight, on_batch=on_batch
        )

    async def create_booking(self, event_id: str, user_id: str, seats: int, idempotency_key: str) -> Booking:
        """Books the seats; returns the CONFIRMED booking, or raises SoldOut, EventNotFound,
        BookingAbandoned, IdempotencyKeyReused or EventServiceUnavailable. A retry with the
        same idempotency key gets the same answer without booking again."""
        new = new_booking(event_id, user_id, seats, idempotency_key, self.limits)
        try:
            booking = await self._creates.submit(None, new)
        except EventServiceUnavailable:
            self._on_outcome("UNAVAILABLE")
            raise
        self._on_outcome(booking.reject_reason.value if booking.reject_reason else booking.status.value)
        return outcome(booking)

    async def _create_batch(self, _: None, news: list[NewBooking]) -> list[Booking | Failed]:
        """The saga (see the module docstring) for a batch of requests; per request, its
        booking as it stands at the end, or the error that fails only that request."""
        recorded = await self._record(news)
        # A booking asked for twice in one batch (concurrent retries) is reserved once.
        pending = list(
            {b.id: b for b in recorded if isinstance(b, Booking) and b.status is BookingStatus.PENDING}.values()
        )
        if not pending:
            return recorded
        try:
            answers = await self._seats.reserve(pending)
        except SeatsUnavailable:
            unavailable = {b.id: Failed(EventServiceUnavailable(b.id, self._retry_after)) for b in pending}
            return [_final(item, unavailable) for item in recorded]
        self._faults.point("after_reserve")
        settled = await self._settle(pending, answers)
        return [_final(item, settled) for item in recorded]

    async def _record(self, news: list[NewBooking]) -> list[Booking | Failed]:
        """Step 1: each request's booking, new (PENDING) or, for a retried idempotency key,
        the one recorded first (whatever its status), provided the retry repeats its request."""
        inserted = await self._store.insert_pending(news)
        taken = [new.idempotency_key for new, row in zip(news, inserted, strict=True) if row is None]
        existing = await self._store.get_by_keys([key for key in taken if key]) if taken else {}
        recorded: list[Booking | Failed] = []
        for new, row in zip(news, inserted, strict=True):
            if row is not None:
                recorded.append(row)
                continue
            assert new.idempotency_key is not None, "only a taken key leaves a request without its row"
            first = existing[new.idempotency_key]
            try:
                check_same_request(first, new)
                recorded.append(first)
            except IdempotencyKeyReused as error:
                recorded.append(Failed(error))
        return recorded

    async def _settle(
        self, pending: list[Booking], answers: list[SeatOutcome | SeatsRejected]
    ) -> dict[uuid.UUID, Booking | Failed]:
        """Step 3: each PENDING booking moved to what the event service answered for it."""
        finals: dict[uuid.UUID, Booking | Failed] = {}
        settlements: list[Settlement] = []
        for booking, answer in zip(pending, answers, strict=True):
            settled = None if isinstance(answer, SeatsRejected) else settled_status(answer)
            if settled is None:
                refusal = answer if isinstance(answer, SeatsRejected) else SeatsRejected(f"ReserveSeats: {answer}")
                finals[booking.id] = Failed(refusal)
            else:
                settlements.append((booking.id, *settled))
        moved = await self._store.settle(settlements) if settlements else {}
        for booking_id, _, _ in settlements:
            # Not moved by us: a concurrent retry or the reconciler settled it first.
            finals[booking_id] = moved.get(booking_id) or await self._get(booking_id)
        return finals

    async def get_booking(self, booking_id: str) -> Booking:
        return await self._get(parse_booking_id(booking_id))

    async def list_user_bookings(self, user_id: str, size: int, token: str) -> BookingPage:
        check_text("user_id", user_id, max_length=64)
        limit = page_size("page_size", size)
        after = decode_position("page_token", token)
        bookings = await self._store.list_for_user(user_id, limit + 1, after)
        next_token = ""
        if len(bookings) > limit:
            bookings = bookings[:limit]
            next_token = encode_position(bookings[-1].create_time, bookings[-1].id)
        return BookingPage(bookings, next_token)

    async def cancel_booking(self, booking_id: str) -> Booking:
        """CONFIRMED -> CANCELLING -> (seats given back) -> CANCELLED, exactly once however
        many cancels race; a cancelled booking is returned as it is."""
        parsed = parse_booking_id(booking_id)
        return await self._tasks.run(self._cancel(parsed))

    async def _cancel(self, booking_id: uuid.UUID) -> Booking:
        booking = await self._store.transition(booking_id, [BookingStatus.CONFIRMED], BookingStatus.CANCELLING)
        if booking is None:
            booking = await self._get(booking_id)
            if booking.status is BookingStatus.CANCELLED:
                return booking
            check_cancellable(booking)
        # CANCELLING: ours, or one a concurrent cancel (or a crash) left half-way.
        self._faults.point("cancel_before_release")
        try:
            await self._seats.release(booking.id)
        except SeatsUnavailable:
            raise EventServiceUnavailable(booking.id, self._retry_after) from None
        done = await self._store.transition(booking.id, [BookingStatus.CANCELLING], BookingStatus.CANCELLED)
        return done or await self._get(booking.id)

    async def close(self, grace: float) -> None:
        """At shutdown, once no requests come in: lets the create batches and cancellations in
        flight finish, for up to `grace` seconds each (what is cut off, the reconciler settles)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._creates.close(), grace)
        await self._tasks.drain(grace)

    async def _get(self, booking_id: uuid.UUID) -> Booking:
        booking = await self._store.get(booking_id)
        if booking is None:
            raise BookingNotFound(booking_id)
        return booking


def _final(item: Booking | Failed, settled: Mapping[uuid.UUID, Booking | Failed]) -> Booking | Failed:
    """A request's answer: its booking as this batch settled it, or as it was recorded."""
    if isinstance(item, Booking):
        return settled.get(item.id, item)
    return item
