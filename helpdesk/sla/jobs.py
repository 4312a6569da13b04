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

A run takes workspaces one at a time. For each, a transaction in the workspace's scope takes the
job's transaction-scoped advisory lock with ``pg_try_advisory_xact_lock`` and holds it until the
workspace is done; a second process that finds it taken reports the workspace as skipped and goes
on to the next, so two processes started together share the work rather than doing it twice. The
updates go in short transactions of at most ``batch_size`` tickets, walking on by ticket id, so
no row lock is held for long and a run visits each ticket at most once; a ticket a request holds
at that moment is skipped and left for the next run.

"Now" is this process's clock (``datetime.now(UTC)``), like every timestamp the application
writes, and a parameter, so tests can travel in time.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, exists, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from audit.trail import Actor, record_event
from helpdesk.core.db import tenant_transaction, transaction
from helpdesk.core.errors import AppError
from helpdesk.outbox.service import publish_event
from helpdesk.runtime import Runtime
from helpdesk.sla.service import load_settings
from helpdesk.tickets.models import Comment, Ticket
from helpdesk.tickets.schemas import TicketPriority, TicketStatus
from helpdesk.tickets.service import views
from tenants.context import TenantRef
from tenants.models import TenantStatus
from tenants.registry import get_by_slug, list_tenants, to_ref


class Job(StrEnum):
    """The jobs by their command names (``helpdesk jobs <name>``)."""

    ESCALATE = "escalate"
    AUTO_CLOSE = "auto-close"


# Each changed ticket costs a few statements (its audit event, its webhook deliveries): about
# 6 ms a ticket measured on a busy development machine, so a batch of 100 holds its row locks
# and the audit chain lock for about half a second; 500 took nearly 5 s.
DEFAULT_BATCH_SIZE = 100
# Advisory lock keys are (hashtext(schema), k): 1 assignment, 3 the audit chain, 5 retention;
# these two leave room for other jobs in between.
LOCK_KEYS: dict[Job, int] = {Job.ESCALATE: 11, Job.AUTO_CLOSE: 12}
_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext(current_schema()), :k)")

_LADDER = list(TicketPriority)  # declared from low to critical


def next_priority(priority: str) -> str:
    """One level up; critical is the top and stays."""
    index = _LADDER.index(TicketPriority(priority))
    return _LADDER[min(index + 1, len(_LADDER) - 1)].value


def _record_changes(
    session: Session, job: Job, tickets: Sequence[Ticket], diffs: dict[int, dict[str, Any]]
) -> None:
    """One ``ticket.updated`` webhook and one audit event per changed ticket, as an API change
    would leave, so integrations and the trail see what the job did."""
    for view in views(session, tickets):
        payload = {"ticket": view.out().model_dump(mode="json"), "changes": diffs[view.ticket.id]}
        publish_event(session, "ticket.updated", payload)
    # Audit last: the first append takes the workspace's chain lock, which every audited
    # request also needs, and holds it to commit; this keeps that stretch short.
    actor = Actor.system(job.value)
    for ticket in tickets:
        record_event(
            session,
            actor=actor,
            action="ticket.update",
            target_type="ticket",
            target_id=ticket.id,
            changes=diffs[ticket.id],
        )


def escalate_overdue(session: Session, now: datetime, *, limit: int = DEFAULT_BATCH_SIZE) -> int:
    """Escalate up to ``limit`` overdue tickets in ``session``'s transaction (already in the
    workspace's scope); return how many. Call again until it returns less than ``limit``."""
    return len(_escalate(session, now, limit, after_id=0))


def _escalate(session: Session, now: datetime, limit: int, after_id: int) -> list[int]:
    overdue = session.scalars(
        select(Ticket)
        .where(
            Ticket.id > after_id,
            Ticket.status == TicketStatus.OPEN.value,
            Ticket.assignee_id.is_(None),
            Ticket.first_response_at.is_(None),
            Ticket.sla_due_at < now,
            Ticket.escalated.is_(False),
        )
        .order_by(Ticket.id)
        .limit(limit)
        # A ticket a request is changing right now is left for the next run, not waited for;
        # the row lock re-checks the conditions, so one assigned meanwhile is not escalated.
        .with_for_update(skip_locked=True)
    ).all()
    diffs: dict[int, dict[str, Any]] = {}
    for ticket in overdue:
        diff: dict[str, Any] = {}
        raised = next_priority(ticket.priority)
        if raised != ticket.priority:
            diff["priority"] = {"before": ticket.priority, "after": raised}
            ticket.priority = raised
        diff["escalated"] = {"before": False, "after": True}
        ticket.escalated = True
        if not ticket.sla_breached:
            diff["sla_breached"] = {"before": False, "after": True}
            ticket.sla_breached = True
        ticket.updated_at = now
        diffs[ticket.id] = diff
    session.flush()
    _record_changes(session, Job.ESCALATE, overdue, diffs)
    return [t.id for t in overdue]


