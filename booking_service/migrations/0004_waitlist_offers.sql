-- Waiting-list offers (issue 14). The event service offers freed seats to an event's waiting
-- list by reserving them for a new booking id; the offer follower records each offer here as
-- a HELD booking with that id (hold = true, expire_time = WAITLIST_OFFER_TTL_SECONDS from its
-- recording), or, when recording it HELD would break a rule, as:
--   REJECTED  USER_LIMIT_REACHED   the user would pass MAX_SEATS_PER_USER_PER_EVENT (the seats
--                                  are released, so they go to the next entry)
--   CANCELLED EVENT_CANCELLED      the event is known cancelled (its seats are back already)
-- Existing bookings are not offers.
ALTER TABLE bookings
    ADD COLUMN waitlist_entry_id uuid UNIQUE,
    ADD CONSTRAINT offers_are_holds CHECK (waitlist_entry_id IS NULL OR hold);
