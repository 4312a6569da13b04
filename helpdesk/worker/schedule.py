"""Which jobs the worker runs and how often: escalation and auto-close every minute, delivery
every five seconds, retention daily, filling the schema pool every ten seconds by default
(``HELPDESK_*_EVERY_SECONDS``).

Each workspace job runs one pass over every workspace it works in, through the one runner
(``tenants.jobs``): each workspace under the job's advisory lock, so any number of processes may
run the same schedule, and a failure stays in its workspace. Filling the schema pool works no
workspace: it builds schemas that are none yet, under a platform-wide lock of its own.
"""

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from auth.throttle import forget_stale
from helpdesk.compliance.service import retention_job
from helpdesk.core.db import transaction
from helpdesk.outbox.worker import DeliveryReport, delivery_pass, provider_health
from helpdesk.runtime import Runtime
from helpdesk.sla.jobs import AUTO_CLOSE, ESCALATE, TicketsChanged, tickets_changed
from migrations.models import tenant_ddl
from tenants.jobs import Job, JobReport, WorkspaceOutcome, run_each_workspace
from tenants.pool import PoolFill, fill_pool
from tenants.schema import tenant_head

FILL_SCHEMA_POOL = "fill-schema-pool"
# The one outcome in a fill run's report: the pool's, since the run works no workspace.
SCHEMA_POOL = "schema pool"

log = logging.getLogger("helpdesk.worker")

# Asked before each workspace: true once the worker is stopping.
Stopping = Callable[[], bool]


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """A job the worker runs every ``every_seconds``: ``run`` makes one pass; ``describe``
    says what a pass did, or None when it did nothing worth a log line; ``backlog``, for
    delivery, reads each workspace's outbox backlog from its result; ``fills_pool``: the job's
    one outcome is the schema pool's (a ``PoolFill``), for the pool's figures."""

    name: str
    every_seconds: float
    run: Callable[[Stopping], JobReport[Any]]
    describe: Callable[[JobReport[Any]], str | None]
    backlog: Callable[[Any], Mapping[str, int]] | None = None
    fills_pool: bool = False


def _tickets_job(
    runtime: Runtime, job: Job[TicketsChanged], every: float, slugs: Sequence[str] | None
) -> ScheduledJob:
    def run(stopping: Stopping) -> JobReport[TicketsChanged]:
        return run_each_workspace(runtime.sessions, job, slugs=slugs, stopping=stopping)

    def describe(report: JobReport[TicketsChanged]) -> str | None:
        changed = tickets_changed(report)
        return f"{changed} ticket(s) changed" if changed else None

    return ScheduledJob(job.name, every, run, describe)


def _describe_delivery(report: JobReport[DeliveryReport]) -> str | None:
    total = DeliveryReport.total(report)
    return total.summary() if total.delivered or total.retrying or total.failed else None


def _describe_retention(report: JobReport[Any]) -> str | None:
    removed = sum(r.tickets + r.audit_events for r in report.results)
    return f"{removed} closed ticket(s) and audit event(s) removed" if removed else None


def _retention_pass(
    runtime: Runtime, slugs: Sequence[str] | None, stopping: Stopping
) -> JobReport[Any]:
    """The retention job over the workspaces, then, on a pass over the whole deployment, the
    sign-in counters past their window (public, so no workspace's run owns them)."""
    report = run_each_workspace(runtime.sessions, retention_job(), slugs=slugs, stopping=stopping)
    if slugs is None and not stopping():
        with transaction(runtime.sessions) as session:
            forgotten = forget_stale(session, runtime.settings, report.now)
        log.info("retention: %d stale sign-in counter(s) forgotten", forgotten)
    return report


def _describe_pool(report: JobReport[PoolFill]) -> str | None:
    for fill in report.results:
        if fill.built or fill.dropped:
            return f"{fill.built} schema(s) built, {fill.dropped} dropped, {fill.depth} ready"
    return None


def _pool_job(runtime: Runtime) -> ScheduledJob:
    settings = runtime.settings

    def run(stopping: Stopping) -> JobReport[PoolFill]:
        now = datetime.now(UTC)
        fill = fill_pool(
            runtime.sessions,
            size=settings.schema_pool_size,
            ddl=tenant_ddl(),
            head=tenant_head(),
            stopping=stopping,
        )
        return JobReport(FILL_SCHEMA_POOL, now, [WorkspaceOutcome(SCHEMA_POOL, result=fill)])

    return ScheduledJob(
        FILL_SCHEMA_POOL,
        settings.schema_pool_every_seconds,
        run,
        _describe_pool,
        fills_pool=True,
    )


def default_schedule(runtime: Runtime, *, slugs: Sequence[str] | None = None) -> list[ScheduledJob]:
    """Every job on its configured interval, over every workspace it works in, or only
    ``slugs`` (`helpdesk worker --tenant`, which leaves the schema pool alone: it is for
    working chosen workspaces). A pool size of 0 leaves the fill job out."""
    settings = runtime.settings
    # For the life of the process: a provider that failed stays skipped across runs until its
    # cool-down ends, rather than failing once more at the start of every run.
    mail_health = provider_health(settings)
    jobs = [
        _tickets_job(runtime, ESCALATE, settings.escalate_every_seconds, slugs),
        _tickets_job(runtime, AUTO_CLOSE, settings.auto_close_every_seconds, slugs),
        ScheduledJob(
            "deliver",
            settings.deliver_every_seconds,
            lambda stopping: delivery_pass(
                runtime, slugs=slugs, stopping=stopping, mail_health=mail_health
            ),
            _describe_delivery,
            backlog=lambda result: result.backlog,
        ),
        ScheduledJob(
            retention_job().name,
            settings.retention_every_seconds,
            lambda stopping: _retention_pass(runtime, slugs, stopping),
            _describe_retention,
        ),
    ]
    if slugs is None and settings.schema_pool_size > 0:
        jobs.append(_pool_job(runtime))
    return jobs
