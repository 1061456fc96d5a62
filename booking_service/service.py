"""The booking service's use cases: primitives in, domain objects out.

Creating a booking is a small saga across two databases, run for a whole batch of concurrent
requests at once (`_create_batch`, the service's one batching layer):

1. record each request PENDING: one INSERT for the batch; a retry finds its key's booking;
2. reserve the seats of every PENDING booking: one ReserveSeatsBatch call, idempotent by
   booking id, each booking answered on its own;
3. settle each booking by its answer: one UPDATE for the batch, CONFIRMED (HELD for a hold,
   until its expire_time) or REJECTED.

A lone request is a batch of one and waits for nothing; under load, requests that arrive while
a batch runs form the next one. The batch runs in a task of its own, so a client that hangs up
cannot cancel it half-way; if the process dies in between, the reconciler settles the booking.

A hold is then confirmed (`confirm_booking`) or cancelled by its owner, or expired by the
hold sweeper (`holds`); the bookings of a cancelled event are cancelled by the
`event_cancellation` follower. Who may do what: every use case takes the caller; a booking
is its owner's and the admins' business, and does not exist for anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from booking_service.answers import (
    BookingNotFound,
    EventServiceUnavailable,
    IdempotencyKeyReused,
    NotConfirmable,
    check_cancellable,
    check_same_request,
    confirm_outcome,
    outcome,
)
from booking_service.domain import (
    Booking,
    BookingStatus,
    Limits,
    NewBooking,
    RejectReason,
    SeatAnswer,
    SeatsRejected,
    SeatsUnavailable,
    Settlement,
    bookings_owner,
    may_see,
    new_booking,
    parse_booking_id,
    settlement,
)
from service_runtime.auth.principal import Principal
from service_runtime.batching import Batcher, Failed
from service_runtime.faults import Faults
from service_runtime.tasks import DetachedTasks
from service_runtime.validation import decode_position, encode_position, page_size


class Store(Protocol):
    async def insert_pending(
        self, news: Sequence[NewBooking], user_limit: int, hold_ttl: timedelta
    ) -> list[Booking | Failed | None]: ...
    async def get_by_keys(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], Booking]: ...
    async def settle(self, settlements: Sequence[Settlement]) -> dict[uuid.UUID, Booking]: ...
    async def get(self, booking_id: uuid.UUID) -> Booking | None: ...
    async def confirm(self, booking_id: uuid.UUID) -> tuple[Booking | None, bool, bool]: ...
    async def transition(
        self, booking_id: uuid.UUID, frm: Sequence[BookingStatus], to: BookingStatus, reason: RejectReason | None = None
    ) -> Booking | None: ...
    async def list_for_user(
        self, user_id: str, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Booking]: ...


class Seats(Protocol):
    """The event service. Every method raises SeatsUnavailable when it cannot be reached."""

    async def reserve(self, bookings: Sequence[Booking]) -> list[SeatAnswer | SeatsRejected]: ...
    async def release(self, booking_id: uuid.UUID) -> SeatAnswer: ...
    async def lookup(self, booking_id: uuid.UUID) -> SeatAnswer: ...


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
        hold_ttl: timedelta = timedelta(minutes=10),
        faults: Faults | None = None,
        on_outcome: Callable[[str], None] = lambda outcome: None,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:
        self._store = store
        self._seats = seats
        self.limits = limits
        self._tasks = tasks
        self._retry_after = max(1, int(retry_after.total_seconds()))
        self._hold_ttl = hold_ttl
        self._faults = faults or Faults()
        self._on_outcome = on_outcome
        self._creates: Batcher[None, NewBooking, Booking] = Batcher(
            self._create_batch, max_batch=batching.max_batch, max_in_flight=batching.in_flight, on_batch=on_batch
        )

    async def create_booking(
        self, caller: Principal, event_id: str, user_id: str, seats: int, idempotency_key: str, hold: bool = False
    ) -> Booking:
        """Books the seats for `user_id` (the caller when empty; another user only for an
        admin); returns the CONFIRMED booking (HELD until its expire_time for a hold), or
        raises SoldOut, EventNotFound, SalesNotStarted, SalesEnded, EventCancelled,
        UserLimitReached, BookingAbandoned, IdempotencyKeyReused or EventServiceUnavailable.
        A retry with the same idempotency key gets the same answer without booking again."""
        new = new_booking(caller, event_id, user_id, seats, idempotency_key, self.limits, hold)
        try:
            booking = await self._creates.submit(None, new)
        except EventServiceUnavailable:
            self._on_outcome("UNAVAILABLE")
            raise
        self._on_outcome(booking.reject_reason.value if booking.reject_reason else booking.status.value)
        return outcome(booking, self.limits)

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
        inserted = await self._store.insert_pending(news, self.limits.max_seats_per_user_per_event, self._hold_ttl)
        taken = [(new.user_id, new.idempotency_key) for new, row in zip(news, inserted, strict=True) if row is None]
        existing = await self._store.get_by_keys([(user, key) for user, key in taken if key]) if taken else {}
        recorded: list[Booking | Failed] = []
        for new, row in zip(news, inserted, strict=True):
            if row is not None:
                recorded.append(row)
                continue
            assert new.idempotency_key is not None, "only a taken key leaves a request without its row"
            first = existing[(new.user_id, new.idempotency_key)]
            try:
                check_same_request(first, new)
                recorded.append(first)
            except IdempotencyKeyReused as error:
                recorded.append(Failed(error))
        return recorded

    async def _settle(
        self, pending: list[Booking], answers: list[SeatAnswer | SeatsRejected]
    ) -> dict[uuid.UUID, Booking | Failed]:
        """Step 3: each PENDING booking moved to what the event service answered for it."""
        finals: dict[uuid.UUID, Booking | Failed] = {}
        settlements: list[Settlement] = []
        for booking, answer in zip(pending, answers, strict=True):
            settled = None if isinstance(answer, SeatsRejected) else settlement(booking, answer)
            if settled is None:
                refusal = answer if isinstance(answer, SeatsRejected) else SeatsRejected(f"ReserveSeats: {answer}")
                finals[booking.id] = Failed(refusal)
            else:
                settlements.append(settled)
        moved = await self._store.settle(settlements) if settlements else {}
        for booking_id in (s.booking_id for s in settlements):
            # Not moved by us: a concurrent retry or the reconciler settled it first.
            finals[booking_id] = moved.get(booking_id) or await self._get(booking_id)
        return finals

    async def get_booking(self, caller: Principal, booking_id: str) -> Booking:
        """The booking, for its owner or an admin; BookingNotFound for anyone else."""
        return await self._visible(caller, parse_booking_id(booking_id))

    async def list_user_bookings(self, caller: Principal, user_id: str, size: int, token: str) -> BookingPage:
        """A user's bookings, newest first: `me` (or their own id) for any caller, anyone's
        for an admin."""
        user = bookings_owner(caller, user_id)
        limit = page_size("page_size", size)
        after = decode_position("page_token", token)
        bookings = await self._store.list_for_user(user, limit + 1, after)
        next_token = ""
        if len(bookings) > limit:
            bookings = bookings[:limit]
            next_token = encode_position(bookings[-1].create_time, bookings[-1].id)
        return BookingPage(bookings, next_token)

    async def confirm_booking(self, caller: Principal, booking_id: str) -> Booking:
        """HELD -> CONFIRMED while the hold runs (by the database's clock) and its event is not
        known cancelled; exactly one of this and the hold's expiry wins. A CONFIRMED booking is
        returned as it is (confirming is idempotent); else HoldExpired, EventCancelled or
        NotConfirmable. Its owner's or an admin's to do; BookingNotFound for anyone else,
        with nothing written."""
        booking = await self._visible(caller, parse_booking_id(booking_id))
        # Another round only when the booking became HELD between the update and the re-read.
        for _ in range(3):
            found, expired, event_cancelled = await self._store.confirm(booking.id)
            if found is None:
                raise BookingNotFound(booking.id)
            booking = found
            answer = confirm_outcome(booking, expired, event_cancelled)
            if answer is not None:
                return answer
        raise NotConfirmable(booking)

    async def cancel_booking(self, caller: Principal, booking_id: str) -> Booking:
        """CONFIRMED or HELD -> CANCELLING -> (seats given back) -> CANCELLED, exactly once
        however many cancels race; a CANCELLED, EXPIRING or EXPIRED booking is returned as it
        is (its seats are back, or on their way). Its owner's or an admin's to do;
        BookingNotFound for anyone else."""
        booking = await self._visible(caller, parse_booking_id(booking_id))
        return await self._tasks.run(self._cancel(booking.id))

    async def _cancel(self, booking_id: uuid.UUID) -> Booking:
        booking = await self._store.transition(
            booking_id, [BookingStatus.CONFIRMED, BookingStatus.HELD], BookingStatus.CANCELLING
        )
        if booking is None:
            booking = await self._get(booking_id)
            if booking.status in (BookingStatus.CANCELLED, BookingStatus.EXPIRING, BookingStatus.EXPIRED):
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

    async def _visible(self, caller: Principal, booking_id: uuid.UUID) -> Booking:
        booking = await self._store.get(booking_id)
        if booking is None or not may_see(caller, booking):
            # The same answer whether it does not exist or is someone else's: no leak.
            raise BookingNotFound(booking_id)
        return booking

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
