"""End-to-end tests: both services as real processes on real ports, each with its own database."""
