"""The SLA jobs: which tickets escalation raises and which it leaves, idempotence, bounded
batches, one process per workspace at a time, which workspaces a run visits, and auto-close
with time travel."""

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from audit.models import AuditEvent
from helpdesk.core.db import tenant_transaction, transaction
from helpdesk.outbox.models import OutboxMessage
from helpdesk.runtime import Runtime
from helpdesk.sla import jobs
from helpdesk.sla.jobs import TicketsChanged, run_job, tickets_changed
from helpdesk.sla.models import WorkspaceSettings
from helpdesk.tickets.models import Comment, Ticket
from helpdesk.webhooks.models import Webhook
from tenants.jobs import BUSY, Job, JobReport, WorkspaceOutcome
from tenants.models import TenantStatus
from tenants.registry import get_by_slug, set_status
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.integration

API = "/api/v1"
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
SOMEONE = uuid.UUID("00000000-0000-4000-8000-000000000001")
ESCALATION_FIELDS = ("priority", "escalated", "sla_breached")
Report = JobReport[TicketsChanged]
TicketJob = Job[TicketsChanged]


@contextmanager
def scope(runtime: Runtime, ws: Workspace) -> Iterator[Session]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        yield session


@contextmanager
def lock_held_elsewhere(runtime: Runtime, ws: Workspace, job: TicketJob) -> Iterator[None]:
    """Another process mid-run: a transaction in the workspace's scope holding the job's lock."""
    with scope(runtime, ws) as holder:
        holder.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(current_schema()), :k)"),
            {"k": int(job.lock)},
        )
        yield


def add_tickets(runtime: Runtime, ws: Workspace, *rows: dict[str, Any]) -> list[int]:
    """Insert tickets directly: an open, unassigned, unanswered low-priority ticket whose
    response was due a minute before NOW, changed by ``rows``."""
    base = {
        "title": "Cannot log in",
        "status": "open",
        "priority": "low",
        "sla_due_at": NOW - timedelta(minutes=1),
        "created_at": NOW - timedelta(hours=80),
    }
    with scope(runtime, ws) as session:
        tickets = [Ticket(**{**base, **row}) for row in rows]
        session.add_all(tickets)
        session.flush()
        return [t.id for t in tickets]


def snapshot(runtime: Runtime, ws: Workspace) -> dict[int, tuple[Any, ...]]:
    with scope(runtime, ws) as session:
        return {
            t.id: (t.status, t.priority, t.escalated, t.sla_breached, t.updated_at)
            for t in session.scalars(select(Ticket).order_by(Ticket.id))
        }


def fields(runtime: Runtime, ws: Workspace, names: tuple[str, ...]) -> list[tuple[Any, ...]]:
    with scope(runtime, ws) as session:
        return [
            tuple(getattr(t, n) for n in names)
            for t in session.scalars(select(Ticket).order_by(Ticket.id))
        ]


def job_events(runtime: Runtime, ws: Workspace, job: TicketJob) -> list[AuditEvent]:
    with scope(runtime, ws) as session:
        return list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.actor_role == f"system:{job.name}")
                .order_by(AuditEvent.id)
            )
        )


def outcome(report: Report) -> WorkspaceOutcome[TicketsChanged]:
    (run,) = report.workspaces
    return run


def only(report: Report) -> TicketsChanged:
    """The one workspace's result: the run worked it."""
    result = outcome(report).result
    assert result is not None, outcome(report)
    return result


# Each row: a ticket as it stands at NOW, and its priority, escalated and sla_breached after
# one escalation run.
ESCALATION: list[tuple[dict[str, Any], str, bool, bool]] = [
    # ticket                                               priority    escalated  breached
    ({"priority": "low"},                                   "medium",   True,      True),
    ({"priority": "medium"},                                "high",     True,      True),
    ({"priority": "high"},                                  "critical", True,      True),
    ({"priority": "critical"},                              "critical", True,      True),
    ({"assignee_id": SOMEONE},                              "low",      False,     False),
    ({"sla_due_at": NOW},                                   "low",      False,     False),
    ({"sla_due_at": NOW + timedelta(hours=1)},              "low",      False,     False),
    ({"sla_due_at": None},                                  "low",      False,     False),
    ({"first_response_at": NOW, "sla_breached": True},      "low",      False,     True),
    ({"status": "in_progress"},                             "low",      False,     False),
    ({"status": "pending"},                                 "low",      False,     False),
    ({"status": "closed"},                                  "low",      False,     False),
    ({"priority": "high", "escalated": True},               "high",     True,      False),
]  # fmt: skip


