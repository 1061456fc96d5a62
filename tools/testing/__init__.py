"""Test support shared by every test target: real PostgreSQL servers and databases, and the
launcher (tools.stack) with test settings."""
