"""Retention: a workspace's policy, and the job that purges closed tickets and old audit events.

A run holds the workspace's retention lock (a transaction-scoped advisory lock) in the caller's
transaction, the request's or the job's own, from start to end, so one run at a time reaches a
workspace; the deletes themselves go in short transactions of at most ``batch_size`` rows, so no
row lock is held for long and the rest of the workspace keeps working. Audit events go oldest
first, and every batch records a checkpoint with the hash of its last event, so the remaining
chain still verifies (``audit.queries.chain_start``).

Ages are measured against the clock of this process (``now``), like every timestamp the
application writes, rather than the database server's.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from typing import Any, cast

from sqlalchemy import CursorResult, Result, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from audit.models import AuditCheckpoint, RetentionPolicy
from audit.trail import Actor, record_event
from helpdesk.core.db import set_tenant_scope, tenant_transaction, transaction
from helpdesk.core.errors import AppError, Conflict
from tenants.context import TenantRef
from tenants.models import TenantStatus
from tenants.registry import get_by_slug, list_tenants, to_ref

POLICY_FIELDS = ("closed_ticket_days", "audit_event_days", "legal_hold")
DEFAULT_BATCH_SIZE = 1000
# Advisory lock keys are (hashtext(schema), k): 1 assignment, 3 the audit chain, 5 retention.
_RETENTION_LOCK = 5

_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext(current_schema()), :k)")
# Closed tickets in id order through ix_tickets_status_id, resuming after the last batch, so a
# run reads each closed ticket once. A ticket some request holds (being reopened, say) is left
# for the next run rather than waited for; the lock re-checks the row, so one reopened since
# the scan began is not deleted.
_EXPIRED_TICKETS = text(
    "SELECT id FROM tickets"
    " WHERE status = 'closed' AND status_changed_at < :cutoff AND id > :after"
    " ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED"
)
_DELETE_COMMENTS = text("DELETE FROM comments WHERE ticket_id = ANY(:ids)")
# ticket_tags go with their tickets (ON DELETE CASCADE).
_DELETE_TICKETS = text("DELETE FROM tickets WHERE id = ANY(:ids)")
_COUNT_EXPIRED_TICKETS = text(
    "SELECT count(*) FROM tickets WHERE status = 'closed' AND status_changed_at < :cutoff"
)
_COUNT_EXPIRED_COMMENTS = text(
    "SELECT count(*) FROM comments WHERE ticket_id IN"
    " (SELECT id FROM tickets WHERE status = 'closed' AND status_changed_at < :cutoff)"
)
_OLDEST_EVENTS = text("SELECT id, hash, occurred_at FROM audit_events ORDER BY id LIMIT :limit")
_DELETE_EVENTS = text("DELETE FROM audit_events WHERE id <= :last_id")
# The purge removes a prefix of the chain: events up to the first one young enough to keep.
_COUNT_EXPIRED_EVENTS = text(
    "WITH boundary AS (SELECT min(id) AS id FROM audit_events WHERE occurred_at >= :cutoff)"
    " SELECT count(*) FROM audit_events, boundary"
    " WHERE boundary.id IS NULL OR audit_events.id < boundary.id"
)


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
    session.execute(text("SELECT set_config('role', 'none', true)"))
    yield
    session.flush()
    set_tenant_scope(session, tenant.schema_name, tenant.role_name)


def run_retention(
    session: Session,
    sessions: sessionmaker[Session],
    tenant: TenantRef,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> RetentionReport:
    """Purge (or count, with ``dry_run``) what the workspace's policy no longer keeps.

    ``session`` is the run's own transaction, already in ``tenant``'s scope: it takes the
    workspace's retention lock, which holds until that transaction ends, and is where the caller
    records the run's audit event. Deletes go in transactions of their own from ``sessions``.
    Raises Conflict if another run holds the lock.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if not session.scalar(_TRY_LOCK, {"k": _RETENTION_LOCK}):
        raise Conflict(
            "A retention run is already under way in this workspace; try again when it ends.",
            code="retention_running",
        )
    now = now or datetime.now(UTC)
    policy = load_policy(session)
    report = RetentionReport(
        workspace=tenant.slug,
        dry_run=dry_run,
        legal_hold=policy.legal_hold,
        closed_ticket_days=policy.closed_ticket_days,
        audit_event_days=policy.audit_event_days,
        ticket_cutoff=_cutoff(now, policy.closed_ticket_days),
        audit_cutoff=_cutoff(now, policy.audit_event_days),
    )
    if policy.legal_hold:
        return report  # a legal hold keeps everything
    if report.ticket_cutoff is not None:
        if dry_run:
            params = {"cutoff": report.ticket_cutoff}
            report.tickets = session.execute(_COUNT_EXPIRED_TICKETS, params).scalar_one()
            report.comments = session.execute(_COUNT_EXPIRED_COMMENTS, params).scalar_one()
        else:
            _purge_tickets(
                sessions, tenant, report, cutoff=report.ticket_cutoff, batch_size=batch_size
            )
    if report.audit_cutoff is not None:
        if dry_run:
            report.audit_events = session.execute(
                _COUNT_EXPIRED_EVENTS, {"cutoff": report.audit_cutoff}
            ).scalar_one()
        else:
            _purge_events(
                sessions,
                tenant,
                report,
                cutoff=report.audit_cutoff,
                now=now,
                batch_size=batch_size,
            )
    return report


