-- Holds, on-sale refusals and event cancellation (issue 13). Existing bookings stay valid:
-- they are not holds, and keep their status.
--
-- States added to those of 0001:
--   PENDING   -> HELD                      a hold's seats are reserved (expire_time is set)
--   HELD      -> CONFIRMED                 confirmed before expire_time (decided by this row alone)
--   HELD      -> EXPIRING -> EXPIRED       expire_time passed: the seats are given back
--   HELD      -> CANCELLING -> CANCELLED   released by its owner
--   CONFIRMED, HELD -> CANCELLED           the event was cancelled (cancel_reason EVENT_CANCELLED;
--                                          the event service gave the seats back itself)
ALTER TABLE bookings
    ADD COLUMN hold boolean NOT NULL DEFAULT false,
    -- When a hold runs out (set when the hold is recorded: now() + HOLD_TTL_SECONDS).
    ADD COLUMN expire_time timestamptz,
    -- Why a CANCELLED booking was cancelled: EVENT_CANCELLED, or NULL when its owner did it.
    ADD COLUMN cancel_reason text CHECK (cancel_reason IN ('EVENT_CANCELLED')),
    -- Facts about a refusal that its answer repeats on every retry (the sales start time of
    -- SALES_NOT_STARTED), as ErrorInfo metadata.
    ADD COLUMN reject_metadata jsonb,
    DROP CONSTRAINT bookings_status_check,
    ADD CONSTRAINT bookings_status_check CHECK (status IN (
        'PENDING', 'CONFIRMED', 'REJECTED', 'CANCELLING', 'CANCELLED', 'HELD', 'EXPIRING', 'EXPIRED')),
    ADD CONSTRAINT hold_has_expire_time CHECK (hold = (expire_time IS NOT NULL)),
    ADD CONSTRAINT only_holds_are_held CHECK (status NOT IN ('HELD', 'EXPIRING', 'EXPIRED') OR hold),
    ADD CONSTRAINT cancel_reason_only_when_cancelled CHECK (cancel_reason IS NULL OR status = 'CANCELLED');

-- What a user holds of an event (counted against MAX_SEATS_PER_USER_PER_EVENT): now also holds.
DROP INDEX bookings_holding;
CREATE INDEX bookings_holding ON bookings (user_id, event_id)
    WHERE status IN ('PENDING', 'CONFIRMED', 'CANCELLING', 'HELD', 'EXPIRING');

-- What the reconciler looks at: bookings not yet settled, oldest first (now also EXPIRING).
DROP INDEX bookings_unsettled;
CREATE INDEX bookings_unsettled ON bookings (update_time) WHERE status IN ('PENDING', 'CANCELLING', 'EXPIRING');

-- What the hold sweeper looks at: holds by the time they run out.
CREATE INDEX bookings_held ON bookings (expire_time) WHERE status = 'HELD';

-- The bookings of an event, for its cancellation.
CREATE INDEX bookings_by_event ON bookings (event_id) WHERE status IN ('PENDING', 'CONFIRMED', 'HELD');

-- Events the event service reports cancelled. Their bookings are cancelled in chunks, so a
-- process that dies half-way leaves the rest for whichever replica looks next; `done_time`
-- is set once no booking of the event is PENDING, CONFIRMED or HELD any more. A PENDING
-- booking of a listed event never settles to CONFIRMED or HELD: it settles CANCELLED.
CREATE TABLE cancelled_events (
    event_id    uuid PRIMARY KEY,
    cancel_time timestamptz NOT NULL,
    seen_time   timestamptz NOT NULL DEFAULT now(),
    done_time   timestamptz
);
CREATE INDEX cancelled_events_open ON cancelled_events (cancel_time) WHERE done_time IS NULL;
