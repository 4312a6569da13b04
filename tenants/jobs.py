"""One runner for every per-workspace job: escalation, auto-close, delivery and retention.

A job is a function of one workspace: ``Job.work(run) -> R``. The runner owns the rest:

- **which workspaces**: every workspace whose status the job works in (``Job.statuses``), in
  slug order, or only the slugs named, in the order named; a named slug that matches no
  workspace is a failure, one whose status the job does not work in is skipped with the reason;
- **the lock**: for each workspace, a transaction in that workspace's scope (``run.session``)
  takes the job's advisory lock with ``pg_try_advisory_xact_lock`` and holds it until the
  workspace is done; a second process that finds it taken skips the workspace (``BUSY``) and goes
  on to the next, so any number of processes may run the same job and share the work without
  doing any of it twice. The job's own reads and its run-level writes (the audit event of a
  retention run, say) go in that transaction, which commits when ``work`` returns;
- **batching**: ``run.batches_in_transactions`` (or ``run.batches``, for a step that opens
  its own transactions) repeats a step of at most ``batch_size`` rows, walking forward by id
  (``walk``), until a step comes back short; no row lock is held for long and a run visits each
  row at most once;
- **the report**: one ``WorkspaceOutcome`` per workspace (its result, or why it has none);
- **continue on error**: a database error, or an ``AppError``/``ValueError`` from the job (a row
  its rules cannot read), fails that workspace only. So does any other exception (a bug): it is
  logged with its traceback and reported as the workspace's error, because a worker that runs
  the job every minute must not let one workspace's bug starve every workspace after it in slug
  order. Batches already committed stay done, and the next run carries on from there;
- **stopping**: ``stopping()`` is asked before each workspace; once it is true the rest are
  skipped (``STOPPING``), so a worker shutting down waits for one workspace, not a whole pass.

The tenant is passed in explicitly, never read from a context variable, so a job can never run
under another workspace's scope. "Now" is the caller's (tests travel in time) or this process's
clock, like every timestamp the application writes.
"""

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from helpdesk.core.db import tenant_transaction, transaction
from helpdesk.core.errors import AppError
from tenants.context import TenantRef
from tenants.locks import LockKey, try_lock_workspace
from tenants.models import Tenant, TenantStatus
from tenants.registry import get_by_slug, to_ref

log = logging.getLogger("helpdesk.jobs")

R = TypeVar("R")

BUSY = "another run of this job is already under way in this workspace"
STOPPING = "the process is stopping; the next run will work this workspace"
ACTIVE_ONLY = frozenset({TenantStatus.ACTIVE})


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def _never() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Batches:
    """What ``WorkspaceRun.batches`` did: rows the steps returned, and how many steps found any."""

    rows: int = 0
    batches: int = 0

    def __add__(self, other: "Batches") -> "Batches":
        return Batches(self.rows + other.rows, self.batches + other.batches)


def walk(
    step: Callable[[int], Sequence[int]], batch_size: int, *, max_batches: int | None = None
) -> Batches:
    """Call ``step(after)`` until it returns fewer than ``batch_size`` ids, or ``max_batches``
    steps have found rows.

    ``step`` handles at most ``batch_size`` rows and returns their ids in ascending order;
    ``after`` is the last id of the previous step (0 at first), so a walk by id moves forward and
    visits each row at most once, whatever the step did to it (a row a step skipped because a
    request held it waits for the next run). A step that picks its rows another way (by due
    time, or always the oldest when it deletes them) may ignore ``after``.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    done = Batches()
    after = 0
    while max_batches is None or done.batches < max_batches:
        ids = step(after)
        if ids:
            done += Batches(len(ids), 1)
            after = ids[-1]
        if len(ids) < batch_size:
            break
    return done


@dataclass(frozen=True, slots=True)
class WorkspaceRun:
    """One job's run in one workspace, as the job's ``work`` function sees it.

    ``session`` is the run's own transaction, in the workspace's scope and holding the job's lock
    until ``work`` returns (then it commits; on an error it rolls back). ``now`` is the run's
    moment; ``clock`` reads the time again for a job whose steps take real time (delivery's
    network calls): the fixed ``now`` when the caller gave one, else this process's clock.
    """

    tenant: TenantRef
    session: Session
    sessions: sessionmaker[Session]
    now: datetime
    batch_size: int
    clock: Callable[[], datetime] = _wall_clock

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A short transaction of its own in the workspace's scope, committed on leaving."""
        tenant = self.tenant
        with tenant_transaction(self.sessions, tenant.schema_name, tenant.role_name) as session:
            yield session

    def batches(
        self, step: Callable[[int], Sequence[int]], *, max_batches: int | None = None
    ) -> Batches:
        """``walk`` with this run's batch size. The step opens its own transactions
        (``self.transaction()``): the delivery job, for one, sends between two of them."""
        return walk(step, self.batch_size, max_batches=max_batches)

    def batches_in_transactions(
        self, step: Callable[[Session, int], Sequence[int]], *, max_batches: int | None = None
    ) -> Batches:
        """``batches``, each step in a transaction of its own that commits when it returns."""

        def in_transaction(after: int) -> Sequence[int]:
            with self.transaction() as session:
                return step(session, after)

        return self.batches(in_transaction, max_batches=max_batches)


