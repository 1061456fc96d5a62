"""In-memory stand-ins for the booking service's ports, for unit tests of its logic.

`FakeSeats` is also the event service's waiting lists, by the contract's rules (design14): one
live entry per user and event; seats that come back (a release, added seats, a join) are offered
first fit in join order as reservations for new booking ids; while anyone waits, new
reservations are SOLD_OUT; offers stay listed until acknowledged."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from booking_service.domain import (
    HOLDING,
    Booking,
    BookingStatus,
    CancelReason,
    NewBooking,
    Refused,
    RejectReason,
    SeatAnswer,
    SeatOutcome,
    SeatsRejected,
    SeatsUnavailable,
    Settlement,
    within_user_limit,
)
from booking_service.waitlist import EventRefusal, Joined, WaitlistEntry, WaitlistPage, WaitlistState, decide_offers
from booking_service.waitlist_repository import RecordedOffers
from service_runtime.batching import Failed

_UNSETTLED = (BookingStatus.PENDING, BookingStatus.CANCELLING, BookingStatus.EXPIRING)


def _now() -> datetime:
    return datetime.now(UTC)


class FakeStore:
    """Bookings and cancelled events, with the repositories' rules (one clock: the wall's)."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Booking] = {}
        # event id -> (cancel time, done time)
        self.cancelled: dict[uuid.UUID, tuple[datetime, datetime | None]] = {}
        self.writes = 0
        self.statements = 0

    async def insert_pending(
        self, news: Sequence[NewBooking], user_limit: int, hold_ttl: timedelta = timedelta(minutes=10)
    ) -> list[Booking | Failed | None]:
        self.statements += 1
        allowed = within_user_limit(self._held(), news, user_limit)
        return [self._insert(new, ok, hold_ttl) for new, ok in zip(news, allowed, strict=True)]

    def _insert(self, new: NewBooking, allowed: bool, hold_ttl: timedelta) -> Booking | None:
        if new.idempotency_key and any(
            (b.user_id, b.idempotency_key) == (new.user_id, new.idempotency_key) for b in self.rows.values()
        ):
            return None
        now = _now()
        booking = Booking(
            new.id,
            new.user_id,
            new.event_id,
            new.seats,
            BookingStatus.PENDING if allowed else BookingStatus.REJECTED,
            None if allowed else RejectReason.USER_LIMIT_REACHED,
            new.idempotency_key,
            new.request_hash,
            now,
            now,
            hold=new.hold,
            expire_time=now + hold_ttl if new.hold else None,
        )
        self.rows[new.id] = booking
        self.writes += 1
        return booking

    def run_out(self, booking_id: uuid.UUID) -> None:
        """Makes the hold's expire_time pass."""
        self.rows[booking_id] = replace(self.rows[booking_id], expire_time=_now() - timedelta(seconds=1))

    async def get(self, booking_id: uuid.UUID) -> Booking | None:
        return self.rows.get(booking_id)

    async def get_by_keys(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], Booking]:
        return {
            (b.user_id, b.idempotency_key): b
            for b in self.rows.values()
            if b.idempotency_key is not None and (b.user_id, b.idempotency_key) in keys
        }

    async def settle(self, settlements: Sequence[Settlement]) -> dict[uuid.UUID, Booking]:
        self.statements += 1
        settled = {}
        for s in settlements:
            if (moved := self._settle(s)) is not None:
                settled[s.booking_id] = moved
        return settled

    def _settle(self, s: Settlement) -> Booking | None:
        booking = self.rows.get(s.booking_id)
        if booking is None or booking.status is not BookingStatus.PENDING:
            return None
        status, cancel = s.status, None
        if status in (BookingStatus.CONFIRMED, BookingStatus.HELD) and booking.event_id in self.cancelled:
            status, cancel = BookingStatus.CANCELLED, CancelReason.EVENT_CANCELLED
        return self._write(
            booking,
            status=status,
            reject_reason=s.reason,
            reject_metadata=dict(s.metadata) if s.metadata else None,
            cancel_reason=cancel,
        )

    def _write(self, booking: Booking, **changes: Any) -> Booking:
        self.rows[booking.id] = replace(booking, update_time=_now(), **changes)
        self.writes += 1
        return self.rows[booking.id]

    async def confirm(self, booking_id: uuid.UUID) -> tuple[Booking | None, bool, bool]:
        booking = self.rows.get(booking_id)
        if booking is None:
            return None, False, False
        expired = booking.expire_time is not None and booking.expire_time <= _now()
        event_cancelled = booking.event_id in self.cancelled
        if booking.status is BookingStatus.HELD and not expired and not event_cancelled:
            return self._write(booking, status=BookingStatus.CONFIRMED), False, False
        return booking, expired, event_cancelled

    async def transition(
        self, booking_id: uuid.UUID, frm: Any, to: BookingStatus, reason: RejectReason | None = None
    ) -> Booking | None:
        booking = self.rows.get(booking_id)
        if booking is None or booking.status not in frm:
            return None
        return self._write(booking, status=to, reject_reason=reason)

    async def list_for_user(self, user_id: str, limit: int, after: Any) -> list[Booking]:
        mine = sorted(
            (b for b in self.rows.values() if b.user_id == user_id), key=lambda b: (b.create_time, b.id), reverse=True
        )
        if after is not None:
            mine = [b for b in mine if (b.create_time, b.id) < after]
        return mine[:limit]

    async def lease_unsettled(self, min_age: timedelta, lease: timedelta, limit: int) -> list[uuid.UUID]:
        cutoff = _now() - min_age
        return [b.id for b in self.rows.values() if b.status in _UNSETTLED and b.update_time <= cutoff][:limit]

    @asynccontextmanager
    async def locked_unsettled(self, booking_id: uuid.UUID) -> AsyncIterator[Any]:
        found = self.rows.get(booking_id)
        if found is None or found.status not in _UNSETTLED:
            yield None
            return
        store = self

        class Locked:
            def __init__(self, booking: Booking) -> None:
                self.booking = booking

            async def transition(self, to: BookingStatus, reason: RejectReason | None = None) -> Booking:
                updated = await store.transition(booking_id, [self.booking.status], to, reason)
                assert updated is not None
                self.booking = updated
                return updated

            async def settle(self, settlement: Settlement) -> Booking:
                updated = store._settle(settlement)
                assert updated is not None
                self.booking = updated
                return updated

        yield Locked(found)

    # Waiting lists (waitlist_repository).

    def _held(self) -> dict[tuple[str, uuid.UUID], int]:
        held: dict[tuple[str, uuid.UUID], int] = {}
        for b in self.rows.values():
            if b.status in HOLDING:
                held[(b.user_id, b.event_id)] = held.get((b.user_id, b.event_id), 0) + b.seats
        return held

    async def held_seats(self, user_id: str, event_id: uuid.UUID) -> int:
        return self._held().get((user_id, event_id), 0)

    async def record_offers(self, offers: Sequence[WaitlistEntry], user_limit: int, ttl: timedelta) -> RecordedOffers:
        self.statements += 1
        found = {o.booking_id: self.rows[o.booking_id] for o in offers if o.booking_id in self.rows}
        fresh = [o for o in offers if o.booking_id is not None and o.booking_id not in found]
        outcomes = decide_offers(fresh, self._held(), self.cancelled, user_limit)
        now = _now()
        for offer, status in zip(fresh, outcomes, strict=True):
            assert offer.booking_id is not None
            self.rows[offer.booking_id] = Booking(
                offer.booking_id,
                offer.user_id,
                offer.event_id,
                offer.seats,
                status,
                RejectReason.USER_LIMIT_REACHED if status is BookingStatus.REJECTED else None,
                None,
                None,
                now,
                now,
                hold=True,
                expire_time=now + ttl if status is BookingStatus.HELD else now,
                cancel_reason=CancelReason.EVENT_CANCELLED if status is BookingStatus.CANCELLED else None,
                waitlist_entry_id=offer.id,
            )
            self.writes += 1
        bookings = {b: self.rows[b] for b in (o.booking_id for o in offers) if b is not None}
        return RecordedOffers(bookings, [o.booking_id for o in fresh if o.booking_id is not None], now)

    # The sweeps (sweep_repository).

    async def start_expiring(self, limit: int) -> list[tuple[uuid.UUID, float]]:
        now = _now()
        due = sorted(
            (
                b
                for b in self.rows.values()
                if b.status is BookingStatus.HELD
                and b.expire_time
                and b.expire_time <= now
                and b.event_id not in self.cancelled
            ),
            key=lambda b: b.expire_time or now,
        )[:limit]
        for b in due:
            self._write(b, status=BookingStatus.EXPIRING)
        return [(b.id, (now - (b.expire_time or now)).total_seconds()) for b in due]

    async def finish_expiring(self, booking_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        moved = [await self.transition(b, [BookingStatus.EXPIRING], BookingStatus.EXPIRED) for b in booking_ids]
        return [b.id for b in moved if b is not None]

    async def latest_cancel_time(self) -> datetime | None:
        return max((t for t, _ in self.cancelled.values()), default=None)

    async def record_cancelled(self, events: Sequence[tuple[uuid.UUID, datetime]]) -> None:
        for event_id, cancel_time in events:
            self.cancelled.setdefault(event_id, (cancel_time, None))

    async def open_cancelled(self) -> list[uuid.UUID]:
        return [e for e, (_, done) in sorted(self.cancelled.items(), key=lambda kv: (kv[1][0], kv[0])) if done is None]

    async def cancel_chunk(self, event_id: uuid.UUID, limit: int) -> int:
        chunk = [
            b
            for b in self.rows.values()
            if b.event_id == event_id and b.status in (BookingStatus.CONFIRMED, BookingStatus.HELD)
        ][:limit]
        for b in chunk:
            self._write(b, status=BookingStatus.CANCELLED, cancel_reason=CancelReason.EVENT_CANCELLED)
        return len(chunk)

    async def finish_cancelled(self, event_id: uuid.UUID) -> bool:
        cancel_time, done = self.cancelled[event_id]
        busy = (BookingStatus.PENDING, BookingStatus.CONFIRMED, BookingStatus.HELD)
        if done is not None or any(b.event_id == event_id and b.status in busy for b in self.rows.values()):
            return False
        self.cancelled[event_id] = (cancel_time, _now())
        return True


# What the fake event service records for a booking id: its answer, event and seats.
Record = tuple[SeatAnswer, uuid.UUID | None, int]


class FakeSeats:
    """The event service: seats per event, sales windows, cancellations, a record per booking
    id, and an on/off switch."""

    def __init__(self, seats: dict[uuid.UUID, int]) -> None:
        self.available = dict(seats)
        self.records: dict[uuid.UUID, Record] = {}
        # event id -> sales start time (RFC 3339), for events not on sale yet.
        self.not_on_sale: dict[uuid.UUID, str] = {}
        self.cancelled: dict[uuid.UUID, datetime] = {}
        self.up = True
        self.calls: list[str] = []
        self.batches: list[int] = []
        # Waiting-list entries in join order, and the offers (booking ids) acknowledged.
        self.entries: list[WaitlistEntry] = []
        self.acknowledged: set[uuid.UUID] = set()

    def _check(self, name: str) -> None:
        self.calls.append(name)
        if not self.up:
            raise SeatsUnavailable("down")

    async def reserve(self, bookings: Sequence[Booking]) -> list[SeatAnswer | SeatsRejected]:
        self._check("reserve")
        self.batches.append(len(bookings))
        return [self.reserve_one(b.id, b.event_id, b.seats) for b in bookings]

    def reserve_one(self, booking_id: uuid.UUID, event_id: uuid.UUID, seats: int) -> SeatAnswer:
        if booking_id in self.records:
            return self.records[booking_id][0]
        if event_id not in self.available:
            return SeatOutcome.EVENT_NOT_FOUND
        answer: SeatAnswer = SeatOutcome.RESERVED
        if event_id in self.cancelled:
            answer = Refused(RejectReason.EVENT_CANCELLED)
        elif event_id in self.not_on_sale:
            answer = Refused(RejectReason.SALES_NOT_STARTED, {"sales_start_time": self.not_on_sale[event_id]})
        elif self.available[event_id] < seats or self._waiting(event_id):
            answer = SeatOutcome.SOLD_OUT
        else:
            self.available[event_id] -= seats
        self.records[booking_id] = (answer, event_id, seats)
        return answer

    async def release(self, booking_id: uuid.UUID) -> SeatAnswer:
        self._check("release")
        state, event_id, seats = self.records.get(booking_id, (SeatOutcome.NONE, None, 0))
        if state is SeatOutcome.RESERVED and event_id is not None:
            self.available[event_id] += seats
            self.records[booking_id] = (SeatOutcome.RELEASED, event_id, seats)
            self._offer(event_id)
        if state in (SeatOutcome.RESERVED, SeatOutcome.NONE):
            self.records[booking_id] = (SeatOutcome.RELEASED, event_id, seats)
            return SeatOutcome.RELEASED
        return state

    async def lookup(self, booking_id: uuid.UUID) -> SeatAnswer:
        self._check("lookup")
        return self.records.get(booking_id, (SeatOutcome.NONE, None, 0))[0]

    def cancel_event(self, event_id: uuid.UUID) -> None:
        """CancelEvent: every seat back, reservations released for the event's cancellation."""
        self.cancelled[event_id] = _now()
        self.entries = [
            replace(e, state=WaitlistState.CLOSED, update_time=_now())
            if e.event_id == event_id and e.state is WaitlistState.WAITING
            else e
            for e in self.entries
        ]
        for booking_id, (state, event, seats) in list(self.records.items()):
            if event == event_id and state is SeatOutcome.RESERVED:
                self.available[event_id] += seats
                self.records[booking_id] = (Refused(RejectReason.EVENT_CANCELLED), event, seats)

    async def cancelled_events(self, after: datetime | None) -> list[tuple[uuid.UUID, datetime]]:
        self._check("cancelled_events")
        return sorted((e, t) for e, t in self.cancelled.items() if after is None or t >= after)

    # Waiting lists.

    def add_seats(self, event_id: uuid.UUID, seats: int) -> None:
        """UpdateEvent adding seats: offered to the list at once."""
        self.available[event_id] += seats
        self._offer(event_id)

    def _waiting(self, event_id: uuid.UUID) -> list[WaitlistEntry]:
        return [e for e in self.entries if e.event_id == event_id and e.state is WaitlistState.WAITING]

    def _offer(self, event_id: uuid.UUID) -> None:
        """The offer step: first fit in join order."""
        if event_id in self.cancelled:
            return
        for entry in self._waiting(event_id):
            if self.available[event_id] == 0:
                return
            if entry.seats <= self.available[event_id]:
                booking_id, now = uuid.uuid4(), _now()
                self.available[event_id] -= entry.seats
                self.records[booking_id] = (SeatOutcome.RESERVED, event_id, entry.seats)
                offered = replace(
                    entry, state=WaitlistState.OFFERED, booking_id=booking_id, offer_time=now, update_time=now
                )
                self.entries[self.entries.index(entry)] = offered

    def _shown(self, entry: WaitlistEntry) -> WaitlistEntry:
        if entry.state is not WaitlistState.WAITING:
            return replace(entry, position=0)
        return replace(entry, position=self._waiting(entry.event_id).index(entry) + 1)

    def _latest(self, event_id: uuid.UUID, user_id: str) -> WaitlistEntry | None:
        mine = [e for e in self.entries if (e.event_id, e.user_id) == (event_id, user_id)]
        return mine[-1] if mine else None

    def _event_refusal(self, event_id: uuid.UUID) -> EventRefusal | None:
        if event_id not in self.available:
            return EventRefusal("EVENT_NOT_FOUND", f"event {event_id} not found", {"event_id": str(event_id)})
        if event_id in self.cancelled:
            return EventRefusal("EVENT_CANCELLED", f"event {event_id} is cancelled", {"event_id": str(event_id)})
        if event_id in self.not_on_sale:
            start = self.not_on_sale[event_id]
            return EventRefusal("SALES_NOT_STARTED", "not yet", {"sales_start_time": start})
        return None

    async def join_waitlist(self, event_id: uuid.UUID, user_id: str, seats: int) -> Joined:
        self._check("join_waitlist")
        if (refusal := self._event_refusal(event_id)) is not None:
            raise refusal
        latest = self._latest(event_id, user_id)
        if latest is not None and (
            latest.state is WaitlistState.WAITING
            or (
                latest.state is WaitlistState.OFFERED
                and latest.booking_id is not None
                and self.records[latest.booking_id][0] is SeatOutcome.RESERVED
            )
        ):
            return Joined(self._shown(latest), False)
        if not self._waiting(event_id) and self.available[event_id] >= seats:
            available = str(self.available[event_id])
            raise EventRefusal("SEATS_AVAILABLE", "book instead", {"available_seats": available})
        now = _now()
        entry = WaitlistEntry(uuid.uuid4(), event_id, user_id, seats, WaitlistState.WAITING, 0, now, now)
        self.entries.append(entry)
        self._offer(event_id)
        [current] = [e for e in self.entries if e.id == entry.id]
        return Joined(self._shown(current), True)

    async def leave_waitlist(self, event_id: uuid.UUID, user_id: str) -> WaitlistEntry:
        self._check("leave_waitlist")
        latest = self._latest(event_id, user_id)
        if latest is None:
            raise EventRefusal("WAITLIST_ENTRY_NOT_FOUND", f"{user_id} is not on the waiting list", {})
        if latest.state is WaitlistState.WAITING:
            left = replace(latest, state=WaitlistState.LEFT, update_time=_now())
            self.entries[self.entries.index(latest)] = left
            return self._shown(left)
        return self._shown(latest)

    async def user_waitlist(self, user_id: str, page_size: int, page_token: str) -> WaitlistPage:
        self._check("user_waitlist")
        mine = [self._shown(e) for e in reversed(self.entries) if e.user_id == user_id]
        start = int(page_token or "0")
        end = start + page_size
        return WaitlistPage(mine[start:end], str(end) if end < len(mine) else "")

    async def waitlist_offers(self, limit: int) -> list[WaitlistEntry]:
        self._check("waitlist_offers")
        offered = [
            e for e in self.entries if e.state is WaitlistState.OFFERED and e.booking_id not in self.acknowledged
        ]
        return sorted(offered, key=lambda e: (e.offer_time or _now(), e.id))[:limit]

    async def acknowledge_offers(self, booking_ids: Sequence[uuid.UUID]) -> int:
        self._check("acknowledge_offers")
        new = set(booking_ids) - self.acknowledged
        self.acknowledged |= new
        return len(new)
