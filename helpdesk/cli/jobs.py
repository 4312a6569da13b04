"""``helpdesk jobs``: the periodic work, each over every active workspace or only ``--tenant``.

Every job runs one workspace at a time under that workspace's own scope, reports each workspace's
outcome, and exits 1 when any workspace failed (the others still ran), so a scheduler notices.
"""

import logging
import signal
import threading
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from helpdesk.cli.console import err, open_runtime, out
from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime

jobs_app = typer.Typer(no_args_is_help=True, help="Periodic jobs: SLA, delivery, retention.")

TenantOption = Annotated[
    list[str] | None,
    typer.Option("--tenant", help="Only this workspace slug (repeatable)."),
]


def _run_sla_job(job: str, tenant: list[str] | None, batch_size: int) -> None:
    from helpdesk.sla.jobs import run_job, tickets_changed

    with open_runtime() as runtime:
        report = run_job(runtime, job, slugs=tenant, batch_size=batch_size)
    table = Table("workspace", "changed", "batches", "note", title=f"{job} at {report.now:%c %Z}")
    for run in report.workspaces:
        note = f"[red]failed[/]: {run.error}" if run.error else (run.skipped or "")
        done = run.result
        changed, batches = (str(done.changed), str(done.batches)) if done else ("0", "0")
        table.add_row(run.slug, changed, batches, note)
    out.print(table)
    err.print(
        f"{job}: {tickets_changed(report)} ticket(s) changed in {len(report.workspaces)}"
        f" workspace(s); {len(report.skipped)} skipped, {len(report.failed)} failed"
    )
    raise typer.Exit(0 if report.ok else 1)


BatchSize = Annotated[int, typer.Option(min=1, max=100_000, help="Tickets per transaction.")]


@jobs_app.command("escalate")
def escalate(tenant: TenantOption = None, batch_size: BatchSize = 100) -> None:
    """Raise the priority of overdue, open, unassigned tickets one level and mark them escalated.

    Idempotent: an escalated ticket is not escalated again. Two runs at once never work the same
    workspace together; the second skips it."""
    _run_sla_job("escalate", tenant, batch_size)


@jobs_app.command("auto-close")
def auto_close(tenant: TenantOption = None, batch_size: BatchSize = 100) -> None:
    """Close tickets that have waited on the customer for the workspace's auto-close days."""
    _run_sla_job("auto-close", tenant, batch_size)


@jobs_app.command("deliver-webhooks")
def deliver_webhooks(
    tenant: TenantOption = None,
    loop: Annotated[
        bool, typer.Option("--loop", help="Keep delivering until Ctrl-C or SIGTERM.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.5, max=3600, help="Seconds between passes with --loop.")
    ] = 5.0,
) -> None:
    """Send due webhooks and e-mails from the outbox, retrying failures with backoff."""
    from helpdesk.outbox.worker import deliver_all, run_worker

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with open_runtime() as runtime:
        unknown = _unknown_slugs(runtime, tenant or [])
        if unknown:
            err.print(f"[red]error:[/] no workspace has the slug(s): {', '.join(unknown)}")
            raise typer.Exit(1)
        if loop:
            stop = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            run_worker(runtime, stop=stop, interval_seconds=interval, slugs=tenant)
            return
        report = deliver_all(runtime, slugs=tenant)
    out.print(report.summary())
    for error in report.errors:
        err.print(f"[red]failed[/] {error}")
    raise typer.Exit(1 if report.errors else 0)


def _unknown_slugs(runtime: Runtime, slugs: list[str]) -> list[str]:
    # The worker skips workspaces that are not active (their messages wait); a slug that names
    # no workspace at all is a typo the operator must hear about.
    from tenants.models import Tenant

    with transaction(runtime.sessions) as session:
        known = set(session.scalars(select(Tenant.slug).where(Tenant.slug.in_(slugs))))
    return [slug for slug in slugs if slug not in known]


@jobs_app.command("retention")
def retention(
    tenant: TenantOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be removed; remove nothing.")
    ] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Rows per delete transaction.")
    ] = 1000,
) -> None:
    """Purge closed tickets and audit events older than each workspace's policy allows."""
    from helpdesk.compliance.service import run_retention_job

    with open_runtime() as runtime:
        run = run_retention_job(
            runtime.sessions, slugs=tenant, dry_run=dry_run, batch_size=batch_size
        )
    title = "Retention (dry run: nothing removed)" if dry_run else "Retention"
    table = Table(
        "workspace", "tickets", "comments", "audit events", "batches", "note", title=title
    )
    for outcome in run.workspaces:
        report = outcome.result
        if report is None:
            note = "[red]failed[/]" if outcome.error else "skipped"
            table.add_row(outcome.slug, "-", "-", "-", "-", note)
            reason = f"[red]failed[/]: {outcome.error}" if outcome.error else outcome.skipped
            err.print(f"{outcome.slug}: {reason}", soft_wrap=True)
            continue
        table.add_row(
            outcome.slug,
            str(report.tickets),
            str(report.comments),
            str(report.audit_events),
            str(report.batches),
            "legal hold: nothing removed" if report.legal_hold else "",
        )
    out.print(table)
    raise typer.Exit(0 if run.ok else 1)
