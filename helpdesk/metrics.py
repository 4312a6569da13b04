"""Prometheus metrics for GET /metrics: requests by route and status, latency, the pool.

Each app has its own registry, so two apps in one process (the tests make many) never share or
double-register series. Labels use the route template, never the path: a path names a ticket or
a person, and one series per ticket would exhaust the scraper.
"""

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.pool import QueuePool

from helpdesk.core.settings import Settings
from helpdesk.runtime import RequestPath

UNMATCHED = "unmatched"


class _RequestPathCollector(Collector):
    """The pool and admission control as they are at scrape time, with the limits in force."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.path: RequestPath | None = None

    def collect(self) -> Iterator[Metric]:
        settings = self._settings
        yield GaugeMetricFamily(
            "helpdesk_pool_wait_limit_seconds",
            "How long a request may wait for a connection before 503 overloaded.",
            value=settings.pool_wait_seconds,
        )
        yield GaugeMetricFamily(
            "helpdesk_workspace_rate_limit_per_second",
            "Requests per second one workspace may make, per process, before 429.",
            value=settings.workspace_rate_per_second,
        )
        yield GaugeMetricFamily(
            "helpdesk_workspace_rate_limit_burst",
            "Requests one workspace may make at once, per process, before 429.",
            value=settings.workspace_rate_burst,
        )
        path = self.path
        if path is None:
            return
        admission = path.admission
        yield GaugeMetricFamily(
            "helpdesk_workspace_connection_limit",
            "Connections one workspace may hold at once, per process (its share of the pool).",
            value=admission.per_key,
        )
        admitted = GaugeMetricFamily(
            "helpdesk_admission_requests",
            "Requests holding or waiting for a database connection, by state.",
            labels=["state"],
        )
        admitted.add_metric(["in_use"], admission.stats.in_use)
        admitted.add_metric(["waiting"], admission.stats.waiting)
        yield admitted
        refused = CounterMetricFamily(
            "helpdesk_requests_refused",
            "Requests refused before reaching the database, by reason "
            "(overloaded: 503 after the wait bound; rate_limited: 429).",
            labels=["reason"],
        )
        refused.add_metric(["overloaded"], admission.stats.rejected)
        refused.add_metric(["rate_limited"], path.rate_limiter.refused)
        yield refused
        pool = path.engine.sync_engine.pool
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
    def __init__(self, settings: Settings) -> None:
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
        self._path = _RequestPathCollector(settings)
        self.registry.register(self._path)

    def watch(self, path: RequestPath) -> None:
        """Report the request path the app opened for its event loop."""
        self._path.path = path

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        route = route or UNMATCHED
        self._requests.labels(method, route, str(status)).inc()
        self._latency.labels(method, route).observe(seconds)
