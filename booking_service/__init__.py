"""TicketFlow's booking service: bookings that never oversell, never lose a seat, never book twice."""
