"""TicketFlow's booking service."""
