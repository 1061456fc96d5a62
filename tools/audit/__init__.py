"""Checks of TicketFlow's guarantees across both services' databases."""
