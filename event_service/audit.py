"""The seat invariant, checked in the event service's database.

For every event, `total_seats = available_seats + seats of its RESERVED reservations`. The
tests check it after every race they stage, and the load tool's audit checks it after a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

SEAT_MISMATCHES = """
SELECT e.id, e.total_seats, e.available_seats, coalesce(h.held, 0) AS held
  FROM events e
  LEFT JOIN (SELECT event_id, sum(seats) AS held FROM reservations WHERE state = 'RESERVED' GROUP BY event_id) h
    ON h.event_id = e.id
 WHERE e.total_seats <> e.available_seats + coalesce(h.held, 0)
"""


@dataclass(frozen=True)
class SeatMismatch:
    event_id: str
    total_seats: int
    available_seats: int
    held_seats: int

    def __str__(self) -> str:
        return (
            f"event {self.event_id}: total {self.total_seats} != available {self.available_seats}"
            f" + reserved {self.held_seats}"
        )


def seat_mismatches(conn: psycopg.Connection[Any]) -> list[SeatMismatch]:
    rows = conn.execute(SEAT_MISMATCHES).fetchall()
    return [SeatMismatch(str(r[0]), r[1], r[2], int(r[3])) for r in rows]


def assert_seats_consistent(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        mismatches = seat_mismatches(conn)
    assert not mismatches, "; ".join(map(str, mismatches))
