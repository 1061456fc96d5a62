"""A load generator for any running TicketFlow, with the audit of both databases after it."""
