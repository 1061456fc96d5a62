"""Prometheus metrics of one service: requests per transport, plus what a service adds.

Each service owns a `Metrics` with its own registry (so tests can build many apps in one
process) and serves it on `GET /metrics`.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg_pool import AsyncConnectionPool

# Request latencies of interest run from a millisecond to a few seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP requests handled, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.grpc_handled = Counter(
            "grpc_server_handled_total",
            "gRPC calls handled, by service, method and status code.",
            ["grpc_service", "grpc_method", "grpc_code"],
            registry=self.registry,
        )
        self.grpc_latency = Histogram(
            "grpc_server_handling_seconds",
            "Time to answer a gRPC call, by service and method.",
            ["grpc_service", "grpc_method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def counter(self, name: str, documentation: str, labels: list[str]) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def histogram(
        self, name: str, documentation: str, labels: list[str], buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> Histogram:
        return Histogram(name, documentation, labels, buckets=buckets, registry=self.registry)

    def watch_pool(self, pool: AsyncConnectionPool) -> None:
        self.registry.register(_PoolCollector(pool))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _PoolCollector(Collector):
    """Connection pool gauges, read from the pool when scraped."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    def collect(self) -> Iterator[Metric]:
        stats = self._pool.get_stats()
        for key, doc in (
            ("pool_size", "Connections open, in use or idle."),
            ("pool_available", "Idle connections ready for use."),
            ("pool_max", "Most connections the pool may open."),
            ("requests_waiting", "Callers waiting for a connection."),
        ):
            yield GaugeMetricFamily(f"db_{key}", doc, value=stats.get(key, 0))
