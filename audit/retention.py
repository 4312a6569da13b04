"""Retention: a workspace's policy, and the job that purges closed tickets and old audit events.

A run holds the workspace's retention lock (a transaction-scoped advisory lock) in the caller's
transaction, the request's or the job runner's, from start to end, so one run at a time reaches
a workspace; the deletes themselves go in short transactions of at most ``batch_size`` rows
(``tenants.jobs.WorkspaceRun.batches_in_transactions``), so no row lock is held for long and the
rest of the workspace keeps working. The scheduled job is the one per-workspace runner's
(``tenants.jobs``), in active and suspended workspaces alike: a suspension stops the workspace's
users, not its retention policy. Audit events go oldest
first, and every batch records a checkpoint with the hash of its last event, so the remaining
chain still verifies (``audit.queries.chain_start``).

Closed tickets (and their comments) belong to the tickets domain, above this package: it hands
its ``purge_closed`` / ``count_closed`` in as a ``ClosedTickets`` (``helpdesk.compliance.service``
binds them), so this module runs no SQL on another package's tables.

Ages are measured against the clock of this process (``now``), like every timestamp the
application writes, rather than the database server's.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import takewhile
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, Result, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, sessionmaker

from audit.models import AuditCheckpoint, RetentionPolicy
from audit.trail import Actor, record_event
from helpdesk.core.db import set_tenant_scope
from helpdesk.core.errors import Conflict
from tenants.context import TenantRef
from tenants.jobs import Job, JobReport, WorkspaceRun, run_each_workspace
from tenants.locks import LockKey, try_lock_workspace
from tenants.models import TenantStatus

POLICY_FIELDS = ("closed_ticket_days", "audit_event_days", "legal_hold")
RETENTION_JOB = "retention"  # the command, and the system actor its runs are audited as
DEFAULT_BATCH_SIZE = 1000
_OLDEST_EVENTS = text("SELECT id, hash, occurred_at FROM audit_events ORDER BY id LIMIT :limit")
_DELETE_EVENTS = text("DELETE FROM audit_events WHERE id <= :last_id")
# The purge removes a prefix of the chain: events up to the first one young enough to keep.
_COUNT_EXPIRED_EVENTS = text(
    "WITH boundary AS (SELECT min(id) AS id FROM audit_events WHERE occurred_at >= :cutoff)"
    " SELECT count(*) FROM audit_events, boundary"
    " WHERE boundary.id IS NULL OR audit_events.id < boundary.id"
)


@dataclass(frozen=True, slots=True)
class PurgedTickets:
    """What one purge batch removed, or a count would remove: the tickets' ids (none for a
    count), how many tickets and how many of their comments."""

    ids: list[int]
    tickets: int
    comments: int


class ClosedTickets(Protocol):
    """The tickets domain's side of retention: closed tickets whose status last changed before
    ``cutoff`` (strictly), with their comments and tags."""

    def count_closed(self, session: Session, *, cutoff: datetime) -> PurgedTickets: ...

    def purge_closed(
        self, session: Session, *, cutoff: datetime, after: int, limit: int
    ) -> PurgedTickets:
        """Delete the next ``limit`` such tickets with ids above ``after``, skipping any a
        request holds."""
        ...


@dataclass(slots=True)
class RetentionReport:
    """What one run removed, or with ``dry_run`` would have removed, from one workspace."""

    workspace: str
    dry_run: bool
    legal_hold: bool
    closed_ticket_days: int | None
    audit_event_days: int | None
    ticket_cutoff: datetime | None
    audit_cutoff: datetime | None
    tickets: int = 0
    comments: int = 0
    audit_events: int = 0
    batches: int = 0
    checkpoints: int = 0

    def audit_changes(self) -> dict[str, Any]:
        """The run as its audit event records it."""
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in asdict(self).items()
            if key != "workspace"
        }


def load_policy(session: Session) -> RetentionPolicy:
    """The workspace's policy, or the default (keep everything, no hold) if it never saved one."""
    row = session.scalars(select(RetentionPolicy)).one_or_none()
    if row is not None:
        return row
    return RetentionPolicy(id=1, closed_ticket_days=None, audit_event_days=None, legal_hold=False)


def update_policy(
    session: Session, changes: dict[str, Any], *, now: datetime | None = None
) -> tuple[RetentionPolicy, dict[str, Any]]:
    """Apply ``changes`` (any of POLICY_FIELDS; a null number of days means keep for ever) and
    return the policy with ``{field: {before, after}}`` for what really changed."""
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ValueError(f"not retention policy fields: {sorted(unknown)}")
    session.execute(pg_insert(RetentionPolicy).values(id=1).on_conflict_do_nothing())
    policy = session.scalars(select(RetentionPolicy).with_for_update()).one()
    diff: dict[str, Any] = {}
    for field, value in changes.items():
        before = getattr(policy, field)
        if before != value:
            setattr(policy, field, value)
            diff[field] = {"before": before, "after": value}
    if diff:
        policy.updated_at = now or datetime.now(UTC)
    session.flush()
    return policy, diff


@contextmanager
def owner_role(session: Session, tenant: TenantRef) -> Iterator[None]:
    """Run the enclosed statements as the session's own (owner) role, then drop back to the
    workspace's role.

    The workspace role may only append to the audit trail (``audit.schema_sql``); the retention
    purge and GDPR erasure are the two writers allowed to change it, and only inside this block.
    On an error the transaction rolls back, and the role setting with it.
    """
    session.flush()
    # Not the login role: the service owns nothing and may not touch a workspace's tables
    # itself. helpdesk_maintenance may (README "Database roles"), and only here.
    session.execute(text("SELECT set_config('role', 'helpdesk_maintenance', true)"))
    yield
    session.flush()
    set_tenant_scope(session, tenant.schema_name, tenant.role_name)


