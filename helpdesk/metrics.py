"""Prometheus metrics for GET /metrics: requests by route and status, latency, the pool, and the
in-process worker's jobs, outbox backlog and schema pool.

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
from helpdesk.worker.stats import WorkerStats

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


class _WorkerCollector(Collector):
    """The worker of this process, as its jobs have recorded: runs, failures, the last run in
    which nothing failed, each job's interval (so an alert can compare the two), and the outbox
    backlog the delivery job last counted."""

    def __init__(self, stats: WorkerStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        jobs = self._stats.jobs()
        runs = CounterMetricFamily(
            "helpdesk_job_runs", "Runs of each scheduled job in this process.", labels=["job"]
        )
        failures = CounterMetricFamily(
            "helpdesk_job_failures",
            "Workspaces whose run of the job failed, and runs that failed before reaching any.",
            labels=["job"],
        )
        last_success = GaugeMetricFamily(
            "helpdesk_job_last_success_timestamp_seconds",
            "When the job last finished a run in which no workspace failed (Unix time).",
            labels=["job"],
        )
        interval = GaugeMetricFamily(
            "helpdesk_job_interval_seconds", "How often the job runs.", labels=["job"]
        )
        for name, counts in jobs.items():
            runs.add_metric([name], counts.runs)
            failures.add_metric([name], counts.failures)
            interval.add_metric([name], counts.every_seconds)
            if counts.last_success is not None:
                last_success.add_metric([name], counts.last_success)
        yield from (runs, failures, last_success, interval)
        pool = self._stats.pool()
        if pool is not None:
            depth = GaugeMetricFamily(
                "helpdesk_schema_pool_depth",
                "Workspace schemas ready in the schema pool, as the fill job last counted them: "
                "when its last run began (what provisioning left) and when it ended.",
                labels=["moment"],
            )
            depth.add_metric(["run_start"], pool.found)
            depth.add_metric(["run_end"], pool.depth)
            yield depth
            yield CounterMetricFamily(
                "helpdesk_schema_pool_built",
                "Schemas the fill job of this process has built for the pool.",
                value=pool.built,
            )
        backlog = self._stats.backlog()
        if backlog is None:
            return
        waiting = GaugeMetricFamily(
            "helpdesk_outbox_backlog",
            "Outbox messages waiting to be sent (not delivered, not given up), by kind, as the "
            "delivery job last counted them.",
            labels=["kind"],
        )
        for kind in sorted({"webhook", "email", *backlog}):
            waiting.add_metric([kind], backlog.get(kind, 0))
        yield waiting


def worker_registry(stats: WorkerStats) -> CollectorRegistry:
    """A registry of the worker's metrics alone, for `helpdesk worker --metrics-port`."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_WorkerCollector(stats))
    return registry


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
        self._worker: _WorkerCollector | None = None

    def watch(self, path: RequestPath) -> None:
        """Report the request path the app opened for its event loop."""
        self._path.path = path

    def watch_worker(self, stats: WorkerStats | None) -> None:
        """Report the in-process worker's jobs, or (None) stop reporting them: an app whose
        lifespan runs again starts a new worker."""
        if self._worker is not None:
            self.registry.unregister(self._worker)
            self._worker = None
        if stats is not None:
            self._worker = _WorkerCollector(stats)
            self.registry.register(self._worker)

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        route = route or UNMATCHED
        self._requests.labels(method, route, str(status)).inc()
        self._latency.labels(method, route).observe(seconds)
