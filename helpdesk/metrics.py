"""Prometheus metrics for GET /metrics: requests by route and status, latency, the pool.

Each app has its own registry, so two apps in one process (the tests make many) never share or
double-register series. Labels use the route template, never the path: a path names a ticket or
a person, and one series per ticket would exhaust the scraper.
"""

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool

UNMATCHED = "unmatched"


class _PoolCollector(Collector):
    """The connection pool as it is at scrape time: how many connections requests hold."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        pool = self._engine.pool
        if not isinstance(pool, QueuePool):
            return
        connections = GaugeMetricFamily(
            "helpdesk_db_pool_connections",
            "Database connections in the pool, by state.",
            labels=["state"],
        )
        connections.add_metric(["checked_out"], pool.checkedout())
        connections.add_metric(["idle"], pool.checkedin())
        yield connections
        yield GaugeMetricFamily(
            "helpdesk_db_pool_size", "Connections the pool keeps open.", value=pool.size()
        )


class Metrics:
    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "helpdesk_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "helpdesk_http_request_duration_seconds",
            "Time from receiving a request to its last response byte, by route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(_PoolCollector(engine))

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        route = route or UNMATCHED
        self._requests.labels(method, route, str(status)).inc()
        self._latency.labels(method, route).observe(seconds)
