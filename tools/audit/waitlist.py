"""The audit's checks of waiting lists (issue 14), pure functions of a `Snapshot` yielding one
line per violation (`tools.audit.invariants` lists and counts them with the other checks).

- sizes:     each event's waitlist_size is the count of its WAITING entries; a cancelled event
             has none WAITING.
- offer seats: an OFFERED entry's reservation has the entry's event and seats.
- recorded:  every offer is acknowledged and recorded as its booking (same id, user, event,
             seats, waitlist_entry_id), and every booking recorded as an offer is one.
- unoffered: no WAITING entry fits the available seats of an event still on sale (no seat
             stays unoffered while someone who fits waits).
- order:     first fit in join order never skips an entry that fits: for the offers G made
             by one decision (the same offer_time t), no entry w that joined before some of
             them and was still WAITING at t (it left the state, offered, left or closed,
             only after t, or not yet) has w.seats <= the seats of G's entries that joined
             after it. (This includes design14's pairwise rule: w before an offer o with
             w.seats <= o.seats must have stopped waiting at or before o's offer_time.)
- queue jumps are found in SQL (`snapshot._QUEUE_JUMPS`); here they are only worded.

An offer not yet acknowledged is work in flight (the booking service's offer follower records
it within WAITLIST_POLL_SECONDS): `unacknowledged` counts them for the quiet-moment wait.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime

from tools.audit.snapshot import Snapshot, WaitlistEntry


def unacknowledged(snapshot: Snapshot) -> int:
    return sum(1 for e in snapshot.waitlist if e.state == "OFFERED" and not e.acknowledged)


def states(snapshot: Snapshot) -> dict[str, int]:
    """Entries by state."""
    return dict(Counter(e.state for e in snapshot.waitlist))


def sizes(snapshot: Snapshot) -> Iterator[str]:
    waiting = Counter(e.event_id for e in snapshot.waitlist if e.state == "WAITING")
    for event_id, event in snapshot.events.items():
        if event.waitlist_size != waiting.get(event_id, 0):
            yield (
                f"event {event_id}: waitlist_size {event.waitlist_size} != {waiting.get(event_id, 0)} WAITING entries"
            )
        if event.cancelled and waiting.get(event_id):
            yield f"cancelled event {event_id} still has {waiting[event_id]} WAITING entries"
    for event_id in sorted(waiting.keys() - snapshot.events.keys()):
        yield f"WAITING entries of event {event_id}, which the event service does not know"


def offer_seats(snapshot: Snapshot) -> Iterator[str]:
    for entry in _offers(snapshot):
        r = entry.reservation
        if r is None or (r.event_id, r.seats) != (entry.event_id, entry.seats):
            held = "nothing" if r is None else f"{r.seats} seat(s) of event {r.event_id}"
            yield (
                f"entry {entry.id} was offered {entry.seats} seat(s) of event {entry.event_id}, "
                f"its reservation {entry.booking_id} has {held}"
            )


def recorded(snapshot: Snapshot) -> Iterator[str]:
    offered: dict[str, WaitlistEntry] = {}
    for entry in _offers(snapshot):
        assert entry.booking_id is not None  # an OFFERED entry names its booking (schema)
        offered[entry.booking_id] = entry
        booking = snapshot.offer_bookings.get(entry.booking_id)
        if not entry.acknowledged:
            yield f"offer of entry {entry.id} (booking {entry.booking_id}) not acknowledged by the booking service"
        elif booking is None:
            yield f"offer of entry {entry.id} acknowledged, but booking {entry.booking_id} is not recorded as an offer"
        if booking is not None:
            want = (entry.id, entry.user_id, entry.event_id, entry.seats)
            got = (booking.entry_id, booking.user_id, booking.event_id, booking.seats)
            if want != got:
                yield (f"booking {booking.booking_id}: (entry, user, event, seats) = {got}, its offer {want}")
    for booking_id in sorted(snapshot.offer_bookings.keys() - offered.keys()):
        booking = snapshot.offer_bookings[booking_id]
        yield f"booking {booking_id} names entry {booking.entry_id}, which offered no seats under it"


def unoffered(snapshot: Snapshot) -> Iterator[str]:
    first_fit: dict[str, WaitlistEntry] = {}
    for entry in snapshot.waitlist:  # join order per event
        event = snapshot.events.get(entry.event_id)
        if (
            entry.state == "WAITING"
            and event is not None
            and event.on_sale
            and entry.seats <= event.available
            and entry.event_id not in first_fit
        ):
            first_fit[entry.event_id] = entry
    for event_id, entry in sorted(first_fit.items()):
        yield (
            f"event {event_id} has {snapshot.events[event_id].available} seat(s) available, "
            f"and entry {entry.id} (user {entry.user_id}, {entry.seats} seat(s), #{entry.seq}) still WAITING"
        )


def order(snapshot: Snapshot) -> Iterator[str]:
    by_event: dict[str, list[WaitlistEntry]] = defaultdict(list)
    for entry in snapshot.waitlist:
        by_event[entry.event_id].append(entry)
    for event_id in sorted(by_event):
        yield from _order_of(sorted(by_event[event_id], key=lambda e: e.seq))


def _order_of(entries: list[WaitlistEntry]) -> Iterator[str]:
    """One event's entries in join order. The offers of one decision share its instant (their
    offer_time): a group G offered at t had at least sum(G.seats) seats to share. Walking the
    WAITING entries in join order, first fit reaches an entry w with at least the seats of G's
    entries after w still free; so w, WAITING at t and joined before some of G, was skipped
    although it fit if w.seats <= the seats of G's entries that joined after it."""
    groups: dict[datetime, list[WaitlistEntry]] = defaultdict(list)
    for entry in entries:
        if entry.state == "OFFERED" and entry.left_time is not None:
            groups[entry.left_time].append(entry)
    for offered_at, group in sorted(groups.items()):
        last = group[-1].seq  # entries are in join order
        for w in entries:
            if w.seq >= last:
                break
            after = [o for o in group if o.seq > w.seq]
            if (
                _after(w.left_time, offered_at)
                and w.create_time <= offered_at
                and w.seats <= sum(o.seats for o in after)
            ):
                still = "is still WAITING" if w.left_time is None else f"waited until {w.left_time.isoformat()}"
                offered = ", ".join(f"{o.id} (#{o.seq}, {o.seats} seat(s))" for o in after)
                yield (
                    f"entries {offered} were offered at {offered_at.isoformat()}, but entry {w.id} "
                    f"(#{w.seq}, {w.seats} seat(s)), which joined before them and fits in their seats, {still}"
                )
                break  # one finding per decision


def _after(left_time: datetime | None, instant: datetime) -> bool:
    """Whether an entry that stopped waiting at `left_time` (None: still waiting) still waited
    after `instant`."""
    return left_time is None or left_time > instant


def _offers(snapshot: Snapshot) -> Iterator[WaitlistEntry]:
    return (e for e in snapshot.waitlist if e.state == "OFFERED")
