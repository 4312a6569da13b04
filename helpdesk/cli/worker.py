"""``helpdesk worker``: the scheduled jobs without HTTP, for deployments that run them apart from
``helpdesk serve --no-worker`` (any number of either: each workspace's advisory locks keep two
processes out of the same job in the same workspace)."""

import logging.config
import signal
import threading
from typing import Annotated

import typer

from helpdesk.cli.console import LOGGING, err, open_runtime

# How often the main thread looks at the stop flag: a signal handler only runs between the
# main thread's bytecodes.
_POLL_SECONDS = 0.5


def worker(
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", help="Only this workspace slug (repeatable)."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Serve the jobs' Prometheus metrics (GET /metrics) on this port.",
        ),
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Address for --metrics-port.")] = "127.0.0.1",
) -> None:
    """Run escalation, auto-close, delivery and retention on their schedules until SIGTERM or
    Ctrl-C (HELPDESK_*_EVERY_SECONDS set the intervals)."""
    from helpdesk.metrics import worker_registry
    from helpdesk.worker.loop import Worker

    logging.config.dictConfig(LOGGING)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with open_runtime() as runtime:
        jobs = Worker.for_runtime(runtime, slugs=tenant)
        exporter = None
        if metrics_port is not None:
            from prometheus_client import start_http_server

            exporter, _ = start_http_server(
                metrics_port, addr=metrics_host, registry=worker_registry(jobs.stats)
            )
            err.print(f"metrics on http://{metrics_host}:{metrics_port}/metrics")
        jobs.start()
        try:
            while not stop.wait(_POLL_SECONDS):
                pass
        finally:
            jobs.stop(runtime.settings.shutdown_grace_seconds)
            if exporter is not None:
                exporter.shutdown()
