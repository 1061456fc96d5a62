-- Identities: an Idempotency-Key belongs to the user who sent it, so two users' keys never
-- meet (one user's "order-1" is not another's), and the per-user seat cap needs each user's
-- seats of an event at hand.
ALTER TABLE bookings DROP CONSTRAINT bookings_idempotency_key_key;
CREATE UNIQUE INDEX bookings_user_key ON bookings (user_id, idempotency_key);

-- What a user holds of an event (counted against MAX_SEATS_PER_USER_PER_EVENT).
CREATE INDEX bookings_holding ON bookings (user_id, event_id)
    WHERE status IN ('PENDING', 'CONFIRMED', 'CANCELLING');
