"""TicketFlow's event service."""
