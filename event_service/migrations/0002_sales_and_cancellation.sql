-- On-sale windows, changing and cancelling events (issue 13). Existing events stay valid:
-- they are SCHEDULED, with no sales window (on sale from creation, never ending).
--
-- Invariant, unchanged: for every event,
--   total_seats = available_seats + sum(seats of its RESERVED reservations).
-- total_seats may now change (UpdateEvent), always together with available_seats and never
-- below the seats its RESERVED reservations hold.

ALTER TABLE events
    ADD COLUMN sales_start_time timestamptz,
    ADD COLUMN sales_end_time   timestamptz,
    ADD COLUMN state            text NOT NULL DEFAULT 'SCHEDULED' CHECK (state IN ('SCHEDULED', 'CANCELLED')),
    ADD COLUMN cancel_time      timestamptz,
    ADD CONSTRAINT sales_window_ordered
        CHECK (sales_start_time IS NULL OR sales_end_time IS NULL OR sales_start_time < sales_end_time),
    ADD CONSTRAINT cancelled_iff_cancel_time CHECK ((state = 'CANCELLED') = (cancel_time IS NOT NULL));

-- ListCancelledEvents: the booking service polls for events cancelled since it last looked.
CREATE INDEX events_cancelled ON events (cancel_time, id) WHERE state = 'CANCELLED';

-- A reservation refused for a reason other than lack of seats is recorded REFUSED with that
-- reason (SALES_NOT_STARTED, SALES_ENDED, EVENT_CANCELLED), so that a replay of the booking
-- id gets the same answer and can never take seats later. A RELEASED reservation records why
-- its seats were given back: EVENT_CANCELLED for the event's cancellation, NULL when the
-- booking service released it.
ALTER TABLE reservations
    ADD COLUMN refusal_reason text CHECK (refusal_reason IN ('SALES_NOT_STARTED', 'SALES_ENDED', 'EVENT_CANCELLED')),
    ADD COLUMN release_reason text CHECK (release_reason IN ('EVENT_CANCELLED')),
    DROP CONSTRAINT reservations_state_check,
    ADD CONSTRAINT reservations_state_check CHECK (state IN ('RESERVED', 'RELEASED', 'SOLD_OUT', 'REFUSED')),
    ADD CONSTRAINT refused_iff_reason CHECK ((state = 'REFUSED') = (refusal_reason IS NOT NULL)),
    ADD CONSTRAINT release_reason_only_when_released CHECK (release_reason IS NULL OR state = 'RELEASED');