def test_escalation_raises_overdue_open_unassigned_unanswered_tickets_once(
    runtime: Runtime, ws: Workspace
) -> None:
    add_tickets(runtime, ws, *(row for row, *_ in ESCALATION))
    report = run_job(runtime, "escalate", [ws.slug], now=NOW)
    assert (only(report).changed, report.ok, report.skipped) == (4, True, [])
    assert fields(runtime, ws, ESCALATION_FIELDS) == [tuple(after) for _, *after in ESCALATION]

    before = snapshot(runtime, ws)
    again = run_job(runtime, "escalate", [ws.slug], now=NOW)
    assert only(again).changed == 0
    assert snapshot(runtime, ws) == before
    assert len(job_events(runtime, ws, jobs.ESCALATE)) == 4


def test_an_escalation_is_audited_and_sent_to_webhooks_like_an_api_change(
    client: TestClient, factory: Factory, runtime: Runtime, ws: Workspace
) -> None:
    with scope(runtime, ws) as session:
        session.add(
            Webhook(url="https://hooks.example.com/", events=["ticket.updated"], secret="s")
        )
    # Created five hours ago as high: its four hours ran out an hour ago.
    with time_machine.travel(datetime.now(UTC) - timedelta(hours=5), tick=False):
        body = {"title": "Site down", "customer_email": "c@example.com", "priority": "high"}
        created = client.post(f"{API}/tickets", json=body, headers=factory.headers(ws.admin, ws))
    assert created.status_code == 201, created.text
    ticket_id = created.json()["id"]

    assert only(run_job(runtime, "escalate", [ws.slug])).changed == 1

    ticket = client.get(f"{API}/tickets/{ticket_id}", headers=factory.headers(ws.admin, ws))
    shown = ticket.json()
    assert (shown["priority"], shown["escalated"], shown["sla_breached"]) == (
        "critical",
        True,
        True,
    )
    (event,) = job_events(runtime, ws, jobs.ESCALATE)
    assert (event.action, event.target_type, event.target_id, event.actor_id) == (
        "ticket.update",
        "ticket",
        str(ticket_id),
        None,
    )
    assert event.changes == {
        "priority": {"before": "high", "after": "critical"},
        "escalated": {"before": False, "after": True},
        "sla_breached": {"before": False, "after": True},
    }
    with scope(runtime, ws) as session:
        (message,) = session.scalars(
            select(OutboxMessage).where(OutboxMessage.event == "ticket.updated")
        )
    assert message.payload["ticket"]["priority"] == "critical"
    assert message.payload["changes"] == event.changes


def test_updates_go_in_bounded_batches(runtime: Runtime, ws: Workspace) -> None:
    add_tickets(runtime, ws, *({} for _ in range(5)))
    run = only(run_job(runtime, "escalate", [ws.slug], now=NOW, batch_size=2))
    assert (run.changed, run.batches) == (5, 3)
    assert {p for (p,) in fields(runtime, ws, ("priority",))} == {"medium"}


@pytest.mark.parametrize("job", [jobs.ESCALATE, jobs.AUTO_CLOSE], ids=lambda job: job.name)
def test_a_workspace_whose_lock_another_process_holds_is_skipped(
    runtime: Runtime, ws: Workspace, job: TicketJob
) -> None:
    add_tickets(
        runtime, ws, {}, {"status": "pending", "status_changed_at": NOW - timedelta(days=30)}
    )
    before = snapshot(runtime, ws)
    with lock_held_elsewhere(runtime, ws, job):
        busy = run_job(runtime, job.name, [ws.slug], now=NOW)
        assert snapshot(runtime, ws) == before
    assert (outcome(busy).skipped, outcome(busy).result, busy.ok, busy.skipped) == (
        BUSY,
        None,
        True,
        [ws.slug],
    )
    done = run_job(runtime, job.name, [ws.slug], now=NOW)
    assert (outcome(done).skipped, only(done).changed) == (None, 1)


