-- Bookings. A booking is written PENDING before any seat is reserved, so that a booking row
-- exists for every reservation the event service may hold; the request (or, if it dies, the
-- reconciler) then settles it:
--   PENDING    -> CONFIRMED                 the seats are reserved
--   PENDING    -> REJECTED                  sold out, unknown event, or abandoned (seats released)
--   CONFIRMED  -> CANCELLING -> CANCELLED   the seats are given back
CREATE TABLE bookings (
    id              uuid PRIMARY KEY,
    user_id         text NOT NULL CHECK (char_length(user_id) BETWEEN 1 AND 64),
    event_id        uuid NOT NULL,
    seats           integer NOT NULL CHECK (seats > 0),
    status          text NOT NULL
                    CHECK (status IN ('PENDING', 'CONFIRMED', 'REJECTED', 'CANCELLING', 'CANCELLED')),
    reject_reason   text,
    -- The caller's Idempotency-Key (unique: one booking per key, ever) and a hash of the
    -- request it came with, to tell a retry from a different request reusing the key.
    idempotency_key text UNIQUE CHECK (char_length(idempotency_key) BETWEEN 1 AND 128),
    request_hash    bytea,
    create_time     timestamptz NOT NULL DEFAULT now(),
    update_time     timestamptz NOT NULL DEFAULT now(),
    -- Set by a reconciler while it works on the booking, so that other replicas skip it.
    lease_until     timestamptz,
    CONSTRAINT rejected_iff_reason CHECK ((status = 'REJECTED') = (reject_reason IS NOT NULL)),
    CONSTRAINT key_with_hash CHECK ((idempotency_key IS NULL) = (request_hash IS NULL))
);

-- A user's bookings, newest first.
CREATE INDEX bookings_by_user ON bookings (user_id, create_time DESC, id DESC);

-- What the reconciler looks at: bookings not yet settled, oldest first.
CREATE INDEX bookings_unsettled ON bookings (update_time) WHERE status IN ('PENDING', 'CANCELLING');