def auto_close_pending(
    session: Session, now: datetime, days: int, *, limit: int = DEFAULT_BATCH_SIZE
) -> int:
    """Close up to ``limit`` tickets that have waited in ``pending`` for more than ``days``
    days with no public comment; return how many. ``days`` of 0 or less closes nothing."""
    return len(_auto_close(session, now, days, limit, after_id=0))


def _auto_close(session: Session, now: datetime, days: int, limit: int, after_id: int) -> list[int]:
    if days <= 0:
        return []
    cutoff = now - timedelta(days=days)
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
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    diffs: dict[int, dict[str, Any]] = {}
    for ticket in stale:
        diffs[ticket.id] = {
            "status": {"before": TicketStatus.PENDING.value, "after": TicketStatus.CLOSED.value}
        }
        ticket.status = TicketStatus.CLOSED.value
        ticket.status_changed_at = now
        ticket.updated_at = now
    session.flush()
    _record_changes(session, Job.AUTO_CLOSE, stale, diffs)
    return [t.id for t in stale]


@dataclass(frozen=True, slots=True)
class WorkspaceRun:
    """One workspace's part in a run: what changed, or why nothing was tried."""

    slug: str
    changed: int = 0
    batches: int = 0
    skipped: str | None = None  # another process holds the lock; the workspace is not active
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class JobReport:
    """A whole run: each workspace's part, in the order visited."""

    job: Job
    now: datetime
    workspaces: list[WorkspaceRun] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(run.changed for run in self.workspaces)

    @property
    def skipped(self) -> list[str]:
        return [run.slug for run in self.workspaces if run.skipped is not None]

    @property
    def failed(self) -> list[str]:
        return [run.slug for run in self.workspaces if run.error is not None]

    @property
    def ok(self) -> bool:
        return not self.failed


BUSY = "another run holds this workspace's lock"


def run_job(
    runtime: Runtime,
    job_name: str,
    slugs: Sequence[str] | None = None,
    now: datetime | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> JobReport:
    """Run ``job_name`` (``escalate`` or ``auto-close``) over every active workspace, or only
    ``slugs``, one workspace at a time. A failure in one workspace is reported and the others
    still run."""
    job = Job(job_name)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = now or datetime.now(UTC)
    report = JobReport(job, now)
    for target in _workspaces(runtime.sessions, slugs):
        if isinstance(target, WorkspaceRun):
            report.workspaces.append(target)
        else:
            report.workspaces.append(_run_workspace(runtime.sessions, target, job, now, batch_size))
    return report


def _run_workspace(
    sessions: sessionmaker[Session], tenant: TenantRef, job: Job, now: datetime, batch_size: int
) -> WorkspaceRun:
    try:
        with tenant_transaction(sessions, tenant.schema_name, tenant.role_name) as holder:
            if not holder.scalar(_TRY_LOCK, {"k": LOCK_KEYS[job]}):
                return WorkspaceRun(tenant.slug, skipped=BUSY)
            step = _step(job, holder, now, batch_size)
            changed = batches = last_id = 0
            while True:
                with tenant_transaction(sessions, tenant.schema_name, tenant.role_name) as batch:
                    done = step(batch, last_id)
                if done:
                    changed += len(done)
                    batches += 1
                    # Changed tickets no longer match anyway; walking the ids as well makes
                    # every ticket's visit its last, so the loop ends whatever happens.
                    last_id = done[-1]
                if len(done) < batch_size:
                    return WorkspaceRun(tenant.slug, changed=changed, batches=batches)
    except (SQLAlchemyError, ValueError) as exc:
        # A database error, or a row the rules cannot read (an unknown priority, say). Batches
        # committed before the failure stay done; a rerun carries on from there.
        return WorkspaceRun(tenant.slug, error=str(exc).splitlines()[0])


def _step(
    job: Job, holder: Session, now: datetime, batch_size: int
) -> Callable[[Session, int], list[int]]:
    """One batch of the job: (session, after_id) -> ids changed, in ascending order."""
    if job is Job.ESCALATE:
        return lambda batch, after_id: _escalate(batch, now, batch_size, after_id)
    days = load_settings(holder).auto_close_days
    return lambda batch, after_id: _auto_close(batch, now, days, batch_size, after_id)


def _workspaces(
    sessions: sessionmaker[Session], slugs: Sequence[str] | None
) -> list[TenantRef | WorkspaceRun]:
    found: list[TenantRef | WorkspaceRun] = []
    with transaction(sessions) as session:
        if slugs is not None:
            for slug in slugs:
                try:
                    tenant = to_ref(get_by_slug(session, slug))
                except AppError as exc:
                    found.append(WorkspaceRun(slug, error=exc.detail))
                    continue
                if tenant.status == TenantStatus.ACTIVE.value:
                    found.append(tenant)
                else:
                    found.append(WorkspaceRun(slug, skipped=f"workspace is {tenant.status}"))
            return found
        after: str | None = None
        while page := list_tenants(session, after=after, limit=500):
            found.extend(to_ref(t) for t in page if t.status == TenantStatus.ACTIVE.value)
            after = page[-1].slug
    return found
