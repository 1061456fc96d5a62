"""A throw-away PostgreSQL server for tests, the dev stack and benchmarks."""
