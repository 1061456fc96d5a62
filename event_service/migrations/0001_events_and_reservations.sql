-- Events and the reservations that hold their seats.
-- Invariant, enforced here as much as in code: for every event,
--   total_seats = available_seats + sum(seats of its RESERVED reservations).

CREATE TABLE events (
    id              uuid PRIMARY KEY,
    name            text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    start_time      timestamptz NOT NULL,
    total_seats     integer NOT NULL CHECK (total_seats > 0),
    available_seats integer NOT NULL,
    create_time     timestamptz NOT NULL DEFAULT now(),
    update_time     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT available_seats_in_range CHECK (available_seats BETWEEN 0 AND total_seats)
);

-- ListEvents pages through events in (start_time, id) order.
CREATE INDEX events_by_start_time ON events (start_time, id);

-- One row per booking id, ever: the booking id is the idempotency key of every seat operation.
--   RESERVED  the booking holds `seats` seats of `event_id`
--   RELEASED  the seats were given back, or (event_id NULL, seats 0) the booking id was
--             released before it reserved anything, which blocks a late reservation
--   SOLD_OUT  the reservation was refused for lack of seats; replays get the same answer
CREATE TABLE reservations (
    booking_id   uuid PRIMARY KEY,
    event_id     uuid REFERENCES events (id),
    seats        integer NOT NULL CHECK (seats >= 0),
    state        text NOT NULL CHECK (state IN ('RESERVED', 'RELEASED', 'SOLD_OUT')),
    create_time  timestamptz NOT NULL DEFAULT now(),
    release_time timestamptz,
    CONSTRAINT released_iff_release_time CHECK ((state = 'RELEASED') = (release_time IS NOT NULL)),
    CONSTRAINT held_seats_belong_to_an_event CHECK (state = 'RELEASED' OR (event_id IS NOT NULL AND seats > 0))
);

CREATE INDEX reservations_by_event ON reservations (event_id) WHERE state = 'RESERVED';