def _cutoff(now: datetime, days: int | None) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def _rowcount(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def _purge_tickets(
    sessions: sessionmaker[Session],
    tenant: TenantRef,
    report: RetentionReport,
    *,
    cutoff: datetime,
    batch_size: int,
) -> None:
    after = 0
    while True:
        with tenant_transaction(sessions, tenant.schema_name, tenant.role_name) as batch:
            params = {"cutoff": cutoff, "after": after, "limit": batch_size}
            ids = list(batch.scalars(_EXPIRED_TICKETS, params))
            if ids:
                report.comments += _rowcount(batch.execute(_DELETE_COMMENTS, {"ids": ids}))
                report.tickets += _rowcount(batch.execute(_DELETE_TICKETS, {"ids": ids}))
                report.batches += 1
        if len(ids) < batch_size:
            return
        after = ids[-1]


def _purge_events(
    sessions: sessionmaker[Session],
    tenant: TenantRef,
    report: RetentionReport,
    *,
    cutoff: datetime,
    now: datetime,
    batch_size: int,
) -> None:
    # No chain lock needed: appends only ever add at the head, and a writer reading the head
    # sees, in one statement's snapshot, either the events or the checkpoint that replaced them.
    while True:
        with tenant_transaction(sessions, tenant.schema_name, tenant.role_name) as batch:
            oldest = batch.execute(_OLDEST_EVENTS, {"limit": batch_size}).all()
            expired = list(takewhile(lambda e: e.occurred_at < cutoff, oldest))
            if expired:
                last = expired[-1]
                with owner_role(batch, tenant):
                    batch.add(
                        AuditCheckpoint(
                            created_at=now,
                            last_purged_id=last.id,
                            last_hash=last.hash,
                            purged_count=len(expired),
                        )
                    )
                    batch.flush()
                    purged = _rowcount(batch.execute(_DELETE_EVENTS, {"last_id": last.id}))
                report.audit_events += purged
                report.checkpoints += 1
                report.batches += 1
        if len(expired) < batch_size:
            return


@dataclass(frozen=True, slots=True)
class WorkspaceOutcome:
    """One workspace's part in a scheduled run: its report, or why it has none."""

    slug: str
    report: RetentionReport | None = None
    skipped: str | None = None  # another run held the lock; the workspace is being deleted
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def run_retention_job(
    sessions: sessionmaker[Session],
    *,
    slugs: Sequence[str] | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[WorkspaceOutcome]:
    """The scheduled job: every workspace (or ``slugs``), one at a time, each run audited as the
    system's. A failure in one workspace is reported and the others still run."""
    tenants = _workspaces(sessions, slugs)
    outcomes: list[WorkspaceOutcome] = []
    for tenant in tenants:
        if isinstance(tenant, WorkspaceOutcome):
            outcomes.append(tenant)
        elif tenant.status == TenantStatus.DELETING.value:
            outcomes.append(WorkspaceOutcome(tenant.slug, skipped="deletion scheduled"))
        else:
            outcomes.append(_run_one(sessions, tenant, dry_run, now, batch_size))
    return outcomes


def _run_one(
    sessions: sessionmaker[Session],
    tenant: TenantRef,
    dry_run: bool,
    now: datetime | None,
    batch_size: int,
) -> WorkspaceOutcome:
    try:
        with tenant_transaction(sessions, tenant.schema_name, tenant.role_name) as session:
            report = run_retention(
                session, sessions, tenant, dry_run=dry_run, now=now, batch_size=batch_size
            )
            record_event(
                session,
                actor=Actor.system("retention"),
                action="retention.run",
                target_type="retention_policy",
                changes=report.audit_changes(),
            )
    except Conflict as busy:
        return WorkspaceOutcome(tenant.slug, skipped=busy.detail)
    except (AppError, SQLAlchemyError) as exc:
        # What was purged before the failure stays purged, batch by batch; a rerun resumes.
        return WorkspaceOutcome(tenant.slug, error=str(exc).splitlines()[0])
    return WorkspaceOutcome(tenant.slug, report=report)


def _workspaces(
    sessions: sessionmaker[Session], slugs: Sequence[str] | None
) -> list[TenantRef | WorkspaceOutcome]:
    found: list[TenantRef | WorkspaceOutcome] = []
    with transaction(sessions) as session:
        if slugs is not None:
            for slug in slugs:
                try:
                    found.append(to_ref(get_by_slug(session, slug)))
                except AppError as exc:
                    found.append(WorkspaceOutcome(slug, error=exc.detail))
            return found
        after: str | None = None
        while page := list_tenants(session, after=after, limit=500):
            found.extend(to_ref(t) for t in page)
            after = page[-1].slug
    return found
