"""The offer follower: every waiting-list offer the event service makes becomes a booking of its
user, exactly once, even if processes die half-way.

The event service offers freed seats by reserving them for a new booking id, in the same
transaction that gave them back, and keeps the offer unacknowledged until the booking service
says it has recorded it. Every replica runs a round every WAITLIST_POLL_SECONDS; a round
repeats, page after page, until a page comes back short:
1. ListWaitlistOffers: the unacknowledged offers, oldest first;
2. one booking-DB transaction records them (`WaitlistRepository.record_offers`): HELD until
   WAITLIST_OFFER_TTL_SECONDS from now; REJECTED (USER_LIMIT_REACHED) when the user would pass
   the per-user cap; CANCELLED (EVENT_CANCELLED) when its event is known cancelled. An offer
   recorded before (a replay) is left as it is;
3. the seats of every REJECTED offer of the page (recorded now or before) are released, so
   they go to the next entry (ReleaseSeats is idempotent);
4. AcknowledgeWaitlistOffers for the whole page.
A process that dies anywhere leaves the page unacknowledged: the next round (of any replica)
does it again, recording nothing twice and releasing nothing twice. Two replicas on the same
page are serialised by the advisory locks of step 2, and both acknowledging is harmless.
From step 2 on an offer is a hold like any other: confirmed, cancelled (declined), expired by
the hold sweeper (its seats go to the next entry), or cancelled with its event.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Protocol

from booking_service.domain import BookingStatus, SeatAnswer, SeatsUnavailable
from booking_service.waitlist import WaitlistEntry
from booking_service.waitlist_repository import RecordedOffers
from service_runtime.faults import Faults

log = logging.getLogger(__name__)

# Offers asked for per page.
PAGE = 200


class OfferSource(Protocol):
    async def waitlist_offers(self, limit: int) -> list[WaitlistEntry]: ...
    async def acknowledge_offers(self, booking_ids: Sequence[uuid.UUID]) -> int: ...
    async def release(self, booking_id: uuid.UUID) -> SeatAnswer: ...


class OfferStore(Protocol):
    async def record_offers(
        self, offers: Sequence[WaitlistEntry], user_limit: int, ttl: timedelta
    ) -> RecordedOffers: ...


class OfferFollower:
    def __init__(
        self,
        store: OfferStore,
        events: OfferSource,
        *,
        user_limit: int,
        ttl: timedelta,
        page: int = PAGE,
        faults: Faults | None = None,
        on_recorded: Callable[[str], None] = lambda outcome: None,
        on_lag: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        self._store = store
        self._events = events
        self._user_limit = user_limit
        self._ttl = ttl
        self._page = page
        self._faults = faults or Faults()
        self._on_recorded = on_recorded
        self._on_lag = on_lag

    async def run_once(self) -> int:
        """One round; returns how many offers it recorded (replays not counted). While the
        event service cannot be reached, the round ends early: the offers wait for it."""
        recorded = 0
        while True:
            try:
                offers = await self._events.waitlist_offers(self._page)
                if not offers:
                    return recorded
                recorded += await self._follow(offers)
            except SeatsUnavailable as error:
                log.warning("waiting-list offers left for the next round: %s", error)
                return recorded
            if len(offers) < self._page:
                return recorded

    async def _follow(self, offers: list[WaitlistEntry]) -> int:
        """Steps 2 to 4 for one page."""
        result = await self._store.record_offers(offers, self._user_limit, self._ttl)
        by_entry = {o.booking_id: o for o in offers}
        for booking_id in result.new:
            booking = result.bookings[booking_id]
            self._on_recorded(booking.status.value)
            offer_time = by_entry[booking_id].offer_time
            if offer_time is not None:
                self._on_lag(max(0.0, (result.now - offer_time).total_seconds()))
        self._faults.point("waitlist_offer_before_release")
        for booking in result.bookings.values():
            if booking.status is BookingStatus.REJECTED:
                await self._events.release(booking.id)
        self._faults.point("waitlist_offer_before_ack")
        await self._events.acknowledge_offers([o.booking_id for o in offers if o.booking_id is not None])
        if result.new:
            log.info("recorded %d waiting-list offer(s)", len(result.new))
        return len(result.new)
