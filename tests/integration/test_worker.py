"""The in-process worker against real PostgreSQL: what it records for /metrics, that a failure
neither stops it nor the other workspaces, that stopping waits for one workspace and no more,
and the outbox backlog it counts."""

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from sqlalchemy.exc import OperationalError

from helpdesk.metrics import worker_registry
from helpdesk.outbox.worker import delivery_pass
from helpdesk.runtime import Runtime
from helpdesk.worker.loop import Worker
from helpdesk.worker.schedule import ScheduledJob, default_schedule
from tenants.jobs import STOPPING, Job, JobReport, WorkspaceRun, run_each_workspace
from tenants.locks import LockKey
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.integration

WAIT = 30  # seconds; only a hung worker ever waits this long


def _scheduled(
    runtime: Runtime,
    work: Callable[[WorkspaceRun], str],
    slugs: list[str],
    reports: list[JobReport[Any]] | None = None,
) -> ScheduledJob:
    job: Job[str] = Job("probe", LockKey.ESCALATION, work, batch_size=1)

    def run(stopping: Callable[[], bool]) -> JobReport[str]:
        report = run_each_workspace(runtime.sessions, job, slugs=slugs, stopping=stopping)
        if reports is not None:
            reports.append(report)
        return report

    return ScheduledJob("probe", 3600, run, lambda _: None)


def test_runs_failures_and_the_last_success_are_recorded_per_job(
    runtime: Runtime, factory: Factory
) -> None:
    broken, fine = factory.workspace(), factory.workspace()
    failing = {broken.slug}

    def work(run: WorkspaceRun) -> str:
        if run.tenant.slug in failing:
            raise ValueError("a row the rules cannot read")
        return run.tenant.slug

    worker = Worker([_scheduled(runtime, work, [broken.slug, fine.slug])])
    [job] = worker.jobs

    report = worker.run_once(job)
    assert report is not None
    # The broken workspace failed; the one after it was still worked.
    assert (report.failed, report.results) == ([broken.slug], [fine.slug])
    counts = worker.stats.jobs()["probe"]
    assert (counts.runs, counts.failures, counts.last_success) == (1, 1, None)

    failing.clear()
    worker.run_once(job)
    counts = worker.stats.jobs()["probe"]
    assert (counts.runs, counts.failures) == (2, 1)
    assert counts.last_success is not None


def test_a_run_that_fails_before_any_workspace_is_counted_and_the_next_run_goes_ahead() -> None:
    outcomes: list[BaseException | None] = [
        OperationalError("SELECT 1", {}, Exception("the server closed the connection")),
        None,
    ]

    def run(_stopping: Callable[[], bool]) -> JobReport[str]:
        problem = outcomes.pop(0)
        if problem is not None:
            raise problem
        return JobReport("flaky", now=datetime.now(UTC))

    worker = Worker([ScheduledJob("flaky", 3600, run, lambda _: None)])
    [job] = worker.jobs
    assert worker.run_once(job) is None
    assert worker.run_once(job) is not None
    counts = worker.stats.jobs()["flaky"]
    assert (counts.runs, counts.failures) == (2, 1)
    assert counts.last_success is not None


def test_stopping_lets_the_workspace_under_way_finish_and_leaves_the_rest(
    runtime: Runtime, factory: Factory
) -> None:
    first, second = factory.workspace(), factory.workspace()
    inside, release = threading.Event(), threading.Event()

    def work(run: WorkspaceRun) -> str:
        inside.set()
        assert release.wait(WAIT), "never released"
        return run.tenant.slug

    reports: list[JobReport[Any]] = []
    worker = Worker(
        [_scheduled(runtime, work, [first.slug, second.slug], reports)], delay=lambda _: 0.0
    )
    worker.start()
    assert inside.wait(WAIT), "the worker never reached the first workspace"
    stopped: list[bool] = []
    stopper = threading.Thread(target=lambda: stopped.append(worker.stop(timeout=WAIT)))
    stopper.start()
    # stop() waits for the run under way, which is still inside the first workspace.
    stopper.join(0.2)
    assert stopper.is_alive()
    release.set()
    stopper.join(WAIT)
    assert stopped == [True]
    [report] = reports
    assert [(o.slug, o.result, o.skipped) for o in report.workspaces] == [
        (first.slug, first.slug, None),
        (second.slug, None, STOPPING),
    ]


def test_the_backlog_counts_waiting_messages_by_kind(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    for title in ("Printer jams", "VPN drops"):
        body = {"title": title, "customer_email": "rita@example.com"}
        assert client.post("/api/v1/tickets", json=body, headers=admin).status_code == 201
    no_mail = runtime.settings.model_copy(update={"smtp_host": None})
    delivery = ScheduledJob(
        "deliver",
        5,
        lambda stopping: delivery_pass(
            Runtime(no_mail, runtime.database_url, runtime.engine, runtime.sessions),
            slugs=[ws.slug],
            stopping=stopping,
        ),
        lambda _: None,
        backlog=lambda result: result.backlog,
    )
    worker = Worker([delivery])
    assert worker.stats.backlog() is None
    worker.run_once(delivery)
    # Without a provider the two confirmations wait; nothing else is queued.
    assert worker.stats.backlog() == {"email": 2}
    exposition = generate_latest(worker_registry(worker.stats)).decode()
    assert 'helpdesk_outbox_backlog{kind="email"} 2.0' in exposition
    assert 'helpdesk_outbox_backlog{kind="webhook"} 0.0' in exposition
    assert 'helpdesk_job_runs_total{job="deliver"} 1.0' in exposition


@pytest.mark.parametrize(
    ("smtp_host", "notices"),
    [
        (None, ["no e-mail provider is configured"]),
        ("smtp.example.com", []),
    ],
)
def test_the_worker_says_once_at_start_that_e_mails_wait_without_a_provider(
    runtime: Runtime,
    smtp_host: str | None,
    notices: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = runtime.settings.model_copy(update={"smtp_host": smtp_host})
    worker = Worker.for_runtime(
        Runtime(settings, runtime.database_url, runtime.engine, runtime.sessions)
    )
    worker.jobs = []  # nothing to run: only what start-up says is under test
    with caplog.at_level("INFO", logger="helpdesk.worker"):
        worker.start()
        worker.stop(timeout=WAIT)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [w.split(" (")[0] for w in warnings] == [f"worker: {n}" for n in notices]


def test_the_default_schedule_runs_every_job_at_its_configured_interval(runtime: Runtime) -> None:
    settings = runtime.settings.model_copy(
        update={"escalate_every_seconds": 2, "retention_every_seconds": 3600}
    )
    schedule = default_schedule(
        Runtime(settings, runtime.database_url, runtime.engine, runtime.sessions)
    )
    assert [(job.name, job.every_seconds) for job in schedule] == [
        ("escalate", 2),
        ("auto-close", 60),
        ("deliver", 5),
        ("retention", 3600),
    ]