@dataclass(frozen=True, slots=True)
class Job(Generic[R]):
    """A job the runner can run: its name (the command, and the ``system:<name>`` actor), its
    lock, its work in one workspace, its default batch size, and the workspace statuses it
    works in (suspended workspaces wait for most jobs; retention runs in them too)."""

    name: str
    lock: LockKey
    work: Callable[[WorkspaceRun], R]
    batch_size: int
    statuses: frozenset[TenantStatus] = ACTIVE_ONLY


@dataclass(frozen=True, slots=True)
class WorkspaceOutcome(Generic[R]):
    """One workspace's part in a run: the job's result, or why there is none."""

    slug: str
    result: R | None = None
    skipped: str | None = None  # another process holds the lock; a status the job leaves alone
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class JobReport(Generic[R]):
    """A whole run: each workspace's outcome, in the order visited."""

    job: str
    now: datetime
    workspaces: list[WorkspaceOutcome[R]] = field(default_factory=list)

    @property
    def results(self) -> list[R]:
        """The results of the workspaces the job worked."""
        return [run.result for run in self.workspaces if run.result is not None]

    @property
    def skipped(self) -> list[str]:
        return [run.slug for run in self.workspaces if run.skipped is not None]

    @property
    def failed(self) -> list[str]:
        return [run.slug for run in self.workspaces if run.error is not None]

    @property
    def ok(self) -> bool:
        return not self.failed


def run_each_workspace(
    sessions: sessionmaker[Session],
    job: Job[R],
    *,
    slugs: Sequence[str] | None = None,
    now: datetime | None = None,
    batch_size: int | None = None,
    stopping: Callable[[], bool] = _never,
) -> JobReport[R]:
    """Run ``job`` in every workspace it works in (or only ``slugs``), one at a time, until
    ``stopping()`` says to leave the rest for the next run."""
    batch_size = job.batch_size if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    clock: Callable[[], datetime] = _wall_clock if now is None else (lambda: now)
    report: JobReport[R] = JobReport(job.name, clock())
    for target in _workspaces(sessions, job, slugs):
        if isinstance(target, WorkspaceOutcome):
            report.workspaces.append(target)
        elif stopping():
            report.workspaces.append(WorkspaceOutcome(target.slug, skipped=STOPPING))
        else:
            outcome = run_in_workspace(
                sessions, job, target, now=report.now, batch_size=batch_size, clock=clock
            )
            report.workspaces.append(outcome)
    return report


def run_in_workspace(
    sessions: sessionmaker[Session],
    job: Job[R],
    tenant: TenantRef,
    *,
    now: datetime,
    batch_size: int,
    clock: Callable[[], datetime] = _wall_clock,
) -> WorkspaceOutcome[R]:
    """Run ``job`` in one workspace under its lock: the result, ``BUSY``, or the error."""
    try:
        with tenant_transaction(sessions, tenant.schema_name, tenant.role_name) as session:
            if not try_lock_workspace(session, job.lock):
                return WorkspaceOutcome(tenant.slug, skipped=BUSY)
            run = WorkspaceRun(tenant, session, sessions, now, batch_size, clock)
            result = job.work(run)
    except (SQLAlchemyError, AppError, ValueError) as exc:
        log.warning("%s failed in workspace %s", job.name, tenant.slug, exc_info=True)
        detail = exc.detail if isinstance(exc, AppError) else str(exc)
        return WorkspaceOutcome(tenant.slug, error=detail.splitlines()[0] if detail else "error")
    except Exception as exc:
        # A bug, not a row the rules refuse: logged with its traceback for whoever fixes it, and
        # kept in this workspace so the others are still worked (see the module's docstring).
        log.exception("%s failed in workspace %s with an unexpected error", job.name, tenant.slug)
        return WorkspaceOutcome(tenant.slug, error=f"unexpected error: {type(exc).__name__}")
    return WorkspaceOutcome(tenant.slug, result=result)


def not_worked_reason(status: str) -> str:
    return "deletion scheduled" if status == TenantStatus.DELETING else f"workspace is {status}"


def _workspaces(
    sessions: sessionmaker[Session], job: Job[R], slugs: Sequence[str] | None
) -> list[TenantRef | WorkspaceOutcome[R]]:
    found: list[TenantRef | WorkspaceOutcome[R]] = []
    with transaction(sessions) as session:
        if slugs is None:
            query = (
                select(Tenant)
                .where(Tenant.status.in_([status.value for status in job.statuses]))
                .order_by(Tenant.slug)
            )
            return [to_ref(tenant) for tenant in session.scalars(query)]
        for slug in slugs:
            try:
                tenant = to_ref(get_by_slug(session, slug))
            except AppError as exc:
                found.append(WorkspaceOutcome(slug, error=exc.detail))
                continue
            if tenant.status in job.statuses:
                found.append(tenant)
            else:
                found.append(WorkspaceOutcome(slug, skipped=not_worked_reason(tenant.status)))
    return found
