"""The scheduled ticket jobs: escalate overdue unanswered tickets, close tickets left pending.

Decisions (issue items 4 and 5):

- **Escalation** picks tickets that are ``open``, unassigned, unanswered (no first agent
  response) and past ``sla_due_at``, and not escalated yet. Each moves up one priority
  (low → medium → high → critical; critical stays critical), and is marked ``escalated`` and
  ``sla_breached`` (its first response is now late whatever happens next). A ticket is escalated
  once: ``escalated`` is what makes a second run at the same moment change nothing.
  ``sla_due_at`` is kept, so it still shows the deadline that was missed.
- **Auto-close** closes tickets ``pending`` for longer than the workspace's ``auto_close_days``
  (7 by default; 0 or less turns it off). The wait counts from the later of the move to
  ``pending`` and the last public comment: nothing moves a ticket out of ``pending`` when the
  customer answers, and a ticket the customer has just answered must not be closed under them.
- Every changed ticket gets the audit event and the ``ticket.updated`` webhook that the same
  change made through the API would get, in the same transaction, with a ``system:<job>`` actor.

Both run on the one per-workspace runner (``tenants.jobs``: which workspaces, the advisory
lock, batches, the report); each is a function of one workspace. A ticket a request holds at
that moment is skipped (``SKIP LOCKED``) and left for the next run. Each change goes through the
tickets service's ``change_tickets``, the same path a PATCH takes.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from audit.trail import Actor
from helpdesk.runtime import Runtime
from helpdesk.sla.service import load_settings
from helpdesk.tickets.models import Comment, Ticket
from helpdesk.tickets.schemas import TicketPriority, TicketStatus
from helpdesk.tickets.service import alert_breaches, change_tickets
from tenants.jobs import Job, JobReport, WorkspaceRun, run_each_workspace
from tenants.locks import LockKey

# Each changed ticket costs a few statements (its audit event, its webhook deliveries): about
# 6 ms a ticket measured on a busy development machine, so a batch of 100 holds its row locks
# and the audit chain lock for about half a second; 500 took nearly 5 s.
DEFAULT_BATCH_SIZE = 100

_LADDER = list(TicketPriority)  # declared from low to critical


def next_priority(priority: str) -> str:
    """One level up; critical is the top and stays."""
    index = _LADDER.index(TicketPriority(priority))
    return _LADDER[min(index + 1, len(_LADDER) - 1)].value


@dataclass(frozen=True, slots=True)
class TicketsChanged:
    """One workspace's part in a ticket job: tickets changed, in how many batches."""

    changed: int = 0
    batches: int = 0  # of changes
    # Tickets whose first-response breach was alerted (escalation only).
    alerted: int = 0


def escalate(run: WorkspaceRun) -> TicketsChanged:
    """Escalate the workspace's overdue tickets, ``run.batch_size`` at a time, then alert
    every breach not alerted yet (an escalation is one, so it is alerted in the same run)."""
    done = run.batches_in_transactions(lambda batch, after_id: _escalate(batch, run, after_id))
    alerts = run.batches_in_transactions(
        lambda batch, after_id: alert_breaches(
            batch, now=run.now, after_id=after_id, limit=run.batch_size
        )
    )
    return TicketsChanged(done.rows, done.batches, alerts.rows)


def _escalate(session: Session, run: WorkspaceRun, after_id: int) -> list[int]:
    overdue = session.scalars(
        select(Ticket)
        .where(
            Ticket.id > after_id,
            Ticket.status == TicketStatus.OPEN.value,
            Ticket.assignee_id.is_(None),
            Ticket.first_response_at.is_(None),
            Ticket.sla_due_at < run.now,
            Ticket.escalated.is_(False),
        )
        .order_by(Ticket.id)
        .limit(run.batch_size)
        # A ticket a request is changing right now is left for the next run, not waited for;
        # the row lock re-checks the conditions, so one assigned meanwhile is not escalated.
        .with_for_update(skip_locked=True)
    ).all()
    edits: list[tuple[Ticket, dict[str, Any]]] = [
        (
            ticket,
            # Its first response is late now whatever happens next; the missed deadline stays.
            {"priority": next_priority(ticket.priority), "escalated": True, "sla_breached": True},
        )
        for ticket in overdue
    ]
    change_tickets(session, edits, audit_as=Actor.system(ESCALATE.name), now=run.now)
    return [t.id for t in overdue]


def auto_close(run: WorkspaceRun) -> TicketsChanged:
    """Close the workspace's tickets left pending past its ``auto_close_days``."""
    days = load_settings(run.session).auto_close_days
    if days <= 0:
        return TicketsChanged()
    done = run.batches_in_transactions(
        lambda batch, after_id: _auto_close(batch, run, days, after_id)
    )
    return TicketsChanged(done.rows, done.batches)


def _auto_close(session: Session, run: WorkspaceRun, days: int, after_id: int) -> list[int]:
    cutoff = run.now - timedelta(days=days)
    recent_reply = exists().where(
        and_(
            Comment.ticket_id == Ticket.id,
            Comment.public.is_(True),
            Comment.created_at >= cutoff,
        )
    )
    stale = session.scalars(
        select(Ticket)
        .where(
            Ticket.id > after_id,
            Ticket.status == TicketStatus.PENDING.value,
            Ticket.status_changed_at < cutoff,
            ~recent_reply,
        )
        .order_by(Ticket.id)
        .limit(run.batch_size)
        .with_for_update(skip_locked=True)
    ).all()
    closed = {"status": TicketStatus.CLOSED.value}
    actor = Actor.system(AUTO_CLOSE.name)
    change_tickets(session, [(ticket, closed) for ticket in stale], audit_as=actor, now=run.now)
    return [t.id for t in stale]


ESCALATE = Job("escalate", LockKey.ESCALATION, escalate, DEFAULT_BATCH_SIZE)
AUTO_CLOSE = Job("auto-close", LockKey.AUTO_CLOSE, auto_close, DEFAULT_BATCH_SIZE)
JOBS: dict[str, Job[TicketsChanged]] = {job.name: job for job in (ESCALATE, AUTO_CLOSE)}


def run_job(
    runtime: Runtime,
    job_name: str,
    slugs: Sequence[str] | None = None,
    now: datetime | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> JobReport[TicketsChanged]:
    """Run ``job_name`` (``escalate`` or ``auto-close``) over every active workspace, or only
    ``slugs``, one workspace at a time. A failure in one workspace is reported and the others
    still run."""
    job = JOBS.get(job_name)
    if job is None:
        raise ValueError(f"no ticket job is named {job_name!r}; there are {sorted(JOBS)}")
    return run_each_workspace(runtime.sessions, job, slugs=slugs, now=now, batch_size=batch_size)


def tickets_changed(report: JobReport[TicketsChanged]) -> int:
    return sum(result.changed for result in report.results)