def test_the_two_jobs_do_not_block_each_other(runtime: Runtime, ws: Workspace) -> None:
    add_tickets(runtime, ws, {})
    with lock_held_elsewhere(runtime, ws, jobs.AUTO_CLOSE):
        assert only(run_job(runtime, "escalate", [ws.slug], now=NOW)).changed == 1


def test_two_processes_started_together_do_the_work_once(
    runtime: Runtime, factory: Factory
) -> None:
    workspaces = [factory.workspace() for _ in range(4)]
    for ws in workspaces:
        add_tickets(runtime, ws, {}, {}, {})
    slugs = [ws.slug for ws in workspaces]
    start = threading.Barrier(2)
    reports: list[Report] = []

    def process() -> None:
        start.wait()
        reports.append(run_job(runtime, "escalate", slugs, now=NOW))

    threads = [threading.Thread(target=process) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(reports) == 2
    assert all(r.ok for r in reports)
    assert sum(tickets_changed(r) for r in reports) == 12
    for ws in workspaces:
        # Raised exactly one level, by exactly one of the two runs.
        assert fields(runtime, ws, ("priority", "escalated")) == [("medium", True)] * 3
        assert len(job_events(runtime, ws, jobs.ESCALATE)) == 3
        per_run = [next(w for w in r.workspaces if w.slug == ws.slug) for r in reports]
        # The one that found the lock taken skipped the workspace: nothing, not an empty pass.
        assert sorted((w.result.changed if w.result else 0) for w in per_run) == [0, 3]


def test_a_run_visits_active_workspaces_only(
    runtime: Runtime, factory: Factory, ws: Workspace
) -> None:
    suspended = factory.workspace()
    for target in (ws, suspended):
        add_tickets(runtime, target, {})
    with transaction(runtime.sessions) as session:
        set_status(session, get_by_slug(session, suspended.slug), TenantStatus.SUSPENDED)

    everywhere = run_job(runtime, "escalate", now=NOW)
    visited = {run.slug: run.result for run in everywhere.workspaces}
    assert visited[ws.slug] == TicketsChanged(changed=1, batches=1, alerted=1)
    assert suspended.slug not in visited
    assert fields(runtime, suspended, ("escalated",)) == [(False,)]

    named = run_job(runtime, "escalate", [suspended.slug, "no_such_workspace", ws.slug], now=NOW)
    assert [(r.slug, r.result, r.skipped, r.ok) for r in named.workspaces] == [
        (suspended.slug, None, "workspace is suspended", True),
        ("no_such_workspace", None, None, False),
        (ws.slug, TicketsChanged(changed=0, batches=0), None, True),
    ]
    assert named.failed == ["no_such_workspace"]
    assert not named.ok


def test_an_unknown_job_is_refused(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="deliver-pizza"):
        run_job(runtime, "deliver-pizza")


# ---- auto-close, through the API with time travel ----------------------------------------


def _pending_ticket(client: TestClient, factory: Factory, ws: Workspace, since: datetime) -> int:
    """A ticket that has waited for the customer since ``since``."""
    with time_machine.travel(since, tick=False):
        headers = factory.headers(ws.admin, ws)
        body = {"title": "Which browser?", "customer_email": "c@example.com"}
        created = client.post(f"{API}/tickets", json=body, headers=headers)
        assert created.status_code == 201, created.text
        ticket_id: int = created.json()["id"]
        moved = client.patch(
            f"{API}/tickets/{ticket_id}", json={"status": "pending"}, headers=headers
        )
        assert moved.status_code == 200, moved.text
    return ticket_id


def _status(client: TestClient, factory: Factory, ws: Workspace, ticket_id: int) -> str:
    response = client.get(f"{API}/tickets/{ticket_id}", headers=factory.headers(ws.admin, ws))
    status: str = response.json()["status"]
    return status


AUTO_CLOSE = [
    # days pending  workspace auto_close_days   status after the run
    (8,             None,                       "closed"),  # default: 7 days
    (6,             None,                       "pending"),
    (4,             3,                          "closed"),
    (10,            14,                         "pending"),
    (30,            0,                          "pending"),  # 0 turns auto-close off
]  # fmt: skip


@pytest.mark.parametrize(("days", "setting", "after"), AUTO_CLOSE)
def test_auto_close_closes_tickets_pending_longer_than_the_workspace_allows(
    client: TestClient,
    factory: Factory,
    runtime: Runtime,
    ws: Workspace,
    days: int,
    setting: int | None,
    after: str,
) -> None:
    if setting is not None:
        with scope(runtime, ws) as session:
            session.merge(WorkspaceSettings(id=1, auto_close_days=setting))
    start = datetime.now(UTC)
    ticket_id = _pending_ticket(client, factory, ws, start - timedelta(days=days))
    report = run_job(runtime, "auto-close", [ws.slug])
    assert only(report).changed == (1 if after == "closed" else 0)
    assert _status(client, factory, ws, ticket_id) == after


@pytest.mark.parametrize(("public", "after"), [(True, "pending"), (False, "closed")])
def test_a_public_comment_within_the_window_keeps_a_pending_ticket_open(
    client: TestClient,
    factory: Factory,
    runtime: Runtime,
    ws: Workspace,
    public: bool,
    after: str,
) -> None:
    start = datetime.now(UTC)
    ticket_id = _pending_ticket(client, factory, ws, start - timedelta(days=10))
    with scope(runtime, ws) as session:
        # The customer answered two days ago (or, internally, an agent left a note).
        session.add(
            Comment(
                ticket_id=ticket_id,
                author_id=SOMEONE,
                body="Firefox.",
                public=public,
                created_at=start - timedelta(days=2),
            )
        )
    run_job(runtime, "auto-close", [ws.slug])
    assert _status(client, factory, ws, ticket_id) == after


def test_auto_close_is_idempotent_and_audited(
    client: TestClient, factory: Factory, runtime: Runtime, ws: Workspace
) -> None:
    start = datetime.now(UTC)
    ticket_id = _pending_ticket(client, factory, ws, start - timedelta(days=8))
    first = only(run_job(runtime, "auto-close", [ws.slug], now=start))
    again = only(run_job(runtime, "auto-close", [ws.slug], now=start + timedelta(days=30)))
    assert (first.changed, again.changed) == (1, 0)
    with scope(runtime, ws) as session:
        closed_at = session.scalar(select(Ticket.status_changed_at).where(Ticket.id == ticket_id))
    assert closed_at == start
    (event,) = job_events(runtime, ws, jobs.AUTO_CLOSE)
    assert event.changes == {"status": {"before": "pending", "after": "closed"}}


def test_a_breach_is_alerted_once_to_the_holders_of_sla_alerts(
    runtime: Runtime, factory: Factory, ws: Workspace
) -> None:
    lead_role = "shift-lead"
    with transaction(runtime.sessions) as session:
        session.execute(
            text(
                "INSERT INTO public.custom_roles (tenant_id, name, permissions)"
                " VALUES (:t, :name, ARRAY['tickets.read', 'sla.alerts'])"
            ),
            {"t": ws.id, "name": lead_role},
        )
    lead = factory.member(ws, lead_role)
    factory.member(ws, "agent")
    with scope(runtime, ws) as session:
        session.add(
            Webhook(url="https://hooks.example.com/sla", events=["ticket.sla_breached"], secret="s")
        )
    # Breached (unanswered past due), answered in time, and not due yet.
    breached, answered, _ = add_tickets(
        runtime,
        ws,
        {"assignee_id": SOMEONE},
        {"first_response_at": NOW - timedelta(hours=2), "sla_due_at": NOW - timedelta(hours=1)},
        {"sla_due_at": NOW + timedelta(hours=1)},
    )
    first = run_job(runtime, "escalate", [ws.slug], now=NOW)
    again = run_job(runtime, "escalate", [ws.slug], now=NOW + timedelta(minutes=1))
    assert [r.alerted for r in first.results] == [1]
    assert [r.alerted for r in again.results] == [0]
    with scope(runtime, ws) as session:
        messages = session.execute(
            select(OutboxMessage.kind, OutboxMessage.recipient, OutboxMessage.payload).where(
                OutboxMessage.event == "ticket.sla_breached"
            )
        ).all()
    emails = sorted(recipient for kind, recipient, _ in messages if kind == "email")
    assert emails == sorted([ws.admin.email.lower(), lead.email.lower()])
    hooks = [payload["ticket"]["id"] for kind, _, payload in messages if kind == "webhook"]
    assert hooks == [breached]
    assert answered not in hooks
