"""The benchmark: the naive hot-row limit (pgbench) against the end-to-end system."""
