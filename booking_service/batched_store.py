"""The booking repository with its two hot writes batched across concurrent requests.

Every booking costs two writes: the PENDING row, then its settlement. Under load they are
coalesced (`service_runtime.batching`) into one multi-row statement each, one round trip and
one commit for a whole batch, with the same per-booking semantics as the single-row
statements: a taken idempotency key inserts nothing, a booking settles only while PENDING.
If a batch fails for a reason that belongs to one row (a constraint), it is redone row by
row, so only that row's request fails.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import psycopg

from booking_service.domain import Booking, BookingStatus, NewBooking, RejectReason
from booking_service.repository import BookingRepository
from service_runtime.batching import Batcher, Failed

log = logging.getLogger(__name__)

Settlement = tuple[uuid.UUID, BookingStatus, RejectReason | None]

# Errors of one row (or of two concurrent batches meeting): redo the batch row by row.
_ROW_ERRORS = (psycopg.errors.IntegrityError, psycopg.errors.DataError, psycopg.errors.DeadlockDetected)


class BatchedStore:
    def __init__(
        self,
        repository: BookingRepository,
        max_batch: int = 256,
        in_flight: int = 2,
        on_batch: Callable[[int], None] = lambda n: None,
    ) -> None:
        """`in_flight` batches of each kind may run at once: rows of different bookings are
        independent, so a batch need not wait for the previous one to commit."""
        self._repository = repository
        self._inserts: Batcher[None, NewBooking, Booking | None] = Batcher(
            self._insert_batch, max_batch=max_batch, max_in_flight=in_flight, on_batch=on_batch
        )
        self._settlements: Batcher[None, Settlement, Booking | None] = Batcher(
            self._settle_batch, max_batch=max_batch, max_in_flight=in_flight, on_batch=on_batch
        )

    async def insert_pending(self, new: NewBooking) -> Booking | None:
        return await self._inserts.submit(None, new)

    async def transition(
        self,
        booking_id: uuid.UUID,
        frm: Sequence[BookingStatus],
        to: BookingStatus,
        reason: RejectReason | None = None,
    ) -> Booking | None:
        if list(frm) == [BookingStatus.PENDING]:
            return await self._settlements.submit(None, (booking_id, to, reason))
        return await self._repository.transition(booking_id, frm, to, reason)

    async def get(self, booking_id: uuid.UUID) -> Booking | None:
        return await self._repository.get(booking_id)

    async def get_by_key(self, key: str) -> Booking | None:
        return await self._repository.get_by_key(key)

    async def list_for_user(self, user_id: str, limit: int, after: tuple[datetime, uuid.UUID] | None) -> list[Booking]:
        return await self._repository.list_for_user(user_id, limit, after)

    async def close(self) -> None:
        await self._inserts.close()
        await self._settlements.close()

    async def _insert_batch(self, _: None, news: list[NewBooking]) -> list[Booking | Failed | None]:
        try:
            inserted = await self._repository.insert_pending_batch(news)
        except _ROW_ERRORS as error:
            log.warning("batch insert redone row by row: %r", error)
            return [await _one_row(self._repository.insert_pending(new)) for new in news]
        return [inserted.get(new.id) for new in news]

    async def _settle_batch(self, _: None, settlements: list[Settlement]) -> list[Booking | Failed | None]:
        try:
            settled = await self._repository.settle_batch(settlements)
        except _ROW_ERRORS as error:
            log.warning("batch settlement redone row by row: %r", error)
            return [
                await _one_row(self._repository.transition(booking_id, [BookingStatus.PENDING], status, reason))
                for booking_id, status, reason in settlements
            ]
        # A booking id twice in one batch (concurrent retries) is updated once: both get it.
        return [settled.get(booking_id) for booking_id, _, _ in settlements]


async def _one_row(write: Awaitable[Booking | None]) -> Booking | Failed | None:
    """A row written on its own; its error fails only its own request."""
    try:
        return await write
    except _ROW_ERRORS as error:
        return Failed(error)
