"""Test support shared by every test target: real PostgreSQL servers and databases."""