def run_retention(
    session: Session,
    sessions: sessionmaker[Session],
    tenant: TenantRef,
    *,
    tickets: ClosedTickets,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> RetentionReport:
    """A run on demand (``POST /retention/run``): take the workspace's retention lock in
    ``session``, the caller's transaction, already in ``tenant``'s scope, and ``retain``.

    The lock holds until that transaction ends, which is where the caller records the run's
    audit event. Raises Conflict if another run holds the lock.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if not try_lock_workspace(session, LockKey.RETENTION):
        raise Conflict(
            "A retention run is already under way in this workspace; try again when it ends.",
            code="retention_running",
        )
    return retain(
        WorkspaceRun(tenant, session, sessions, now or datetime.now(UTC), batch_size),
        tickets=tickets,
        dry_run=dry_run,
    )


def retain(run: WorkspaceRun, *, tickets: ClosedTickets, dry_run: bool) -> RetentionReport:
    """Purge (or count, with ``dry_run``) what the workspace's policy no longer keeps. The
    caller holds the retention lock in ``run.session``; deletes go in transactions of their own.
    """
    policy = load_policy(run.session)
    report = RetentionReport(
        workspace=run.tenant.slug,
        dry_run=dry_run,
        legal_hold=policy.legal_hold,
        closed_ticket_days=policy.closed_ticket_days,
        audit_event_days=policy.audit_event_days,
        ticket_cutoff=_cutoff(run.now, policy.closed_ticket_days),
        audit_cutoff=_cutoff(run.now, policy.audit_event_days),
    )
    if policy.legal_hold:
        return report  # a legal hold keeps everything
    if report.ticket_cutoff is not None:
        if dry_run:
            counted = tickets.count_closed(run.session, cutoff=report.ticket_cutoff)
            report.tickets, report.comments = counted.tickets, counted.comments
        else:
            _purge_tickets(run, report, tickets, cutoff=report.ticket_cutoff)
    if report.audit_cutoff is not None:
        if dry_run:
            report.audit_events = run.session.execute(
                _COUNT_EXPIRED_EVENTS, {"cutoff": report.audit_cutoff}
            ).scalar_one()
        else:
            _purge_events(run, report, cutoff=report.audit_cutoff)
    return report


def _cutoff(now: datetime, days: int | None) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def _rowcount(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def _purge_tickets(
    run: WorkspaceRun, report: RetentionReport, tickets: ClosedTickets, *, cutoff: datetime
) -> None:
    def purge(batch: Session, after: int) -> list[int]:
        purged = tickets.purge_closed(batch, cutoff=cutoff, after=after, limit=run.batch_size)
        report.tickets += purged.tickets
        report.comments += purged.comments
        return purged.ids

    report.batches += run.batches_in_transactions(purge).batches


def _purge_events(run: WorkspaceRun, report: RetentionReport, *, cutoff: datetime) -> None:
    # No chain lock needed: appends only ever add at the head, and a writer reading the head
    # sees, in one statement's snapshot, either the events or the checkpoint that replaced them.
    def purge(batch: Session, _after: int) -> list[int]:
        # Always the oldest events: the ones before them are gone.
        oldest = batch.execute(_OLDEST_EVENTS, {"limit": run.batch_size}).all()
        expired = list(takewhile(lambda e: e.occurred_at < cutoff, oldest))
        if expired:
            last = expired[-1]
            with owner_role(batch, run.tenant):
                batch.add(
                    AuditCheckpoint(
                        created_at=run.now,
                        last_purged_id=last.id,
                        last_hash=last.hash,
                        purged_count=len(expired),
                    )
                )
                batch.flush()
                purged = _rowcount(batch.execute(_DELETE_EVENTS, {"last_id": last.id}))
            report.audit_events += purged
            report.checkpoints += 1
        return [event.id for event in expired]

    report.batches += run.batches_in_transactions(purge).batches


def _retention_run(run: WorkspaceRun, *, tickets: ClosedTickets, dry_run: bool) -> RetentionReport:
    report = retain(run, tickets=tickets, dry_run=dry_run)
    record_event(
        run.session,
        actor=Actor.system(RETENTION_JOB),
        action="retention.run",
        target_type="retention_policy",
        changes=report.audit_changes(),
    )
    return report


def retention_job(*, tickets: ClosedTickets, dry_run: bool = False) -> Job[RetentionReport]:
    """The scheduled job: each run audited as the system's, in the run's own transaction."""
    return Job(
        RETENTION_JOB,
        LockKey.RETENTION,
        partial(_retention_run, tickets=tickets, dry_run=dry_run),
        DEFAULT_BATCH_SIZE,
        statuses=frozenset({TenantStatus.ACTIVE, TenantStatus.SUSPENDED}),
    )


def run_retention_job(
    sessions: sessionmaker[Session],
    *,
    tickets: ClosedTickets,
    slugs: Sequence[str] | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> JobReport[RetentionReport]:
    """Every workspace (or ``slugs``), one at a time, through the one job runner. A failure in
    one workspace is reported and the others still run."""
    return run_each_workspace(
        sessions,
        retention_job(tickets=tickets, dry_run=dry_run),
        slugs=slugs,
        now=now,
        batch_size=batch_size,
    )
