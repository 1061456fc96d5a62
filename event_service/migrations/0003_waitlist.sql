-- Waiting lists (issue 14). Existing events have nobody waiting.
--
-- Invariants, added to those of 0001/0002:
--   events.waitlist_size = count of the event's WAITING entries;
--   an OFFERED entry's booking_id names the reservation its seats were offered under (same
--   event, same seats), made in the transaction that made the entry OFFERED;
--   while an event has a WAITING entry, no reservation but an offer takes its seats.
-- Every instant written here (create_time, update_time, offer_time) is read from the clock
-- after the event's row lock, so that the order of the instants is the order of the decisions
-- (the audit checks the order of offers from them).

ALTER TABLE events
    ADD COLUMN waitlist_size integer NOT NULL DEFAULT 0 CHECK (waitlist_size >= 0);

CREATE TABLE waitlist_entries (
    id               uuid PRIMARY KEY,
    event_id         uuid NOT NULL REFERENCES events (id),
    user_id          text NOT NULL CHECK (char_length(user_id) BETWEEN 1 AND 64),
    seats            integer NOT NULL CHECK (seats > 0),
    -- Join order: entries of one event join under its row lock, so this is their order.
    seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    state            text NOT NULL CHECK (state IN ('WAITING', 'OFFERED', 'LEFT', 'CLOSED')),
    create_time      timestamptz NOT NULL,
    update_time      timestamptz NOT NULL,
    offer_time       timestamptz,
    booking_id       uuid UNIQUE REFERENCES reservations (booking_id),
    -- When the booking service recorded the offer as a HELD booking (ListWaitlistOffers lists
    -- the OFFERED entries without it).
    acknowledge_time timestamptz,
    CONSTRAINT offered_with_booking CHECK ((state = 'OFFERED') = (booking_id IS NOT NULL)),
    CONSTRAINT offered_with_time CHECK ((state = 'OFFERED') = (offer_time IS NOT NULL)),
    CONSTRAINT acknowledged_only_offers CHECK (acknowledge_time IS NULL OR state = 'OFFERED')
);

-- One WAITING entry per user and event (joining again returns it).
CREATE UNIQUE INDEX waitlist_one_waiting ON waitlist_entries (event_id, user_id) WHERE state = 'WAITING';
-- The queue: an event's WAITING entries in join order.
CREATE INDEX waitlist_queue ON waitlist_entries (event_id, seq) WHERE state = 'WAITING';
-- An event's whole list, in join order (admins), and a user's entries, newest first.
CREATE INDEX waitlist_by_event ON waitlist_entries (event_id, seq);
CREATE INDEX waitlist_by_user ON waitlist_entries (user_id, seq DESC);
-- Offers the booking service has yet to record.
CREATE INDEX waitlist_unacknowledged ON waitlist_entries (offer_time, id)
    WHERE state = 'OFFERED' AND acknowledge_time IS NULL;
