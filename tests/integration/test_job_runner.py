"""The one per-workspace job runner against real PostgreSQL: two runs of the same job never work
one workspace together (the second skips it rather than wait), each real job takes its own lock
through the runner, a failure stays in its workspace, and the run's transaction commits with the
work."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from helpdesk.compliance.service import retention_job
from helpdesk.core.db import tenant_transaction, transaction
from helpdesk.outbox.worker import delivery_job
from helpdesk.runtime import Runtime
from helpdesk.sla import jobs as ticket_jobs
from helpdesk.tickets.models import Ticket
from tenants.jobs import BUSY, Job, JobReport, WorkspaceRun, run_each_workspace
from tenants.locks import LockKey
from tenants.models import TenantStatus
from tenants.registry import get_by_slug, set_status
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.integration

WAIT = 30  # seconds; only a hung run ever waits this long


def name_the_workspace(run: WorkspaceRun) -> str:
    return f"worked {run.tenant.slug}"


class Blocker:
    """A job that, once inside a workspace (its lock held), waits there until released."""

    def __init__(self, lock: LockKey, name: str = "blocker") -> None:
        self.inside = threading.Event()
        self.release = threading.Event()
        self.job: Job[str] = Job(name, lock, self._work, batch_size=1)

    def _work(self, run: WorkspaceRun) -> str:
        self.inside.set()
        assert self.release.wait(WAIT), "never released"
        return name_the_workspace(run)


@contextmanager
def first_run_inside(
    runtime: Runtime, job: Job[str], blocker: Blocker, ws: Workspace
) -> Iterator[list[JobReport[str]]]:
    """A first run of ``job`` in another thread (another process, as far as PostgreSQL can
    tell: its own connection), stopped inside ``ws`` with the lock held; its report arrives
    once the block ends."""
    reports: list[JobReport[str]] = []
    thread = threading.Thread(
        target=lambda: reports.append(run_each_workspace(runtime.sessions, job, slugs=[ws.slug]))
    )
    thread.start()
    try:
        assert blocker.inside.wait(WAIT), "the first run never reached the workspace"
        yield reports
    finally:
        blocker.release.set()
        thread.join(WAIT)
    assert not thread.is_alive()


def test_a_second_run_of_the_same_job_skips_the_workspace_the_first_is_working(
    runtime: Runtime, factory: Factory
) -> None:
    busy, free = factory.workspace(), factory.workspace()
    blocker = Blocker(LockKey.ESCALATION)
    same_job = Job(blocker.job.name, blocker.job.lock, name_the_workspace, batch_size=1)
    with first_run_inside(runtime, blocker.job, blocker, busy) as first:
        # Started while the first run is inside ``busy``: it neither waits for it nor works it,
        # and still works the workspace no one holds.
        second = run_each_workspace(runtime.sessions, same_job, slugs=[busy.slug, free.slug])
    assert [(o.slug, o.result, o.skipped) for o in second.workspaces] == [
        (busy.slug, None, BUSY),
        (free.slug, f"worked {free.slug}", None),
    ]
    assert (second.ok, second.skipped, second.results) == (
        True,
        [busy.slug],
        [f"worked {free.slug}"],
    )
    (done,) = first[0].workspaces
    assert (done.result, done.skipped) == (f"worked {busy.slug}", None)
    # Once the first run has ended, the workspace is free again.
    (after,) = run_each_workspace(runtime.sessions, same_job, slugs=[busy.slug]).workspaces
    assert after.result == f"worked {busy.slug}"


def real_jobs(runtime: Runtime, http: httpx.Client) -> dict[str, Job[Any]]:
    return {
        "escalate": ticket_jobs.ESCALATE,
        "auto-close": ticket_jobs.AUTO_CLOSE,
        "retention": retention_job(),
        "delivery": delivery_job(runtime.settings, http=http, mail=None),
    }


@pytest.mark.parametrize("name", ["escalate", "auto-close", "retention", "delivery"])
def test_every_job_skips_a_workspace_while_another_process_runs_it_there(
    runtime: Runtime, ws: Workspace, name: str
) -> None:
    with httpx.Client() as http:
        job = real_jobs(runtime, http)[name]
        # The other process runs this job: same name, same lock, caught in the middle.
        blocker = Blocker(job.lock, job.name)
        with first_run_inside(runtime, blocker.job, blocker, ws) as first:
            (busy,) = run_each_workspace(runtime.sessions, job, slugs=[ws.slug]).workspaces
        (worked,) = run_each_workspace(runtime.sessions, job, slugs=[ws.slug]).workspaces
    assert (busy.result, busy.skipped, busy.ok) == (None, BUSY, True)
    assert first[0].results == [f"worked {ws.slug}"]
    assert (worked.skipped, worked.ok) == (None, True)
    assert worked.result is not None


def test_the_jobs_hold_locks_of_their_own(runtime: Runtime) -> None:
    with httpx.Client() as http:
        locks = [job.lock for job in real_jobs(runtime, http).values()]
    assert len(set(locks)) == len(locks)


def _titles(runtime: Runtime, ws: Workspace) -> list[str]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        return list(session.scalars(select(Ticket.title).order_by(Ticket.id)))


def test_a_failure_stays_in_its_workspace_and_keeps_the_batches_already_done(
    runtime: Runtime, factory: Factory
) -> None:
    broken, invalid, fine = (factory.workspace() for _ in range(3))

    def work(run: WorkspaceRun) -> int:
        with run.transaction() as batch:  # a batch, committed before anything fails
            batch.add(Ticket(title="batch"))
        run.session.add(Ticket(title="run"))
        run.session.flush()
        if run.tenant.slug == broken.slug:
            run.session.execute(text("SELECT * FROM no_such_table"))
        if run.tenant.slug == invalid.slug:
            raise ValueError("a row the rules cannot read\nwith details on a second line")
        return int(run.session.scalar(select(func.count()).select_from(Ticket)) or 0)

    job: Job[int] = Job("failing", LockKey.ESCALATION, work, batch_size=10)
    slugs = [broken.slug, invalid.slug, fine.slug]
    report = run_each_workspace(runtime.sessions, job, slugs=slugs)

    assert [(o.slug, o.result, o.ok) for o in report.workspaces] == [
        (broken.slug, None, False),
        (invalid.slug, None, False),
        (fine.slug, 2, True),
    ]
    assert (report.failed, report.ok) == ([broken.slug, invalid.slug], False)
    assert "no_such_table" in (report.workspaces[0].error or "")
    assert report.workspaces[1].error == "a row the rules cannot read"
    # The committed batch stays; the run's own transaction rolled back with the failure.
    assert _titles(runtime, broken) == _titles(runtime, invalid) == ["batch"]
    assert _titles(runtime, fine) == ["batch", "run"]


def test_an_unexpected_error_in_one_workspace_is_reported_and_the_next_is_still_worked(
    runtime: Runtime, factory: Factory
) -> None:
    buggy, fine = factory.workspace(), factory.workspace()

    def work(run: WorkspaceRun) -> str:
        if run.tenant.slug == buggy.slug:
            raise KeyError("a bug, not a row the rules refuse")
        return name_the_workspace(run)

    job: Job[str] = Job("buggy", LockKey.ESCALATION, work, batch_size=1)
    report = run_each_workspace(runtime.sessions, job, slugs=[buggy.slug, fine.slug])
    assert [(o.slug, o.result, o.error) for o in report.workspaces] == [
        (buggy.slug, None, "unexpected error: KeyError"),
        (fine.slug, f"worked {fine.slug}", None),
    ]


def test_a_job_works_a_suspended_workspace_only_when_it_says_so(
    runtime: Runtime, ws: Workspace
) -> None:
    with transaction(runtime.sessions) as session:
        set_status(session, get_by_slug(session, ws.slug), TenantStatus.SUSPENDED)
    active_only = Job("active", LockKey.ESCALATION, name_the_workspace, batch_size=1)
    also_suspended = Job(
        "also-suspended",
        LockKey.RETENTION,
        name_the_workspace,
        batch_size=1,
        statuses=frozenset({TenantStatus.ACTIVE, TenantStatus.SUSPENDED}),
    )
    (left,) = run_each_workspace(runtime.sessions, active_only, slugs=[ws.slug]).workspaces
    (worked,) = run_each_workspace(runtime.sessions, also_suspended, slugs=[ws.slug]).workspaces
    assert (left.result, left.skipped) == (None, "workspace is suspended")
    assert (worked.result, worked.skipped) == (f"worked {ws.slug}", None)
